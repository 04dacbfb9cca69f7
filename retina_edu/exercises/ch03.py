"""Checks for the exercises of ``03_matching_and_encoding``: the matcher, encoding one box, and the
clamp of decoding."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from retina_edu.anchors import anchors_for_image, pyramid_grid_sizes
from retina_edu.boxes import BBOX_XFORM_CLIP, BoxCoder, box_iou
from retina_edu.config import RetinaNetConfig
from retina_edu.exercises import Verdict, judge, tensor_problem, verdict
from retina_edu.matching import match_anchors


def _matching_cases() -> list[tuple[torch.Tensor, float, float]]:
    """IoU matrices ``(G, A)`` with thresholds: real boxes against the CPU preset's 3,069 anchors
    (ties between anchors included), one object no anchor covers well, and values on the thresholds."""
    config = RetinaNetConfig.cpu()
    anchors = anchors_for_image(
        (128, 128), pyramid_grid_sizes((128, 128)), config.anchor_sizes, config.aspect_ratios
    )
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(6, 2, generator=gen) * 90
    boxes = torch.cat([xy, xy + 8 + torch.rand(6, 2, generator=gen) * 60], dim=1)  # (6, 4) xyxy
    boxes = torch.cat([boxes, torch.tensor([[50.0, 50.0, 57.0, 56.0]])])  # best IoU below 0.4
    on_thresholds = torch.tensor([[0.1, 0.4, 0.5, 0.45, 0.2], [0.39, 0.0, 0.3, 0.6, 0.35]])
    return [
        (box_iou(boxes, anchors), 0.5, 0.4),
        (box_iou(boxes[:2], anchors), 0.6, 0.3),
        (on_thresholds, 0.5, 0.4),
        (on_thresholds, 0.6, 0.5),
    ]


def check_matcher(matcher: Callable | None) -> Verdict:
    """The core: ``matcher(iou (G, A), fg_thresh, bg_thresh) -> (A,)`` int64 object indices,
    ``BACKGROUND`` or ``IGNORED``, with every object's best anchors kept: ``match_anchors``."""
    cases = _matching_cases()

    def reference():
        return [match_anchors(iou, fg, bg) for iou, fg, bg in cases]

    def attempt(fn):
        return [fn(iou.clone(), fg, bg) for iou, fg, bg in cases]

    def compare(results, expected):
        for (iou, fg, bg), got, want in zip(cases, results, expected, strict=True):
            case = f"a ({iou.shape[0]}, {iou.shape[1]}) IoU matrix with thresholds {fg} / {bg}"
            problem = tensor_problem(got, want, f"for {case}, the matches")
            if problem is None:
                continue
            if isinstance(got, torch.Tensor) and got.shape == want.shape:
                a = int((got.long() != want).nonzero()[0])
                problem = (
                    f"for {case}, anchor {a} (best IoU {iou[:, a].max().item():.3f}, object "
                    f"{int(iou[:, a].argmax())}) got {int(got[a])}, expected {int(want[a])}"
                )
            return problem
        return None

    return judge(
        "matcher",
        matcher,
        reference,
        attempt,
        compare,
        "each anchor's best object (max over dim 0): IoU >= fg_thresh keeps it, < bg_thresh is BACKGROUND "
        "(-1), in between IGNORED (-2); then every anchor that ties for an object's highest IoU gets its own "
        "best object back, whatever the thresholds said",
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
