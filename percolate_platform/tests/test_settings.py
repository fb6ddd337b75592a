"""Settings: the master key is decoded strictly and required in production; the tier policy and its overrides."""

import base64
import json
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from core.tier_policy import DEFAULT_TIER_POLICY, TIERS
from percolate_platform.master_key import LOCAL_KEY_FILE, decode_master_key, load_master_key
from percolate_platform.tier_policy import load_tier_policy

BASE_DIR = Path(__file__).resolve().parents[2]

# --- master key --------------------------------------------------------------------------------------------------


def test_hex_key_decodes() -> None:
    raw = secrets.token_bytes(32)
    assert decode_master_key(raw.hex()) == raw
    assert decode_master_key(raw.hex().upper()) == raw
    assert decode_master_key(f"  {raw.hex()}\n") == raw


def test_base64_key_decodes() -> None:
    raw = secrets.token_bytes(32)
    assert decode_master_key(base64.b64encode(raw).decode()) == raw
    assert decode_master_key(base64.b64encode(raw).decode() + "\n") == raw


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        secrets.token_bytes(16).hex(),  # 16 bytes as hex
        secrets.token_bytes(31).hex(),
        base64.b64encode(secrets.token_bytes(16)).decode(),  # too short as base64
        base64.b64encode(secrets.token_bytes(48)).decode(),  # too long
        secrets.token_bytes(33).hex(),
        "z" * 64,  # 64 characters, not hex
        "not a key at all!",
        "@" * 44,
        "changeme",
    ],
)
def test_bad_keys_are_refused(value: str) -> None:
    with pytest.raises(ImproperlyConfigured):
        decode_master_key(value)


def test_production_without_key_refuses(tmp_path: Path) -> None:
    with pytest.raises(ImproperlyConfigured, match="must be set in production"):
        load_master_key("", tmp_path, allow_local=False)
    assert not (tmp_path / LOCAL_KEY_FILE).exists()


def test_production_with_key_uses_it(tmp_path: Path) -> None:
    raw = secrets.token_bytes(32)
    assert load_master_key(raw.hex(), tmp_path, allow_local=False) == raw
    assert not (tmp_path / LOCAL_KEY_FILE).exists()


def test_production_bad_key_refuses(tmp_path: Path) -> None:
    with pytest.raises(ImproperlyConfigured):
        load_master_key("short", tmp_path, allow_local=False)


def test_local_mode_creates_a_private_key_file_once(tmp_path: Path) -> None:
    var = tmp_path / "var"
    first = load_master_key("", var, allow_local=True)
    path = var / LOCAL_KEY_FILE
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_master_key("", var, allow_local=True) == first


def test_local_mode_still_refuses_a_malformed_key(tmp_path: Path) -> None:
    with pytest.raises(ImproperlyConfigured):
        load_master_key("deadbeef", tmp_path, allow_local=True)
    (tmp_path / LOCAL_KEY_FILE).write_text("garbage")
    with pytest.raises(ImproperlyConfigured):
        load_master_key("", tmp_path, allow_local=True)


def test_running_settings_have_a_32_byte_key() -> None:
    assert isinstance(settings.PLATFORM_MASTER_KEY, bytes)
    assert len(settings.PLATFORM_MASTER_KEY) == 32


# --- the settings module as a process starts it --------------------------------------------------------------------


