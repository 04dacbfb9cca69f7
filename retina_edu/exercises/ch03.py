"""Checks for the exercises of ``03_matching_and_encoding``: matching without low-quality matches,
encoding one box, and the clamp of decoding."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from retina_edu.boxes import BBOX_XFORM_CLIP, BoxCoder
from retina_edu.exercises import verdict
from retina_edu.matching import match_anchors


def check_match_without_low_quality(match_without_low_quality: Callable | None) -> bool:
    """Exercise 1: ``match_without_low_quality(iou (G, A)) -> (A,)`` int64, thresholds 0.5 / 0.4."""
    gen = torch.Generator().manual_seed(0)
    cases = [torch.rand(g, a, generator=gen) * 0.8 for g, a in ((1, 5), (3, 50), (8, 3069))]
    cases.append(torch.tensor([[0.1, 0.4, 0.5, 0.45], [0.39, 0.0, 0.3, 0.6]]))  # values on the thresholds

    def is_right(fn: Callable) -> bool:
        for iou in cases:
            out = fn(iou.clone())
            expected = match_anchors(iou, allow_low_quality_matches=False)
            if tuple(out.shape) != tuple(expected.shape) or not torch.equal(out.long(), expected):
                return False
        return True

    return verdict(
        "match_without_low_quality",
        match_without_low_quality,
        is_right,
        "take each anchor's best object (max over dim 0); IoU >= 0.5 keeps it, < 0.4 is BACKGROUND (-1), "
        "in between IGNORED (-2)",
    )


def check_encode(encode: Callable | None) -> bool:
    """Exercise 2: ``encode(box (4,), anchor (4,)) -> (4,)`` deltas (dx, dy, dw, dh), both xyxy."""
    gen = torch.Generator().manual_seed(1)
    xy = torch.rand(6, 2, 2, generator=gen) * 60
    pairs = torch.cat([xy, xy + 5 + torch.rand(6, 2, 2, generator=gen) * 50], dim=-1)  # (6, 2, 4)
    coder = BoxCoder()

    def is_right(fn: Callable) -> bool:
        for box, anchor in pairs:
            out = torch.as_tensor(fn(box.clone(), anchor.clone()), dtype=torch.float32)
            if not torch.allclose(out, coder.encode(box, anchor), atol=1e-5):
                return False
        return True

    return verdict(
        "encode",
        encode,
        is_right,
        "dx = (x - xa) / wa and dy = (y - ya) / ha use the centres; dw = log(w / wa), dh = log(h / ha)",
    )


def check_max_width_growth(answer: float | None) -> bool:
    """Exercise 3: the largest factor by which decoding can make a box wider than its anchor."""
    truth = math.exp(BBOX_XFORM_CLIP)  # 1000 / 16
    return verdict(
        "max_width_growth",
        answer,
        lambda a: math.isclose(float(a), truth, rel_tol=1e-4),
        "decoding clamps dw at BBOX_XFORM_CLIP before exp(); the width is exp(dw) · anchor width",
    )
