"""Each notebook's run time under nbval, as `make test` runs them (quick mode).

python benchmarks/notebook_times.py
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    total = 0.0
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        start = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                str(notebook),
                "-q",
                "-p",
                "no:cacheprovider",
                "--nbval-lax",
                "--nbval-current-env",
                "--nbval-sanitize-with",
                "notebooks/sanitize.cfg",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
        total += seconds
        status = "passed" if done.returncode == 0 else "FAILED"
        print(f"{notebook.name:34} {seconds:6.1f} s  {status}", flush=True)
    print(f"{'all notebooks':34} {total:6.1f} s")


if __name__ == "__main__":
    main()
