"""Data: the synthetic data set generator, a COCO-format reader, transforms and collate.

Remake the synthetic data set with ``python -m retina_edu.data`` (``--help`` for options).
"""

from retina_edu.data.coco import CocoDetection, CocoFormatError
from retina_edu.data.synthetic import CLASS_NAMES, ensure_synthetic_dataset, make_synthetic_coco
from retina_edu.data.transforms import Compose, RandomHorizontalFlip, Resize, collate

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
