"""Archive one tenant: `manage.py archive_tenant TENANT_ID_OR_EMAIL [--wait]`."""

from archival import services
from archival.commands import JobCommand


class Command(JobCommand):
    help = "Archive a tenant's RocksDB to the object store (a hot tenant is evicted through its pod first)."
    verb = "archive"
    request = staticmethod(services.archive_request)
    run = staticmethod(services.archive_run)
