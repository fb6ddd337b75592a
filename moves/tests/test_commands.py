"""`move_tenant` and `move_tenants` against real tier nodes: steps printed, a rollback as a non-zero one-line exit,
many moves with a summary; bad input as one line from a real subprocess."""

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from moves.models import Move, MoveStatus
from tenants.models import Tenant, TenantState
from tenants.tests.test_commands import _manage

pytestmark = pytest.mark.django_db(transaction=True)  # tasks run eagerly at commit, as under `make run`


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_move_tenant_by_email_waits_and_prints_the_steps(nodes: Any, make_tenant: Any) -> None:
    a = nodes.start("A")
    tenant = make_tenant(email="ada@example.com", tier="B")
    out, _ = run("move_tenant", "ADA@example.com", "--tier", "A", "--reason", "upgrade", "--wait")
    move = Move.objects.get(tenant=tenant)
    assert move.status == MoveStatus.COMPLETED and move.reason == "upgrade"
    assert out.splitlines()[0].startswith(f"move {move.id} (B -> A): ")
    assert "done in" in out and "tier A" in out
    assert TenantState.objects.get(tenant=tenant).pod_id == a.pod_id


def test_a_rolled_back_move_is_a_one_line_error(nodes: Any, make_tenant: Any) -> None:
    nodes.none_for("C")
    tenant = make_tenant(tier="B")
    with pytest.raises(CommandError, match="rolled back at step warmed: MoveFailed: tier C has no pods"):
        run("move_tenant", str(tenant.id), "--tier", "C", "--wait")
    tenant.refresh_from_db()
    assert tenant.tier == "B"


def test_move_tenants_moves_many_and_summarises(nodes: Any, make_tenant: Any) -> None:
    nodes.start("B")
    on_c = [make_tenant(tier="C") for _ in range(3)]
    make_tenant(tier="A")
    out, err = run("move_tenants", "--from", "C", "--to", "B", "--limit", "2")
    assert out.strip() == "2 moves started (2 completed), 0 refused"
    assert "moving tenants" in err  # the progress bar
    assert Tenant.objects.filter(pk__in=[t.pk for t in on_c], tier="B").count() == 2
    out, _ = run("move_tenants", "--from", "C", "--to", "B", "--limit", "5")
    assert out.startswith("1 moves started")


def test_move_tenants_bad_input(nodes: Any) -> None:
    with pytest.raises(CommandError, match="--from and --to are the same tier"):
        run("move_tenants", "--from", "B", "--to", "B", "--limit", "1")
    with pytest.raises(CommandError, match="--limit must be at least 1"):
        run("move_tenants", "--from", "B", "--to", "A", "--limit", "0")


def test_cli_errors_are_one_line(make_tenant: Any) -> None:
    tenant = make_tenant(tier="B")
    for args, expected in [
        (["move_tenant", "nobody@example.com", "--tier", "A"], "Error: no tenant with id or email"),
        (["move_tenant", str(tenant.id), "--tier", "Z"], "Error: invalid tier: 'Z'"),
        (["move_tenant", str(tenant.id)], "Error: the following arguments are required: --tier"),
        (["move_tenants", "--from", "X", "--to", "A", "--limit", "1"], "Error: invalid from: 'X'"),
    ]:
        result = _manage(*args)
        assert result.returncode != 0, args
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(expected), (args, result.stderr)
    assert not Move.objects.exists()
