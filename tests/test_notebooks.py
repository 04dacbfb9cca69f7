"""Hygiene of the stored notebooks (nbval runs them; this checks how they are stored)."""

import json
import re
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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_after_pip_install_and_shows_its_verdicts(path):
    nb = json.loads(path.read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    # a clone's ../data is not there after `pip install .`: load_split, load_shipped_model and
    # retina_edu.paths.shipped_checkpoint_path find the files wherever the package is
    assert "../data" not in code and '"data" / "checkpoints"' not in code
    assert "RETINA_EDU_QUICK" not in code, "use retina_edu.config.quick_mode()"
    # a check returns a Verdict whose repr is the line to read: a trailing ';' would hide it
    assert not re.search(r"^ch\d\d\.check_\w+\(.*\);\s*$", code, re.M), "drop the ';' after a check"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_figures_have_alt_text_and_bars_their_final_state(path):
    nb = json.loads(path.read_text())
    for index, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        if any("image/png" in o.get("data", {}) for o in cell["outputs"]):
            assert cell["metadata"].get("alt", "").strip(), f"code cell {index}: a figure without alt text"
        for output in cell["outputs"]:
            text = "".join(output.get("text", ""))
            for done, total in re.findall(r"(\d+)/(\d+) \[", text):  # tqdm's "7/300 [00:01<..."
                assert done == total, f"code cell {index}: a progress bar stored at {done}/{total}"
