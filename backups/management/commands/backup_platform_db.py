"""Back up the management database: pg_dump (custom format), sealed under the backup key, into the backup store."""

from typing import Any

from backups import services
from core.commands import PlatformCommand, cli_actor


class Command(PlatformCommand):
    help = "Dump the management database (pg_dump -Fc), seal it under the backup key and upload it; apply retention."

    def handle(self, *args: Any, **opts: Any) -> None:
        backup = services.backup_create(actor=cli_actor())
        rows = sum(backup.manifest.get("tables", {}).values())
        self.stdout.write(
            f"backup {backup.name}: {rows} rows in {len(backup.manifest.get('tables', {}))} tables, "
            f"dump {backup.dump_bytes} bytes, sealed {backup.sealed_bytes} bytes, {backup.duration_seconds:.1f} s "
            f"-> {backup.object_key}"
        )
