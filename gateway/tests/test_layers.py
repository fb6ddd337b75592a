"""The gateway's modules import one way: no circle among them, and each layer only from the layers below it
(docs/decisions.md, "Structure: the gateway's layers"). Read from the source with `ast`, imports inside functions
and under TYPE_CHECKING included."""

import ast
from pathlib import Path

GATEWAY = Path(__file__).resolve().parents[1]

# Lowest first. A module may import its own layer's modules (without a circle) and any layer below.
LAYERS: list[tuple[str, ...]] = [
    (
        "gateway.errors",
        "gateway.metrics",
        "gateway.headers",
        "gateway.platform",
        "gateway.cache",
        "gateway.body",
        "gateway.surface",
        "gateway.framing",
        "gateway.models",
        "gateway.requestids",
        "gateway.request",
        "gateway.invalidation",
        "gateway.apps",
    ),
    ("gateway.auth", "gateway.limits"),
    ("gateway.pods",),
    ("gateway.proxy",),
    ("gateway.cold",),
    ("gateway.dispatch", "gateway.own", "gateway.server", "gateway.management"),
    ("gateway.app",),
    ("gateway.asgi", "gateway.__main__"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(GATEWAY.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def gateway_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for path in GATEWAY.rglob("*.py")
        if "tests" not in path.parts and "migrations" not in path.parts
    }


def imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The gateway modules `path` imports (`from gateway.x import y` counts y when y is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name in modules and name.startswith("gateway.")}


def import_graph() -> dict[str, set[str]]:
    modules = gateway_modules()
    return {name: imports(path, modules) - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports, as the list of modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def layer_of(module: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")


def group_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_the_gateway_has_no_import_circle() -> None:
    graph = import_graph()
    assert len(graph) > 40  # the graph was really read
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_each_layer_imports_only_from_the_layers_below() -> None:
    upward = [
        f"{module} -> {imported}"
        for module, imported_set in import_graph().items()
        for imported in imported_set
        if group_of(module) != group_of(imported) and layer_of(imported) >= layer_of(module)
        and not (layer_of(imported) == layer_of(module) == 0)
    ]  # fmt: skip
    assert upward == []


def test_the_cycle_check_finds_a_circle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_only_gateway_platform_imports_the_platforms_apps() -> None:
    """The gateway process reaches the platform's data through one module of its own (gateway.platform). (The
    `issue_token` management command is the platform's own command line, run by manage.py, not the gateway.)"""
    offenders = []
    for name, path in gateway_modules().items():
        if name.startswith("gateway.management"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.split(".")[0] in {"tenants", "archival"}
            ):
                offenders.append(f"{name}: {node.module}")
            if isinstance(node, ast.Import):
                offenders += [
                    f"{name}: {a.name}" for a in node.names if a.name.split(".")[0] in {"tenants", "archival"}
                ]
    assert [o for o in offenders if not o.startswith("gateway.platform:")] == []
