"""Execute notebooks in place, top to bottom, in full mode, and store their outputs.

    python tools/execute_notebooks.py notebooks/02_anchors.ipynb [...]   # or no argument: all

Widget state is dropped from the saved file (GitHub does not render notebooks whose widget
metadata lacks it, and nbval does not need it). Prints each notebook's run time.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(path: Path) -> float:
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        notebook, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    seconds = time.perf_counter() - start
    notebook.metadata.pop("widgets", None)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return seconds


def main() -> None:
    os.environ.pop("RETINA_EDU_QUICK", None)  # stored outputs come from the full run
    os.environ["RETINA_EDU_DEVICE"] = "cpu"  # ... on the CPU, whatever this machine has
    os.environ["OMP_NUM_THREADS"] = "1"  # ... with one thread per kernel, as nbval runs them
    paths = [Path(p) for p in sys.argv[1:]] or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    for path in paths:
        print(f"{path.name}: {execute(path.resolve()):.0f} s", flush=True)


if __name__ == "__main__":
    main()
