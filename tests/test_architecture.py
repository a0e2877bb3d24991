"""The package's layer rule, read from the source with ``ast``: every module imports only its
own layer or below, none imports another module's private names, and there are no cycles.

Layers (``sepsisim_jax/__init__.py`` states the rule for people):

0. ``physiology`` (imports nothing of the package but the argument checks), ``_checks``,
   ``_version`` and ``text_table`` (import nothing of the package);
1. ``envs``;
2. ``policies``, ``stochastic``, ``cohort``;
3. the analyses: ``offline``, ``ope``, ``planning``, ``counterfactual``, ``training``;
4. ``adapters``, ``gymnasium_adapter``, ``plotting``, ``cli`` and the package's front door.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "sepsisim_jax"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE
LAYERS = {
    "_checks": 0,
    "_version": 0,
    "text_table": 0,
    "physiology": 0,
    "envs": 1,
    "policies": 2,
    "stochastic": 2,
    "cohort": 2,
    "offline": 3,
    "ope": 3,
    "planning": 3,
    "counterfactual": 3,
    "training": 3,
    "trials": 3,
    "adapters": 4,
    "gymnasium_adapter": 4,
    "plotting": 4,
    "cli": 4,
    "__init__": 4,
    "__main__": 4,
}
LEAVES = ("_checks", "_version", "text_table")  # import nothing of the package


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def top(module: str) -> str:
    """The first component below the package (``__init__`` for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute name of a ``from ... import`` (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package(module) else base[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def in_type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports(module: str) -> list[tuple[str, list[str], int]]:
    """``(imported module, names imported from it, line)`` for every import of the package
    (those under ``if TYPE_CHECKING`` left out: annotations only)."""
    tree = ast.parse(MODULES[module].read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if in_type_checking(node, parents):
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    found.append((alias.name, [], node.lineno))
        elif isinstance(node, ast.ImportFrom):
            target = resolve(module, node)
            if target.split(".")[0] != PACKAGE:
                continue
            names = [alias.name for alias in node.names]
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            found += [(s, [], node.lineno) for s in submodules]
            plain = [n for n in names if f"{target}.{n}" not in MODULES]
            if plain or not submodules:
                found.append((target, plain, node.lineno))
    return found


def test_every_module_has_a_layer():
    assert {top(m) for m in MODULES} <= set(LAYERS), set(map(top, MODULES)) - set(LAYERS)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_the_layers(module):
    layer, home = LAYERS[top(module)], top(module)
    for target, _, line in imports(module):
        other = top(target)
        if target == PACKAGE:
            other = "__init__"
        where = f"{module}:{line} imports {target}"
        if home in LEAVES:
            raise AssertionError(f"{where}: {home} imports nothing of the package")
        if home == "physiology":
            assert other in ("physiology", "_checks"), f"{where}: physiology imports nothing"
        assert LAYERS[other] <= layer, f"{where}: layer {LAYERS[other]} above {layer}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_names_are_imported_from_another_module(module):
    for target, names, line in imports(module):
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        assert not private, f"{module}:{line} imports {private} from {target}"
    tree = ast.parse(MODULES[module].read_text())
    modules = {
        alias.asname or alias.name: f"{resolve(module, node)}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if f"{resolve(module, node)}.{alias.name}" in MODULES
    }
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            raise AssertionError(
                f"{module}:{node.lineno} reads {modules[node.value.id]}.{node.attr}"
            )


def test_no_import_cycles():
    graph = {m: {t for t, _, _ in imports(m) if t in MODULES and t != m} for m in MODULES}
    # A package imports its submodules to re-export them; that is no cycle.
    graph = {
        m: {t for t in targets if not (is_package(m) and t.startswith(m + "."))}
        for m, targets in graph.items()
    }
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target] if target in path else [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
