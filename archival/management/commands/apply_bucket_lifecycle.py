"""Apply k8s/storage/bucket-lifecycle.json (abort multipart uploads left for a day) to the object buckets."""

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError

from archival import objectstore
from core.commands import PlatformCommand

RULES = Path(settings.BASE_DIR) / "k8s" / "storage" / "bucket-lifecycle.json"


class Command(PlatformCommand):
    help = "Apply the bucket lifecycle rule (abort incomplete multipart uploads after a day) and read it back."

    def handle(self, *args: Any, **options: Any) -> None:
        rules = json.loads(RULES.read_text())
        wanted = {r["ID"] for r in rules["Rules"]}
        for alias in ("objects", "backups"):
            try:
                got = objectstore.apply_lifecycle(rules, alias=alias)
            except objectstore.ObjectStoreError as exc:
                raise CommandError(f"{alias}: {exc}") from exc
            if got is None:
                self.stdout.write(f"{alias}: a file-system store, nothing to apply")
                continue
            if not wanted <= {r.get("ID") for r in got["Rules"]}:
                raise CommandError(f"{alias}: the store did not keep the rule: {got}")
            self.stdout.write(f"{alias}: lifecycle rule applied and read back ({', '.join(sorted(wanted))})")
