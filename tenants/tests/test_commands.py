"""Operator commands: happy paths, bad input as one-line errors (call_command and a real subprocess)."""

import getpass
import os
import subprocess
import sys
import uuid
from io import StringIO
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection

from archival.models import ArchivalJob, JobStatus, JobType
from core.commands import PlatformCommand, one_line
from core.errors import Conflict
from tenants.models import AuditLog, Tenant, TenantKey, TenantState, TenantStatus
from tenants.services import tenant_delete

pytestmark = pytest.mark.django_db


def meta(entry: AuditLog) -> dict[str, Any]:
    assert isinstance(entry.metadata, dict)
    return entry.metadata


ROOT = Path(__file__).resolve().parents[2]
CLI_ACTOR = f"cli:{getpass.getuser()}"


def run(name: str, *args: str, **options: Any) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(name, *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


# --- create_tenant ----------------------------------------------------------------------------------------------


def test_create_tenant_prints_the_id_and_provisions_everything() -> None:
    out, _ = run("create_tenant", "--email", "New.Person@Example.com", "--tier", "A")
    tenant = Tenant.objects.get(pk=uuid.UUID(out.strip()))
    assert out.strip() == str(tenant.id)
    assert (tenant.email, tenant.tier, tenant.status, tenant.security_mode) == (
        "new.person@example.com",
        "A",
        "active",
        "node_based",
    )
    assert TenantState.objects.filter(tenant=tenant, state="cold", generation=1).exists()
    assert TenantKey.objects.filter(tenant=tenant, retired_at__isnull=True).count() == 1
    audit = AuditLog.objects.get(tenant=tenant, action="tenant.created")
    assert audit.actor == CLI_ACTOR


def test_create_tenant_security_mode() -> None:
    out, _ = run("create_tenant", "--email", "m@example.com", "--tier", "C", "--security-mode", "mobile_only")
    assert Tenant.objects.get(pk=out.strip()).security_mode == "mobile_only"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--email", "x@example.com", "--tier", "Z"], "invalid tier: 'Z'"),
        (["--email", "x@example.com", "--tier", "a"], "invalid tier: 'a'"),
        (["--email", "not-an-email", "--tier", "A"], "invalid email"),
        (["--email", "x@example.com", "--tier", "A", "--security-mode", "cloud"], "invalid security_mode: 'cloud'"),
        (["--email", "x@example.com"], "the following arguments are required: --tier"),
    ],
)
def test_create_tenant_bad_input_is_one_line_and_writes_nothing(args: list[str], message: str) -> None:
    with pytest.raises(CommandError) as info:
        run("create_tenant", *args)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert not Tenant.objects.exists()
    assert not AuditLog.objects.exists()


def test_create_tenant_duplicate_email_in_any_case() -> None:
    run("create_tenant", "--email", "dup@example.com", "--tier", "B")
    with pytest.raises(CommandError, match="already exists"):
        run("create_tenant", "--email", "DUP@Example.COM", "--tier", "C")
    assert Tenant.objects.count() == 1
    assert TenantState.objects.count() == 1


# --- suspend_tenant ---------------------------------------------------------------------------------------------


def test_suspend_by_id_records_reason(make_tenant: Any) -> None:
    tenant = make_tenant(email="s@example.com")
    out, _ = run("suspend_tenant", str(tenant.id), "--reason", "chargeback")
    assert "suspended" in out and str(tenant.id) in out
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.SUSPENDED
    audit = AuditLog.objects.get(tenant=tenant, action="tenant.suspended")
    assert audit.actor == CLI_ACTOR
    assert meta(audit)["reason"] == "chargeback"
    assert meta(audit)["changes"] == {"status": ["active", "suspended"]}


def test_suspend_by_email_any_case_and_twice(make_tenant: Any) -> None:
    tenant = make_tenant(email="who@example.com")
    run("suspend_tenant", "WHO@example.com")
    out, _ = run("suspend_tenant", "who@example.com")
    assert "already suspended" in out
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.SUSPENDED
    assert AuditLog.objects.filter(tenant=tenant, action="tenant.suspended").count() == 1


@pytest.mark.parametrize("ref", ["nobody@example.com", "00000000-0000-0000-0000-000000000000", "garbage"])
def test_suspend_unknown_tenant(ref: str) -> None:
    with pytest.raises(CommandError, match="no tenant with id or email"):
        run("suspend_tenant", ref)


def test_suspend_deleted_tenant_is_a_conflict(make_tenant: Any, actor: Any) -> None:
    tenant = make_tenant(email="gone@example.com")
    tenant_delete(tenant_id=tenant.id, actor=actor)
    with pytest.raises(CommandError, match="is deleted; cannot suspend"):
        run("suspend_tenant", str(tenant.id))
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.DELETED


def test_suspend_requires_a_tenant() -> None:
    with pytest.raises(CommandError, match="required"):
        run("suspend_tenant")


# --- seed_tenants -----------------------------------------------------------------------------------------------


def test_seed_tenants_command() -> None:
    out, _ = run("seed_tenants", "--count", "1200", "--batch", "500", verbosity=0)
    assert "seeded 1200 tenants" in out and "tenants/s" in out and "3 batches" in out
    assert Tenant.objects.count() == 1200
    assert TenantState.objects.count() == 1200
    audit = AuditLog.objects.get(action="tenants.seeded")
    assert audit.actor == CLI_ACTOR
    assert meta(audit)["created"] == 1200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--count", "0"], "invalid count: '0'"),
        (["--count", "-5"], "invalid count: '-5'"),
        (["--count", "ten"], "invalid count: 'ten'"),
        (["--count", "10", "--batch", "0"], "invalid batch: '0'"),
        ([], "the following arguments are required: --count"),
    ],
)
def test_seed_tenants_bad_input(args: list[str], message: str) -> None:
    with pytest.raises(CommandError) as info:
        run("seed_tenants", *args)
    assert message in str(info.value)
    assert not Tenant.objects.exists()


