"""The images carry every package their processes import.

The platform image once lacked `moves/` and `overview/` (both installed apps): every process would have failed at
start, and no offline check saw it, since the tests run from the repository. Kind: an image built from a list of
folders that the code outgrew. The check follows the imports (module- and function-level, tests left out) from what
each image runs and fails on a project package the Dockerfile does not copy.
"""

import ast

from django.conf import settings

from k8s.envdrift import REPO_ROOT, TIER_IMAGE_PACKAGES, platform_packages

PROJECT_PACKAGES = frozenset(p.name for p in REPO_ROOT.iterdir() if (p / "__init__.py").is_file())


def imported_packages(package: str) -> set[str]:
    """Project packages the non-test modules of `package` import."""
    found: set[str] = set()
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        if {"tests", "migrations"} & set(path.relative_to(REPO_ROOT).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            found.update(n.split(".")[0] for n in names if n.split(".")[0] in PROJECT_PACKAGES)
    return found - {package}


def closure(roots: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = set(roots)
    while todo:
        package = todo.pop()
        seen.add(package)
        todo |= imported_packages(package) - seen
    return seen


def test_the_platform_image_carries_every_installed_app_and_all_they_import() -> None:
    apps = {app.split(".")[0] for app in settings.INSTALLED_APPS} & PROJECT_PACKAGES
    needed = closure(apps | {"percolate_platform"})
    missing = needed - set(platform_packages())
    assert not missing, f"the Dockerfile's platform stage does not copy {sorted(missing)}"


def test_the_tier_node_image_carries_all_the_node_imports() -> None:
    needed = closure(set(TIER_IMAGE_PACKAGES))
    missing = needed - set(platform_packages()) - set(TIER_IMAGE_PACKAGES)
    assert not missing, f"the Dockerfile's tiernode stage does not carry {sorted(missing)}"
