"""The package's import graph: no cycles (module-level or function-level imports alike), nothing imports the package
root, and imports flow one way through the layers of docs/architecture.md."""

from __future__ import annotations

import ast
from pathlib import Path

import dynamictrl

PACKAGE_DIR = Path(dynamictrl.__file__).parent

# Lowest first. A module may import from a lower layer, or from its own top-level package (without cycles).
LAYERS: dict[str, int] = {
    "errors": 0,
    "_version": 0,
    "versions": 1,
    "defaults": 0,
    "io": 1,
    "pose": 2,
    "synthetic": 3,
    "models": 3,
    "pipelines": 4,
    "evaluation": 4,
    "options": 5,
    "data": 6,
    "jobs": 6,
    "testing": 6,
    "training": 7,
    "app": 7,
    "cli": 8,
    "__main__": 9,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE_DIR.rglob("*.py")}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every `dynamictrl` module that `name` imports, wherever the import statement stands."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            if target == "dynamictrl" or target.startswith("dynamictrl."):
                # `import dynamictrl.io.media` names the module; trim to the nearest known one.
                while target not in known and "." in target:
                    target = target.rpartition(".")[0]
                found.add(target)
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(name, path, set(mods)) for name, path in mods.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer(module: str) -> tuple[str, int]:
    top = module.split(".")[1] if "." in module else "dynamictrl"
    if top == "dynamictrl":
        return top, 10
    assert top in LAYERS, f"dynamictrl.{top} has no layer: add it to LAYERS and docs/architecture.md"
    return top, LAYERS[top]


def test_there_is_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_nothing_imports_the_package_root():
    offenders = sorted(name for name, targets in graph().items() if "dynamictrl" in targets)
    assert not offenders, f"these import the package root (use dynamictrl._version for the version): {offenders}"


def test_imports_flow_down_the_layers():
    wrong = []
    for name, targets in graph().items():
        top, rank = layer(name)
        for target in targets:
            target_top, target_rank = layer(target)
            if target_top != top and target_rank >= rank:
                wrong.append(f"{name} -> {target}")
    assert not wrong, "imports against the layer order: " + ", ".join(sorted(wrong))


def test_the_checker_sees_function_level_imports_and_cycles(tmp_path):
    """The check itself can fail: a function-level import that closes a loop is reported."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    assert find_cycle(edges) == ["a", "b", "c", "a"]
    code = "def f():\n    from ..pipelines import loading\n"
    path = tmp_path / "x.py"
    path.write_text(code)
    known = {"dynamictrl.models.x", "dynamictrl.pipelines.loading", "dynamictrl.pipelines"}
    assert imports_of("dynamictrl.models.x", path, known) == {"dynamictrl.pipelines.loading"}
