"""The tier node stands apart from the platform: every module of it imports with Django blocked, and none of them
brings in a package of the platform (it talks to the platform over HTTP only, like a real pod). What it shares with
the platform (the sealed format, the tier policy, the pod credentials) is pure Python in `core`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Every project package but the node and the pure-Python core it shares.
PLATFORM = {p.name for p in REPO.iterdir() if (p / "__init__.py").is_file()} - {"tiernode", "core"}

PROBE = r"""
import importlib, json, pkgutil, sys
sys.modules["django"] = None  # any `import django...` now raises ImportError
import tiernode
names = sorted(
    m.name for m in pkgutil.walk_packages(tiernode.__path__, "tiernode.")
    if ".tests" not in m.name
)
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "loaded": sorted(sys.modules)}))
"""


def test_every_tiernode_module_imports_without_django_and_without_the_platform() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert "tiernode.app" in report["modules"] and "tiernode.blob" in report["modules"]
    loaded = {name.split(".")[0] for name in report["loaded"]}
    assert not loaded & PLATFORM, f"the tier node imported {sorted(loaded & PLATFORM)}"
    core = sorted(name for name in report["loaded"] if name.split(".")[0] == "core")
    assert set(core) <= {"core", "core.pod_credentials", "core.sealed", "core.tier_policy"}, core


def test_the_sealed_format_loads_without_django_too() -> None:
    """blob.py imports the sealed format when a blob is sealed or opened: it is pure Python as well."""
    probe = 'import sys; sys.modules["django"] = None; import core.sealed, core.tier_policy, core.pod_credentials'
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
