"""Data: the synthetic data set generator, a COCO-format reader, transforms and collate.

The names are imported from their modules when first used, so that
``python -m retina_edu.data.synthetic`` does not find its module imported before it runs (runpy
warns about that).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .coco import CocoDetection, CocoFormatError
    from .synthetic import CLASS_NAMES, ensure_synthetic_dataset, make_synthetic_coco
    from .transforms import Compose, RandomHorizontalFlip, Resize, collate

_MODULE_OF = {
    "CLASS_NAMES": "synthetic",
    "make_synthetic_coco": "synthetic",
    "ensure_synthetic_dataset": "synthetic",
    "CocoDetection": "coco",
    "CocoFormatError": "coco",
    "Compose": "transforms",
    "RandomHorizontalFlip": "transforms",
    "Resize": "transforms",
    "collate": "transforms",
}

__all__ = [
    "CLASS_NAMES",
    "CocoDetection",
    "CocoFormatError",
    "Compose",
    "RandomHorizontalFlip",
    "Resize",
    "collate",
    "ensure_synthetic_dataset",
    "make_synthetic_coco",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
