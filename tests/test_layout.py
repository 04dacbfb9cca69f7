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
