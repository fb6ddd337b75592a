"""Restore one archived tenant: `manage.py restore_tenant TENANT_ID [--wait]`."""

from django.core.management.base import BaseCommand, CommandError

from archival import services
from tenants.audit import Actor
from tenants.errors import PlatformError


class Command(BaseCommand):
    help = "Restore an archived tenant from the object store (enqueued, or inline with --wait)."

    def add_arguments(self, parser):
        parser.add_argument("tenant_id")
        parser.add_argument("--wait", action="store_true", help="run in this process instead of enqueueing")

    def handle(self, *args, **opts):
        actor = Actor.system("cli:restore_tenant")
        try:
            job = services.restore_request(tenant_id=opts["tenant_id"], actor=actor, enqueue=not opts["wait"])
            if opts["wait"]:
                job = services.restore_run(job_id=job.id)
        except PlatformError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"restore job {job.id}: {job.status}")
