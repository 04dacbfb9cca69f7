"""Checks for the exercises of ``00_overview``: how many anchors, and how few of them are objects."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch

from retina_edu.anchors import anchors_for_image, pyramid_grid_sizes
from retina_edu.boxes import box_iou
from retina_edu.config import RetinaNetConfig
from retina_edu.exercises import verdict
from retina_edu.matching import BACKGROUND, IGNORED, match_anchors


def _num_anchors(config: RetinaNetConfig, height: int, width: int) -> int:
    grids = pyramid_grid_sizes((height, width))
    return len(anchors_for_image((height, width), grids, config.anchor_sizes, config.aspect_ratios))


def check_num_anchors_256(answer: int | None) -> bool:
    """Exercise 1: anchors of the CPU preset on a 256 × 256 image."""
    truth = _num_anchors(RetinaNetConfig.cpu(), 256, 256)
    return verdict(
        "num_anchors_256",
        answer,
        lambda a: int(a) == truth,
        "level l has a ceil(256 / 2^l) × ceil(256 / 2^l) grid with 9 anchors at every position; add P3 … P7",
    )


def check_count_matches(count_matches: Callable | None) -> bool:
    """Exercise 2: ``count_matches(matches) -> (foreground, background, ignored)`` as ints."""
    gen = torch.Generator().manual_seed(0)
    cases = [torch.randint(-2, 5, (n,), generator=gen) for n in (1, 10, 1000)]
    cases.append(torch.full((7,), BACKGROUND))

    def is_right(fn: Callable) -> bool:
        for matches in cases:
            fg, bg, ign = fn(matches.clone())
            expected = (int((matches >= 0).sum()), int((matches == BACKGROUND).sum()),
                        int((matches == IGNORED).sum()))  # fmt: skip
            if (int(fg), int(bg), int(ign)) != expected:
                return False
        return True

    return verdict(
        "count_matches",
        count_matches,
        is_right,
        "foreground anchors hold an object index (>= 0); BACKGROUND is -1 and IGNORED is -2",
    )


@functools.cache
def paper_fg_fraction_truth() -> float:
    """The share of foreground anchors on train image 0 scaled to 800 px, with the paper's anchors."""
    from retina_edu.data import CocoDetection, ensure_synthetic_dataset

    paths = ensure_synthetic_dataset()
    train = CocoDetection(paths["train"], paths["root"] / "train")
    config = RetinaNetConfig.paper()
    anchors = anchors_for_image(
        (800, 800), pyramid_grid_sizes((800, 800)), config.anchor_sizes, config.aspect_ratios
    )
    matches = match_anchors(box_iou(train.target(0)["boxes"] * 800 / 128, anchors))
    return float((matches >= 0).sum()) / len(anchors)


def check_paper_fg_fraction(answer: float | None) -> bool:
    """Exercise 3: the foreground share with the paper's anchors at 800 px (within 2 %)."""
    return verdict(
        "paper_fg_fraction",
        answer,
        lambda a: math.isclose(float(a), paper_fg_fraction_truth(), rel_tol=0.02),
        "scale the boxes by 800 / 128, build RetinaNetConfig.paper()'s anchors for an 800 × 800 image, "
        "match, and divide the foreground count by the number of anchors (a fraction, not a percentage)",
    )