def _start(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PLATFORM_", "DJANGO_", "TIER_POLICY", "STRIPE_"))}
    base |= {"DJANGO_SETTINGS_MODULE": "percolate_platform.settings", "PERCOLATE_VAR_DIR": str(tmp_path / "var")}
    code = (
        "import django; django.setup(); from django.conf import settings as s; import json; "
        "print(json.dumps({'key': s.PLATFORM_MASTER_KEY.hex(), 'c_max_hot': s.TIER_POLICY['C'].max_hot_per_pod}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "s" * 50,
    "PLATFORM_SERVICE_TOKEN": "t" * 32,
    "STRIPE_WEBHOOK_SECRETS": "whsec_production_test",
}


def test_production_process_without_master_key_refuses_to_start(tmp_path: Path) -> None:
    result = _start(tmp_path, **PRODUCTION)
    assert result.returncode != 0
    assert "PLATFORM_MASTER_KEY" in result.stderr
    assert not (tmp_path / "var" / LOCAL_KEY_FILE).exists()


def test_production_process_without_webhook_secret_refuses_to_start(tmp_path: Path) -> None:
    """Fail closed: production never runs a Stripe webhook that cannot verify."""
    env = {k: v for k, v in PRODUCTION.items() if k != "STRIPE_WEBHOOK_SECRETS"}
    key = secrets.token_bytes(32).hex()
    for extra in ({}, {"STRIPE_WEBHOOK_SECRETS": ""}, {"STRIPE_WEBHOOK_SECRETS": " , "}):
        result = _start(tmp_path, **env, **extra, PLATFORM_MASTER_KEY=key)
        assert result.returncode != 0
        assert "STRIPE_WEBHOOK_SECRETS" in result.stderr


def test_production_process_reads_webhook_secrets_from_the_mounted_file(tmp_path: Path) -> None:
    """Kubernetes mounts the sealed STRIPE_WEBHOOK_SECRET; during a roll it holds both secrets, comma-separated."""
    secret_file = tmp_path / "webhook-secret"
    secret_file.write_text("whsec_new,whsec_old\n")
    env = {k: v for k, v in PRODUCTION.items() if k != "STRIPE_WEBHOOK_SECRETS"}
    code = "import django; django.setup(); from django.conf import settings as s; print(s.STRIPE_WEBHOOK_SECRETS)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env={k: v for k, v in os.environ.items() if not k.startswith(("PLATFORM_", "DJANGO_", "STRIPE_"))}
        | {"DJANGO_SETTINGS_MODULE": "percolate_platform.settings", "PERCOLATE_VAR_DIR": str(tmp_path / "var")}
        | env
        | {"PLATFORM_MASTER_KEY": secrets.token_bytes(32).hex(), "STRIPE_WEBHOOK_SECRET_FILE": str(secret_file)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['whsec_new', 'whsec_old']"


def test_production_process_with_master_key_starts(tmp_path: Path) -> None:
    raw = secrets.token_bytes(32)
    result = _start(tmp_path, **PRODUCTION, PLATFORM_MASTER_KEY=base64.b64encode(raw).decode())
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["key"] == raw.hex()


def test_production_process_reads_master_key_file(tmp_path: Path) -> None:
    raw = secrets.token_bytes(32)
    key_file = tmp_path / "master-key"
    key_file.write_text(raw.hex())
    result = _start(tmp_path, **PRODUCTION, PLATFORM_MASTER_KEY_FILE=str(key_file))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["key"] == raw.hex()


def test_process_with_malformed_master_key_refuses_even_in_debug(tmp_path: Path) -> None:
    result = _start(tmp_path, DJANGO_DEBUG="true", PLATFORM_MASTER_KEY="too-short")
    assert result.returncode != 0
    assert "PLATFORM_MASTER_KEY" in result.stderr


def _bare(tmp_path: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The settings module in a process with no environment at all but PATH, the var directory and `env`."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PERCOLATE_VAR_DIR": str(tmp_path / "var")}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings as s; " + code],
        cwd=BASE_DIR,
        env=base | {"DJANGO_SETTINGS_MODULE": "percolate_platform.settings"} | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_with_no_environment_at_all_debug_is_off_and_the_process_refuses_to_start(tmp_path: Path) -> None:
    """DEBUG off unless asked for (#16): with nothing set, no development secret key, service token or local master
    key is used; the first missing secret stops the process."""
    result = _bare(tmp_path, "print(s.DEBUG)")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false" in result.stderr
    assert not (tmp_path / "var" / LOCAL_KEY_FILE).exists()


def test_with_only_the_production_secrets_debug_is_off(tmp_path: Path) -> None:
    """No DJANGO_DEBUG at all: production, with its secure defaults."""
    secrets_only = {k: v for k, v in PRODUCTION.items() if k != "DJANGO_DEBUG"}
    code = "import json; print(json.dumps([s.DEBUG, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE]))"
    result = _bare(tmp_path, code, **secrets_only, PLATFORM_MASTER_KEY=secrets.token_hex(32))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [False, True, True]


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "PLATFORM_SERVICE_TOKEN", "PLATFORM_MASTER_KEY"])
def test_production_without_any_one_secret_refuses_to_start(tmp_path: Path, missing: str) -> None:
    """Without DJANGO_DEBUG, each development default is refused: secret key, service token, master key."""
    env = {k: v for k, v in PRODUCTION.items() if k != "DJANGO_DEBUG"} | {"PLATFORM_MASTER_KEY": secrets.token_hex(32)}
    del env[missing]
    result = _bare(tmp_path, "print(s.DEBUG)", **env)
    assert result.returncode != 0
    assert missing in result.stderr
    assert not (tmp_path / "var" / LOCAL_KEY_FILE).exists()