# --- platform_status --------------------------------------------------------------------------------------------


def test_platform_status(make_tenant: Any, actor: Any) -> None:
    a = make_tenant(email="a@example.com", tier="A")
    make_tenant(email="c1@example.com", tier="C")
    c2 = make_tenant(email="c2@example.com", tier="C")
    run("suspend_tenant", str(c2.id))
    ArchivalJob.objects.create(
        tenant=a, job_type=JobType.ARCHIVE, status=JobStatus.FAILED, attempts=3, error_message="boom\nsecond line"
    )
    out, _ = run("platform_status")
    lines = out.splitlines()
    assert "Tenants by tier and status" in lines and "Tenants by tier and state" in lines
    status_rows = {line.split()[0]: line.split()[1:] for line in lines[2:6]}
    assert status_rows["A"] == ["1", "0", "0", "1"]
    assert status_rows["C"] == ["1", "1", "0", "2"]
    assert status_rows["all"] == ["2", "1", "0", "3"]
    state_table = lines[lines.index("Tenants by tier and state") :]
    assert state_table[1].split() == ["tier", "hot", "warm", "cold", "archived", "restoring", "total"]
    assert state_table[5].split() == ["all", "0", "0", "3", "0", "0", "3"]
    assert "Recent archival jobs (1)" in out
    job_line = next(line for line in lines if "archive" in line and "failed" in line)
    assert "attempts=3" in job_line and "a@example.com" in job_line and "error: boom second line" in job_line


def test_platform_status_empty() -> None:
    out, _ = run("platform_status")
    assert "Recent archival jobs (0)" in out and "none" in out


# --- the base class: every failure is one line ------------------------------------------------------------------


class _Failing(PlatformCommand):
    error: BaseException = RuntimeError("boom")

    def handle(self, *args: Any, **options: Any) -> None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (Conflict("tenant x is busy"), "tenant x is busy"),
        (OperationalError("server closed the connection\nunexpectedly\nDETAIL: more"), "database error: server"),
    ],
)
def test_platform_and_database_errors_become_command_errors(error: BaseException, expected: str) -> None:
    command = _Failing(stdout=StringIO(), stderr=StringIO())
    command.error = error
    with pytest.raises(CommandError) as info:
        call_command(command)
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("error", "line", "code"),
    [
        (Conflict("first line\nsecond line"), "Error: first line", 1),
        (CommandError("Error: already prefixed", returncode=3), "Error: already prefixed", 3),
        (RuntimeError("surprise"), "Error: unexpected RuntimeError: surprise (run with --traceback)", 1),
        (KeyboardInterrupt(), "Error: interrupted", 130),
    ],
)
def test_run_from_argv_prints_one_line(error: BaseException, line: str, code: int) -> None:
    err = StringIO()
    command = _Failing(stdout=StringIO(), stderr=err)
    command.error = error
    with pytest.raises(SystemExit) as info:
        command.run_from_argv(["manage.py", "failing", "--skip-checks"])
    assert info.value.code == code
    assert err.getvalue().splitlines() == [line]


def test_run_from_argv_bad_argument_is_one_line() -> None:
    err = StringIO()
    command = _Failing(stdout=StringIO(), stderr=err)
    with pytest.raises(SystemExit) as info:
        command.run_from_argv(["manage.py", "failing", "--no-such-option"])
    assert info.value.code == 1
    assert err.getvalue().splitlines() == ["Error: unrecognized arguments: --no-such-option"]


def test_traceback_option_still_raises() -> None:
    command = _Failing(stdout=StringIO(), stderr=StringIO())
    with pytest.raises(RuntimeError):
        command.run_from_argv(["manage.py", "failing", "--skip-checks", "--traceback"])


def test_one_line() -> None:
    assert one_line("  first  line \n\n second") == "first line"
    assert one_line("") == "unknown error"


# --- a real process: exit status and stderr as an operator sees them --------------------------------------------


def _database_url() -> str:
    s = connection.settings_dict
    auth = quote(s["USER"] or "", safe="")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"], safe="")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _manage(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": _database_url()}
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.django_db(transaction=True)
def test_cli_errors_are_one_line_without_traceback() -> None:
    assert connection.vendor == "postgresql"
    ok = _manage("create_tenant", "--email", "cli@example.com", "--tier", "B")
    assert ok.returncode == 0, ok.stderr
    assert Tenant.objects.get(email="cli@example.com").id == uuid.UUID(ok.stdout.strip())

    for args, expected in [
        (["create_tenant", "--email", "cli2@example.com", "--tier", "Z"], "Error: invalid tier: 'Z'"),
        (["create_tenant", "--email", "CLI@example.com", "--tier", "A"], "Error: a tenant with email"),
        (["create_tenant", "--tier", "A"], "Error: the following arguments are required: --email"),
        (["suspend_tenant", "nobody@example.com"], "Error: no tenant with id or email"),
        (["seed_tenants", "--count", "zero"], "Error: invalid count"),
    ]:
        result = _manage(*args)
        assert result.returncode != 0, args
        lines = result.stderr.splitlines()
        assert len(lines) == 1, (args, result.stderr)
        assert lines[0].startswith(expected), (args, lines)
        assert "Traceback" not in result.stderr + result.stdout
    assert Tenant.objects.count() == 1
