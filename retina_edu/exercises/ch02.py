"""Checks for the exercises of ``02_anchors``: the anchors of one level, anchor counts, anchor
shapes, the anchor order.

Each check returns a ``Verdict`` (see ``retina_edu.exercises``): the reference is computed with the
package first, outside the guard, then the learner's answer on the same cases."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from retina_edu.anchors import anchors_for_config, anchors_for_grid, cell_anchors, pyramid_grid_sizes
from retina_edu.config import RetinaNetConfig
from retina_edu.exercises import Verdict, judge, number_problem, tensor_problem

# (grid (H, W), stride (stride_y, stride_x), sizes, aspect ratios h / w)
LEVEL_CASES = [
    ((2, 3), (8, 8), [16.0], [0.5, 1.0, 2.0]),  # the notebook's small example
    ((16, 16), (8, 8), RetinaNetConfig.cpu().anchor_sizes[0], [0.5, 1.0, 2.0]),  # the CPU preset's P3
    ((13, 21), (61, 64), RetinaNetConfig.paper().anchor_sizes[3], [0.5, 1.0, 2.0]),  # P6 at 800 x 1344
    ((3, 2), (32, 16), [40.0, 50.4], [0.25, 1.0, 4.0]),  # unequal strides, other ratios
]


def check_num_anchors_1024(answer: int | None) -> Verdict:
    """Exercise 1: anchors of the paper's preset on a 1024 × 1024 image."""
    return judge(
        "num_anchors_1024",
        answer,
        lambda: len(anchors_for_config(RetinaNetConfig.paper(), (1024, 1024))),
        int,
        number_problem,
        "1024 is a multiple of 32 (no padding); level l has (1024 / 2^l)² positions with 9 anchors each",
    )


SCALE_UP = 2.0**20
WH_CASES = [(32, 1.0), (32, 0.5), (32, 2.0), (50.8, 2.0), (100, 3.0), (16, 0.25)]  # (size, ratio h / w)


def check_anchor_wh(anchor_wh: Callable | None) -> Verdict:
    """Exercise 2: ``anchor_wh(size, ratio) -> (w, h)``, unrounded, with ratio = h / w and area size²,
    the width and height of ``cell_anchors([size], [ratio])`` before it rounds."""

    def reference():
        # cell_anchors rounds its corners to whole pixels, so it is asked for an anchor 2^20 times
        # larger (float64) and scaled back: exact to about 1e-6 pixel
        out = []
        for size, ratio in WH_CASES:
            x1, y1, x2, y2 = (
                cell_anchors([size * SCALE_UP], [ratio], dtype=torch.float64)[0] / SCALE_UP
            ).tolist()
            out.append((x2 - x1, y2 - y1))
        return out

    def attempt(fn):
        return [tuple(float(v) for v in fn(size, ratio)) for size, ratio in WH_CASES]

    def compare(results, expected):
        for (size, ratio), got, (w, h) in zip(WH_CASES, results, expected, strict=True):
            if len(got) != 2:
                return f"for size {size}, ratio {ratio} you gave {len(got)} numbers; return (w, h)"
            if not (math.isclose(got[0], w, rel_tol=1e-6) and math.isclose(got[1], h, rel_tol=1e-6)):
                return (
                    f"for size {size}, ratio {ratio} you gave (w, h) = ({got[0]:.4g}, {got[1]:.4g}), "
                    f"expected ({w:.4g}, {h:.4g})"
                )
        return None

    return judge(
        "anchor_wh",
        anchor_wh,
        reference,
        attempt,
        compare,
        "keep the area: w · h = size², and the ratio: h / w = ratio. Then h = size · √ratio",
    )


def _level_cases() -> tuple[list[tuple[int, int]], list[int]]:
    """The grids of an 800 × 1344 image and anchor indices at the first, middle and last anchor of
    each level (the boundaries are where a wrong count shows)."""
    grids = pyramid_grid_sizes((800, 1344))
    per_level = [h * w * 9 for h, w in grids]
    starts = [sum(per_level[:i]) for i in range(5)]
    indices = [0, per_level[0] - 1]
    for i in range(1, 5):
        indices += [starts[i], starts[i] + per_level[i] // 2]
    indices.append(sum(per_level) - 1)
    return grids, indices


def check_level_of(level_of: Callable | None) -> Verdict:
    """Exercise 3: ``level_of(index, grid_sizes, anchors_per_position=9) -> l`` in 3..7: the pyramid
    level of anchor ``index`` in the order level → row → column → anchor."""
    grids, indices = _level_cases()

    def reference():
        # the package's own order: anchors_for_image concatenates P3 … P7; count each level's anchors
        config = RetinaNetConfig.paper()
        counts = [
            len(anchors_for_grid(cell_anchors(sizes, config.aspect_ratios), grid, (2**level, 2**level)))
            for level, grid, sizes in zip(range(3, 8), grids, config.anchor_sizes, strict=True)
        ]
        ends = torch.tensor(counts).cumsum(0)  # (5,) one past each level's last anchor
        return [3 + int((ends <= index).sum()) for index in indices]

    def compare(results, expected):
        for index, got, want in zip(indices, results, expected, strict=True):
            if got != want:
                return f"anchor {index} of an 800 × 1344 image is on P{want}, you gave {got}"
        return None

    return judge(
        "level_of",
        level_of,
        reference,
        lambda fn: [int(fn(index, grids)) for index in indices],
        compare,
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
