"""Schemathesis drives the API through the project's own schema, against the production server command (gunicorn,
DEBUG off), as staff and as the service, then with no credentials and as a non-staff user.

All checks; the coverage, fuzzing and stateful phases for the authorised run (the stateful one follows the schema's
links), the fuzzing phase for the refused callers; a fixed seed and a bounded number of examples, so the three runs
take about 30 s on a quiet 2-core machine (about a minute with the machine loaded 3x). New endpoints are
covered as soon as they are in the schema: staff ones with the staff token, paths under /api/internal/ with the
service credential (see `_config`).
"""

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from rest_framework.authtoken.models import Token

from accounts.models import User
from tenants.tests.contract.live_server import FORWARDED_HTTPS, ROOT, LiveServer, production_server

# The mark makes pytest-django set up the test database for this module (it sets up only the databases that marked
# tests need); the tests themselves only drive subprocesses.
pytestmark = pytest.mark.django_db

SEED = 20261207
# Per operation. The coverage phase is deterministic (boundaries, wrong types, missing fields) and does not depend
# on it; the stateful phase gets more, since each of its examples is a whole chain of linked calls.
MAX_EXAMPLES = 5
MAX_STATEFUL_EXAMPLES = 10
HOOKS = "tenants.tests.contract.schemathesis_hooks"


@pytest.fixture(scope="module")
def platform(
    django_db_setup: None, django_db_blocker: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, dict[str, str], Path]]:
    """The live server, a token per caller, and the schema it serves, fetched once (staff only may read it)."""
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        assert connection.settings_dict["NAME"].startswith("test_"), "refusing to run against a non-test database"
        staff = User.objects.create_user("contract-staff", is_staff=True)
        staff.user_permissions.set(Permission.objects.filter(content_type__app_label="tenants"))
        plain = User.objects.create_user("contract-plain")
        tokens = {"staff": Token.objects.create(user=staff).key, "plain": Token.objects.create(user=plain).key}
        try:
            with production_server() as server:
                request = urllib.request.Request(
                    f"{server.url}/api/schema/?format=json",
                    headers={**FORWARDED_HTTPS, "Authorization": f"Token {tokens['staff']}"},
                )
                with urllib.request.urlopen(request, timeout=30) as response:
                    schema = tmp_path_factory.mktemp("contract") / "openapi.json"
                    schema.write_bytes(response.read())
                yield server, tokens, schema
        finally:
            call_command("flush", "--noinput", verbosity=0)  # the tests after this module expect empty tables


def _toml_table(values: dict[str, str]) -> str:
    return "{ " + ", ".join(f"{json.dumps(key)} = {json.dumps(value)}" for key, value in values.items()) + " }"


def _config(path: Path, headers: dict[str, str], internal_headers: dict[str, str] | None = None) -> Path:
    lines = [
        f"headers = {_toml_table(headers)}",
        "[generation]",
        f"max-examples = {MAX_EXAMPLES}",
        'database = "none"',
        "[cache]",
        "enabled = false",
        # Error feedback learns from 400 bodies; it took our {"error": {"fields": ...}} for the request's own shape
        # and sent an `error` property the schema forbids (additionalProperties: false) as a positive case.
        "[phases.fuzzing.error-feedback]",
        "enabled = false",
        "[phases.stateful.generation]",
        f"max-examples = {MAX_STATEFUL_EXAMPLES}",
    ]
    if internal_headers is not None:
        lines += [
            "[[operations]]",
            'include-path-regex = "^/api/internal/"',
            f"headers = {_toml_table(internal_headers)}",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _schemathesis(
    server: LiveServer, schema: Path, config: Path, *, phases: str, expect_refusal: bool = False
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", str(schema)]
    # One worker: with two, the coverage phase once stalled for minutes on this 2-core machine.
    command += ["--url", server.url, "--checks", "all", "--phases", phases, "--seed", str(SEED), "--workers", "1"]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": HOOKS, "PERCOLATE_CONTRACT_EXPECT": "refusal" if expect_refusal else ""}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
    assert " passed" in result.stdout, result.stdout[-5000:]


def test_staff_and_service_get_exactly_what_the_schema_promises(platform, tmp_path) -> None:
    server, tokens, schema = platform
    config = _config(
        tmp_path / "schemathesis.toml",
        {**FORWARDED_HTTPS, "Authorization": f"Token {tokens['staff']}"},
        {**FORWARDED_HTTPS, "Authorization": f"Service {server.service_token}"},
    )
    result = _schemathesis(server, schema, config, phases="coverage,fuzzing,stateful")
    _assert_clean(result)
    assert "Stateful" in result.stdout and "API Links" in result.stdout, result.stdout[-5000:]


@pytest.mark.parametrize("caller", ["anonymous", "plain"])
def test_callers_without_permission_get_no_2xx(platform, tmp_path, caller: str) -> None:
    server, tokens, schema = platform
    headers = dict(FORWARDED_HTTPS)
    if caller == "plain":
        headers["Authorization"] = f"Token {tokens['plain']}"
    config = _config(tmp_path / "schemathesis.toml", headers)
    _assert_clean(_schemathesis(server, schema, config, phases="fuzzing", expect_refusal=True))
