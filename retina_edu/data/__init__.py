"""Data: the synthetic data set generator, a COCO-format reader, transforms and collate.

Remake the synthetic data set with ``python -m retina_edu.data`` (``--help`` for options). It is
written under ``data_home()`` (``retina_edu.paths``): ``$RETINA_EDU_HOME``, the clone's ``data/``,
or ``~/.cache/retina_edu``.
"""

from retina_edu.data.coco import CocoDetection, CocoFormatError
from retina_edu.data.synthetic import CLASS_NAMES, ensure_synthetic_dataset, load_split, make_synthetic_coco
from retina_edu.data.transforms import Compose, RandomHorizontalFlip, Resize, collate
from retina_edu.paths import data_home, synthetic_root

__all__ = [
    "CLASS_NAMES",
    "CocoDetection",
    "CocoFormatError",
    "Compose",
    "RandomHorizontalFlip",
    "Resize",
    "collate",
    "data_home",
    "ensure_synthetic_dataset",
    "load_split",
    "make_synthetic_coco",
    "synthetic_root",
]
