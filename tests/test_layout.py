"""The package's imports run one way, from the top (training, evaluation, the study) down to
``boxes.py`` and ``config.py``, never back up: the order the README's layout section gives."""

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "retina_edu"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_imports() -> dict[str, set[str]]:
    """Each module of the package → the package modules it imports (at any depth of its code)."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            imported |= {name for name in names if name.split(".")[0] == "retina_edu"}
        graph[module_name(path)] = imported - {module_name(path)}
    return graph


def test_no_import_runs_back_up():
    graph = package_imports()
    order = list(graphlib.TopologicalSorter(graph).static_order())  # CycleError names a cycle
    assert set(order) >= set(graph)


def test_the_bottom_imports_nothing_of_the_package():
    graph = package_imports()
    for leaf in ("retina_edu.boxes", "retina_edu.config", "retina_edu.paths"):
        assert graph[leaf] == set(), f"{leaf} imports {graph[leaf]}"


def test_the_pieces_do_not_import_the_model():
    # One concept per module: anchors, matching, losses … are usable and testable on their own.
    graph = package_imports()
    pieces = [
        "anchors",
        "backbone",
        "boxes",
        "fpn",
        "heads",
        "losses",
        "matching",
        "postprocess",
        "transform",
    ]
    for piece in pieces:
        assert "retina_edu.model" not in graph[f"retina_edu.{piece}"], piece


# The README's layer table, top to bottom ("retina_edu" is the package's __init__: it re-exports
# RetinaNet and its config). A module may import from its own layer or any layer below it.
LAYERS = {
    "top": ["ablations", "exercises"],
    "running it": ["train", "evaluate", "checkpoint", "compat", "cli"],
    "the model": ["model", ""],
    "data": ["data"],
    "the pieces": ["transform", "anchors", "matching", "backbone", "fpn", "heads", "losses", "postprocess"],
    "the bottom": ["boxes", "config", "paths", "device", "viz"],
}


def layer_of(module: str) -> int:
    """Index in LAYERS (0 = top) of a module such as 'retina_edu.data.coco'."""
    first = module.removeprefix("retina_edu").removeprefix(".").split(".")[0]
    for index, names in enumerate(LAYERS.values()):
        if first in names:
            return index
    raise AssertionError(f"{module} is in no layer of the README's table: add it there and to LAYERS")


def imports_back_up(graph: dict[str, set[str]]) -> list[str]:
    """Every import in ``graph`` of a module from a layer above the importer's."""
    return [
        f"{module} imports {name}, a layer above it"
        for module, imported in sorted(graph.items())
        for name in sorted(imported)
        if layer_of(name) < layer_of(module)
    ]


def test_imports_run_down_the_readme_layers():
    assert imports_back_up(package_imports()) == []


def test_the_layer_check_catches_an_import_back_up():
    assert imports_back_up(
        {"retina_edu.boxes": {"retina_edu.model"}, "retina_edu.data.coco": {"retina_edu.paths"}}
    ) == ["retina_edu.boxes imports retina_edu.model, a layer above it"]
    assert layer_of("retina_edu") == layer_of("retina_edu.model")
