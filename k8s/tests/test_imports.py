"""The modules of `k8s/` import one way (#16): manifests at the bottom, checks (the command) at the top.

Circles anywhere are percolate_platform/tests/test_import_graph.py's."""

import ast

from k8s import manifests

PACKAGE = manifests.K8S_DIR


def k8s_imports() -> dict[str, set[str]]:
    """Module -> the k8s modules it imports, anywhere in its body (imports inside functions count)."""
    modules = {path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for name in modules:
        deps: set[str] = set()
        for node in ast.walk(ast.parse((PACKAGE / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "k8s":
                deps |= {alias.name for alias in node.names if alias.name in modules}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("k8s."):
                deps.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[1] for a in node.names if a.name.startswith("k8s.")}
        graph[name] = deps - {name}
    return graph


def test_manifests_is_the_bottom_and_checks_the_top() -> None:
    graph = k8s_imports()
    assert graph["manifests"] == set()
    assert not [name for name, deps in graph.items() if "checks" in deps]
