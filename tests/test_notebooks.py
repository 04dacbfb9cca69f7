"""Hygiene of the stored notebooks (nbval runs them; this checks how they are stored)."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_BYTES = 2_000_000


def test_the_series_is_complete():
    names = [p.stem.split("_", 1)[0] for p in NOTEBOOKS]
    assert names == [f"{i:02d}" for i in range(11)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_executed_and_clean(path):
    nb = json.loads(path.read_text())
    assert path.stat().st_size < MAX_BYTES, "notebook too large: shrink figures"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert "widgets" not in nb["metadata"], "drop widget state before committing"
    assert nb["cells"][0]["cell_type"] == "markdown"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    counts = [c["execution_count"] for c in code if c["source"]]
    assert counts == list(range(1, len(counts) + 1)), "run the notebook top to bottom before saving"
    for cell in code:
        assert all(o["output_type"] != "error" for o in cell["outputs"]), "a stored error output"
    sources = ["".join(c["source"]) for c in nb["cells"]]
    assert any("NBVAL_CHECK_OUTPUT" in s for s in sources), "no output is checked by nbval"
    assert any(s.lstrip().startswith("## Exercises") for s in sources), "no exercises section"
