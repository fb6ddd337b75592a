"""No import circle in application code: the import graph of the project's packages, read with `ast`, has no cycle.

Every `import` and `from ... import` counts, at module level or inside a function (an import moved into a function
to dodge a circle is still a circle). Tests and migrations are left out. An import of `a.b` is an edge to the module
`a.b` only (not to the package `a`'s `__init__`), and `from a import b` is an edge to `a.b` when that is a module
of the project, else to `a`.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = tuple(sorted(p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()))  # every project package

# Packages whose modules still import each other in a circle (none since #16). Each entry goes when its package is
# acyclic; a circle that touches a module outside these packages fails the test at once.
KNOWN_CIRCLES: set[str] = set()


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).parts
            if "tests" in parts or "migrations" in parts or path.name.startswith("test_") or path.name == "conftest.py":
                continue
            modules[_module_name(path, root)] = path
    return modules


def _from_prefix(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module a `from X import ...` names; a relative one is resolved against this module's package."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imported_modules(tree: ast.AST, module: str, is_package: bool, modules: dict[str, Path]) -> set[str]:
    """The project modules one file imports, anywhere in it (module level, functions, `if TYPE_CHECKING:`)."""
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            prefix = _from_prefix(node, module, is_package)
            for alias in node.names:
                if f"{prefix}.{alias.name}" in modules:
                    targets.add(f"{prefix}.{alias.name}")
                elif prefix in modules:
                    targets.add(prefix)
    targets.discard(module)
    return targets


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """{module: the project modules it imports}."""
    modules = project_modules(root)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        graph[module] = imported_modules(tree, module, path.name == "__init__.py", modules)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted, largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found, key=lambda c: (-len(c), c))


def _package(module: str) -> str:
    return module.split(".", 1)[0]


def test_no_import_circle_in_application_code() -> None:
    unexpected = [cycle for cycle in cycles(import_graph()) if not {_package(m) for m in cycle} <= KNOWN_CIRCLES]
    assert not unexpected, "import circles:\n" + "\n".join(" <-> ".join(cycle) for cycle in unexpected)


def test_known_circles_are_still_there() -> None:
    """An entry of KNOWN_CIRCLES whose package has become acyclic must go, so the list only ever shrinks."""
    still = {_package(m) for cycle in cycles(import_graph()) for m in cycle}
    assert not KNOWN_CIRCLES - still, f"no circle left in {sorted(KNOWN_CIRCLES - still)}: remove from KNOWN_CIRCLES"


def test_the_graph_sees_circles_of_every_kind(tmp_path: Path) -> None:
    """The reader finds a circle through a function-level import, a relative import and `from pkg import module`."""
    (tmp_path / "archival").mkdir()
    (tmp_path / "archival" / "__init__.py").write_text("")
    (tmp_path / "archival" / "a.py").write_text("from archival import b\n")
    (tmp_path / "archival" / "b.py").write_text("def f():\n    from .c import x\n")
    (tmp_path / "archival" / "c.py").write_text("import archival.a\nx = 1\n")
    (tmp_path / "archival" / "d.py").write_text("from archival.a import thing\n")
    (tmp_path / "archival" / "tests").mkdir()
    (tmp_path / "archival" / "tests" / "test_x.py").write_text("import archival.d\n")
    assert cycles(import_graph(tmp_path)) == [["archival.a", "archival.b", "archival.c"]]
