"""Restore one archived tenant: `manage.py restore_tenant TENANT_ID_OR_EMAIL [--wait]`."""

from archival import services
from archival.commands import JobCommand


class Command(JobCommand):
    help = "Restore an archived tenant from the object store (enqueued, or inline with --wait)."
    verb = "restore"
    request = staticmethod(services.restore_request)
    run = staticmethod(services.restore_run)
