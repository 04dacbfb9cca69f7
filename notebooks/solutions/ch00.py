"""Worked answers to the exercises of 00_overview."""

import math

from retina_edu.anchors import anchors_for_config
from retina_edu.boxes import box_iou
from retina_edu.config import RetinaNetConfig
from retina_edu.data import load_split
from retina_edu.matching import BACKGROUND, IGNORED, match_anchors

# Exercise 1: 9 anchors × (32² + 16² + 8² + 4² + 2²) positions = 9 × 1364
num_anchors_256 = 9 * sum(math.ceil(256 / 2**level) ** 2 for level in range(3, 8))  # 12276


# Exercise 2
def count_matches(matches):
    """matches (A,) → (foreground, background, ignored) anchor counts."""
    return int((matches >= 0).sum()), int((matches == BACKGROUND).sum()), int((matches == IGNORED).sum())


# Exercise 3
def _paper_fg_fraction():
    train = load_split("train")
    anchors = anchors_for_config(RetinaNetConfig.paper(), (800, 800))  # grids ceil(800 / 2^l): (120087, 4)
    matches = match_anchors(box_iou(train.target(0)["boxes"] * 800 / 128, anchors))
    return float((matches >= 0).sum()) / len(anchors)


paper_fg_fraction = _paper_fg_fraction()  # 143 / 120087 ≈ 0.0012: about 1 anchor in 840
