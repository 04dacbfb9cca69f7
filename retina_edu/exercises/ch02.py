"""Checks for the exercises of ``02_anchors``: anchor counts, anchor shapes, the anchor order."""

from __future__ import annotations

import math
from collections.abc import Callable

from retina_edu.anchors import anchors_for_image, pyramid_grid_sizes
from retina_edu.config import RetinaNetConfig
from retina_edu.exercises import verdict


def check_num_anchors_1024(answer: int | None) -> bool:
    """Exercise 1: anchors of the paper's preset on a 1024 × 1024 image."""
    config = RetinaNetConfig.paper()
    anchors = anchors_for_image(
        (1024, 1024), pyramid_grid_sizes((1024, 1024)), config.anchor_sizes, config.aspect_ratios
    )
    truth = len(anchors)
    return verdict(
        "num_anchors_1024",
        answer,
        lambda a: int(a) == truth,
        "1024 is a multiple of 32 (no padding); level l has (1024 / 2^l)² positions with 9 anchors each",
    )


def check_anchor_wh(anchor_wh: Callable | None) -> bool:
    """Exercise 2: ``anchor_wh(size, ratio) -> (w, h)``, unrounded, with ratio = h / w and area size²."""
    cases = [(32, 1.0), (32, 0.5), (32, 2.0), (50.8, 2.0), (100, 3.0), (16, 0.25)]

    def is_right(fn: Callable) -> bool:
        for size, ratio in cases:
            w, h = fn(size, ratio)
            if not (math.isclose(float(w), size / math.sqrt(ratio), rel_tol=1e-6)
                    and math.isclose(float(h), size * math.sqrt(ratio), rel_tol=1e-6)):  # fmt: skip
                return False
        return True

    return verdict(
        "anchor_wh",
        anchor_wh,
        is_right,
        "keep the area: w · h = size², and the ratio: h / w = ratio. Then h = size · √ratio",
    )


def check_level_of(level_of: Callable | None) -> bool:
    """Exercise 3: ``level_of(index, grid_sizes, anchors_per_position=9) -> l`` in 3..7: the pyramid
    level of anchor ``index`` in the order level → row → column → anchor."""
    grids = pyramid_grid_sizes((800, 1344))
    per_level = [h * w * 9 for h, w in grids]
    starts = [sum(per_level[:i]) for i in range(5)]
    cases = [(0, 3), (per_level[0] - 1, 3)]
    for i in range(1, 5):
        cases += [(starts[i], 3 + i), (starts[i] + per_level[i] // 2, 3 + i)]
    cases.append((sum(per_level) - 1, 7))

    def is_right(fn: Callable) -> bool:
        return all(int(fn(index, grids)) == level for index, level in cases)

    return verdict(
        "level_of",
        level_of,
        is_right,
        "level P3 holds the first H3·W3·9 anchors, P4 the next H4·W4·9, …; walk the levels, subtracting",
    )
