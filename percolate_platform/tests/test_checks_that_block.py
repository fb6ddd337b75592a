"""Checks that block (#16): CI runs the linters before the tests, the pre-commit hooks run the same linters as
`make lint`, mypy requires typed definitions, and every `type: ignore` in application code names the error it
silences and says why (a bare ignore hides every later error on its line; one without a reason cannot be judged
when the code around it changes)."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
NOT_YET: tuple[str, ...] = ()
IGNORE = re.compile(r"#\s*type:\s*ignore(?P<codes>\[[^\]]*\])?(?P<rest>.*)$")


def application_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if parts[0].startswith(".") or parts[0] in ("bench", *NOT_YET) or "tests" in parts or "migrations" in parts:
            continue
        if parts == ("conftest.py",):
            continue
        files.append(path)
    return files


def test_every_type_ignore_in_application_code_names_its_code_and_reason():
    files = application_files()
    assert any(p.relative_to(ROOT).parts[0] == "archival" for p in files)
    bare = []
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            m = IGNORE.search(line)
            if m and (not m["codes"] or not re.match(r"\s*#\s*\w", m["rest"])):
                bare.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert bare == [], "a type: ignore needs [code] and a `# reason` after it:\n" + "\n".join(bare)


def test_ci_runs_lint_before_the_tests():
    commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert commands.index("make lint") < commands.index("make test")
    assert "set -euo pipefail" in commands


def lint_recipe() -> list[str]:
    lines = (ROOT / "Makefile").read_text().split("\nlint:", 1)[1].splitlines()[1:]
    recipe = []
    for line in lines:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip().replace("$(VENV)", ".venv"))
    return recipe


def test_pre_commit_runs_what_make_lint_runs():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert (
        [hook["entry"] for hook in hooks]
        == lint_recipe()
        == [
            ".venv/bin/ruff check .",
            ".venv/bin/ruff format --check .",
            ".venv/bin/mypy .",
        ]
    )
    assert all(hook["pass_filenames"] is False for hook in hooks)


def test_mypy_requires_typed_definitions():
    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert mypy["disallow_untyped_defs"] is True
    loosened = [o["module"] for o in mypy["overrides"] if o.get("disallow_untyped_defs") is False]
    assert loosened in ([], [[f"{name}.*" for name in NOT_YET]])
