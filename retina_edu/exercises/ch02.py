"""Checks for the exercises of ``02_anchors``: the anchors of one level, anchor counts, anchor
shapes, the anchor order."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from retina_edu.anchors import anchors_for_grid, anchors_for_image, cell_anchors, pyramid_grid_sizes
from retina_edu.config import RetinaNetConfig
from retina_edu.exercises import Verdict, judge, tensor_problem, verdict

# (grid (H, W), stride (stride_y, stride_x), sizes, aspect ratios h / w)
LEVEL_CASES = [
    ((2, 3), (8, 8), [16.0], [0.5, 1.0, 2.0]),  # the notebook's small example
    ((16, 16), (8, 8), RetinaNetConfig.cpu().anchor_sizes[0], [0.5, 1.0, 2.0]),  # the CPU preset's P3
    ((13, 21), (61, 64), RetinaNetConfig.paper().anchor_sizes[3], [0.5, 1.0, 2.0]),  # P6 at 800 x 1344
    ((3, 2), (32, 16), [40.0, 50.4], [0.25, 1.0, 4.0]),  # unequal strides, other ratios
]


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
            if not (
                math.isclose(float(w), size / math.sqrt(ratio), rel_tol=1e-6)
                and math.isclose(float(h), size * math.sqrt(ratio), rel_tol=1e-6)
            ):
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


def check_level_anchors(level_anchors: Callable | None) -> Verdict:
    """The core: ``level_anchors(grid_size, stride, sizes, aspect_ratios) -> (H·W·A, 4)`` xyxy, the
    anchors of one pyramid level, equal to ``anchors_for_grid(cell_anchors(sizes, ratios), ...)``."""

    def reference():
        return [
            anchors_for_grid(cell_anchors(sizes, ratios), grid, stride)
            for grid, stride, sizes, ratios in LEVEL_CASES
        ]

    def attempt(fn):
        return [fn(grid, stride, list(sizes), list(ratios)) for grid, stride, sizes, ratios in LEVEL_CASES]

    def compare(results, expected):
        for (grid, stride, sizes, ratios), got, want in zip(LEVEL_CASES, results, expected, strict=True):
            case = f"grid {grid}, stride {stride}, {len(sizes)} sizes x {len(ratios)} ratios"
            problem = tensor_problem(got, want, f"for {case}, the anchors", atol=1e-4)
            if problem is None:
                continue
            if isinstance(got, torch.Tensor) and got.shape == want.shape:
                row = int((got.float() - want).abs().amax(dim=1).argmax())
                a = len(sizes) * len(ratios)
                position, anchor = divmod(row, a)
                problem = (
                    f"for {case}, row {row} (position (row {position // grid[1]}, column "
                    f"{position % grid[1]}), anchor {anchor}) is {[round(v, 2) for v in got[row].tolist()]}, "
                    f"expected {want[row].tolist()}"
                )
            return problem
        return None

    return judge(
        "level_anchors",
        level_anchors,
        reference,
        attempt,
        compare,
        "cell anchors: for each ratio, for each size, w = s/√r, h = s·√r, xyxy (-w/2, -h/2, w/2, h/2) "
        "rounded; then position (i, j) adds (j·stride_x, i·stride_y, j·stride_x, i·stride_y); order "
        "row → column → anchor",
    )
