"""First-run set-up for `make run`: a local superuser whose password is kept under var/ and printed each start."""

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User

USERNAME = "admin"


class Command(BaseCommand):
    help = "Create the local superuser on first run and print how to log in (embedded default only)."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("bootstrap_local is for local development only (DJANGO_DEBUG is false)")
        password_file = Path(settings.VAR_DIR) / "admin-password.txt"
        if not User.objects.filter(username=USERNAME).exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(USERNAME, "admin@localhost", password)
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.write_text(password)
            password_file.chmod(0o600)
        password = (
            password_file.read_text().strip() if password_file.exists() else "(set with manage.py changepassword)"
        )
        self.stdout.write(
            self.style.SUCCESS(f"Admin: http://127.0.0.1:8000/admin/  user {USERNAME}  password {password}")
        )
        secret_file = Path(settings.LOCAL_STRIPE_WEBHOOK_SECRET_FILE)
        if not secret_file.exists():
            secret_file.parent.mkdir(parents=True, exist_ok=True)
            secret_file.write_text(f"whsec_local_{secrets.token_hex(16)}")
            secret_file.chmod(0o600)
        self.stdout.write(
            "Stripe webhook: http://127.0.0.1:8000/billing/stripe/webhook/ signed with the secret in "
            f"{secret_file} (try: manage.py stripe_send_test_event checkout --email you@example.com)"
        )
