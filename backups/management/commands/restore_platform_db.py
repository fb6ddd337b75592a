"""Restore a platform backup into an empty database and check it (the restore drill, and the real restore)."""

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from backups import drills, services
from core.commands import PlatformCommand, cli_actor


class Command(PlatformCommand):
    help = (
        "Restore the newest (or --backup NAME) platform backup into the empty database --into DATABASE_URL, then "
        "check row counts against the manifest, migrations at head and a sample of tenant keys and archives."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--into", required=True, metavar="DATABASE_URL", help="an empty PostgreSQL database")
        parser.add_argument("--backup", default=None, help="backup name (default: the newest complete one)")
        parser.add_argument("--sample", type=int, default=20, help="tenant keys and archives to open (default 20)")
        parser.add_argument(
            "--no-record",
            action="store_true",
            help="do not record the drill in the management database (use when that database is the one lost)",
        )
        parser.add_argument("--list", action="store_true", help="list the complete backups and stop")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["sample"] < 0:
            raise CommandError("--sample must be 0 or more")
        if opts["list"]:
            for name in services.backup_names():
                self.stdout.write(name)
            return
        drill = drills.restore_drill_run(
            into_url=opts["into"],
            backup_name=opts["backup"],
            sample=opts["sample"],
            actor=cli_actor(),
            record=not opts["no_record"],
        )
        checks = drill.checks
        self.stdout.write(
            f"restored {drill.backup_name} into {drill.target} in {drill.restore_seconds:.1f} s; checks passed "
            f"({checks['row_counts']['rows']} rows in {checks['row_counts']['tables']} tables, "
            f"{checks['migrations']['applied']} migrations, {checks['tenant_keys']['sampled']} keys and "
            f"{checks['archives']['sampled']} archives opened)"
        )
        if opts["verbosity"] > 1:
            self.stdout.write(json.dumps(checks, indent=2, sort_keys=True))
