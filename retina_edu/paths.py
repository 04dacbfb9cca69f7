"""Where retina_edu keeps its files: the data home, the shipped checkpoint, the study's results.

The data home holds what the package makes on first use (the synthetic data set, ~40 MB). It is,
the first that applies (as ``TORCH_HOME`` works for torch):

1. ``$RETINA_EDU_HOME``, if set;
2. the clone's ``data/`` folder, when the package runs from a clone of the repository
   (``make setup`` and ``pip install -e .`` both do);
3. ``$XDG_CACHE_HOME/retina_edu``, by default ``~/.cache/retina_edu``, after ``pip install .``
   or on Colab: never ``site-packages``.

The trained checkpoint and the ablation study's results ship inside the wheel (package data
``retina_edu/_shipped/``); in a clone they are read from ``data/checkpoints`` and ``data/results``.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "RETINA_EDU_HOME"
RESULTS_ENV = "RETINA_EDU_RESULTS"  # notebook 10 and benchmarks/ablations.py read the study from here
SHIPPED_CHECKPOINT = "retinanet_cpu.pt"

_PACKAGE = Path(__file__).resolve().parent
_SHIPPED = _PACKAGE / "_shipped"  # in a wheel: data/checkpoints and data/results, copied at build time


def clone_root() -> Path | None:
    """The repository folder when the package is imported from a clone, else ``None``."""
    root = _PACKAGE.parent
    if (root / "pyproject.toml").is_file() and (root / "data" / "checkpoints").is_dir():
        return root
    return None


def data_home() -> Path:
    """The folder for files retina_edu makes: ``$RETINA_EDU_HOME``, the clone's ``data/``, or
    ``~/.cache/retina_edu`` (``$XDG_CACHE_HOME/retina_edu``). Not created here."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    root = clone_root()
    if root is not None:
        return root / "data"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "retina_edu"


def synthetic_root() -> Path:
    """Where the synthetic data set is made: ``data_home() / "synthetic"``."""
    return data_home() / "synthetic"


def _shipped_dir(kind: str) -> Path:
    """``kind`` ("checkpoints" or "results") inside the wheel, else in the clone's ``data/``."""
    packaged = _SHIPPED / kind
    if packaged.is_dir():
        return packaged
    root = clone_root()
    if root is not None and (root / "data" / kind).is_dir():
        return root / "data" / kind
    raise FileNotFoundError(
        f"retina_edu's shipped {kind} are neither in {packaged} nor in a clone's data/{kind}: "
        "reinstall the package (pip install --force-reinstall retina_edu) or run from a clone"
    )


def shipped_checkpoint_path(name: str = SHIPPED_CHECKPOINT) -> Path:
    """The trained CPU-preset checkpoint that ships with the package (``data/checkpoints/`` in a
    clone). Load it with ``retina_edu.checkpoint.load_model(shipped_checkpoint_path())``."""
    path = _shipped_dir("checkpoints") / name
    if not path.is_file():
        raise FileNotFoundError(f"no shipped checkpoint {name!r} in {path.parent}")
    return path


def results_dir() -> Path:
    """The ablation study's saved results: ``$RETINA_EDU_RESULTS`` if set, else the shipped copy
    (``data/results/`` in a clone)."""
    env = os.environ.get(RESULTS_ENV)
    return Path(env).expanduser() if env else _shipped_dir("results")