def test_the_development_settings_turn_debug_on(tmp_path: Path) -> None:
    """percolate_platform.settings_dev (the suite's and the type checker's) asks for DEBUG; an explicit value wins."""
    result = _bare(tmp_path, "print(s.DEBUG)", DJANGO_SETTINGS_MODULE="percolate_platform.settings_dev")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
    result = _bare(tmp_path, "print(s.DEBUG)", DJANGO_SETTINGS_MODULE="percolate_platform.settings_dev", **PRODUCTION)
    assert result.returncode != 0
    assert "PLATFORM_MASTER_KEY" in result.stderr


def test_production_process_without_service_token_refuses(tmp_path: Path) -> None:
    env = PRODUCTION | {"PLATFORM_SERVICE_TOKEN": "short", "PLATFORM_MASTER_KEY": secrets.token_hex(32)}
    result = _start(tmp_path, **env)
    assert result.returncode != 0
    assert "PLATFORM_SERVICE_TOKEN" in result.stderr


# --- tier policy -------------------------------------------------------------------------------------------------


def test_default_policy_matches_the_design() -> None:
    a, b, c = (DEFAULT_TIER_POLICY[t] for t in TIERS)
    assert (a.max_hot_per_pod, a.hpa_target_hot_per_pod, a.min_pods, a.max_pods) == (8, 6, 2, 50)
    assert (b.max_hot_per_pod, b.hpa_target_hot_per_pod, b.min_pods, b.max_pods) == (15, 12, 2, 100)
    assert (c.max_hot_per_pod, c.hpa_target_hot_per_pod, c.min_pods, c.max_pods) == (25, 20, 2, 200)
    assert a.keep_warm and a.hot_to_warm_seconds is None and a.warm_to_cold_seconds is None
    assert (b.hot_to_warm_seconds, b.warm_to_cold_seconds) == (300, 3600)
    assert (c.hot_to_warm_seconds, c.warm_to_cold_seconds) == (60, 600)
    assert not b.keep_warm and not c.keep_warm


def test_no_overrides_is_the_default() -> None:
    assert load_tier_policy({}) == DEFAULT_TIER_POLICY


def test_overrides_change_only_what_they_name() -> None:
    policy = load_tier_policy({"C": {"max_hot_per_pod": 30, "hpa_target_hot_per_pod": 24}, "A": {"max_pods": 80}})
    assert policy["C"].max_hot_per_pod == 30
    assert policy["C"].hpa_target_hot_per_pod == 24
    assert policy["C"].hot_to_warm_seconds == 60
    assert policy["A"].max_pods == 80
    assert policy["B"] == DEFAULT_TIER_POLICY["B"]
    assert DEFAULT_TIER_POLICY["C"].max_hot_per_pod == 25  # the defaults are not mutated


@pytest.mark.parametrize("tier", ["D", "a", "premium", ""])
def test_unknown_tier_is_refused(tier: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="unknown tier"):
        load_tier_policy({tier: {"max_hot_per_pod": 1}})


def test_unknown_field_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured):
        load_tier_policy({"B": {"max_hot": 3}})


def test_tier_policy_from_the_environment(tmp_path: Path) -> None:
    result = _start(tmp_path, DJANGO_DEBUG="true", TIER_POLICY_JSON=json.dumps({"C": {"max_hot_per_pod": 30}}))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["c_max_hot"] == 30
    result = _start(tmp_path, DJANGO_DEBUG="true", TIER_POLICY_JSON=json.dumps({"Z": {"max_hot_per_pod": 30}}))
    assert result.returncode != 0
    assert "unknown tier" in result.stderr


def test_running_settings_policy_covers_every_tier() -> None:
    assert set(settings.TIER_POLICY) == set(TIERS)
