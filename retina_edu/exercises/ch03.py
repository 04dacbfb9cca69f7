"""Checks for the exercises of ``03_matching_and_encoding``: the matcher, encoding one box, and the
clamp of decoding.

Each check returns a ``Verdict`` (see ``retina_edu.exercises``): the reference is computed with the
package first, outside the guard, then the learner's answer on the same cases."""

from __future__ import annotations

from collections.abc import Callable

import torch

from retina_edu.anchors import anchors_for_config
from retina_edu.boxes import BoxCoder, box_iou
from retina_edu.config import RetinaNetConfig
from retina_edu.exercises import Verdict, judge, number_problem, tensor_problem
from retina_edu.matching import match_anchors


def _matching_cases() -> list[tuple[torch.Tensor, float, float]]:
    """IoU matrices ``(G, A)`` with thresholds: real boxes against the CPU preset's 3,069 anchors
    (ties between anchors included), one object no anchor covers well, and values on the thresholds."""
    config = RetinaNetConfig.cpu()
    anchors = anchors_for_config(config, (128, 128))  # (3069, 4) xyxy
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


def _encode_pairs() -> torch.Tensor:
    """Six (box, anchor) pairs, ``(6, 2, 4)`` xyxy, of varied size and offset."""
    gen = torch.Generator().manual_seed(1)
    xy = torch.rand(6, 2, 2, generator=gen) * 60
    return torch.cat([xy, xy + 5 + torch.rand(6, 2, 2, generator=gen) * 50], dim=-1)


def check_encode(encode: Callable | None) -> Verdict:
    """Exercise 2: ``encode(box (4,), anchor (4,)) -> (4,)`` deltas (dx, dy, dw, dh), both xyxy,
    equal to ``BoxCoder().encode``."""
    pairs = _encode_pairs()

    def compare(results, expected):
        for (box, anchor), got, want in zip(pairs, results, expected, strict=True):
            box_, anchor_ = ([round(v, 1) for v in t.tolist()] for t in (box, anchor))
            case = f"box {box_} and anchor {anchor_}"
            problem = tensor_problem(got, want, f"for {case}, (dx, dy, dw, dh)", atol=1e-5)
            if problem is not None:
                return problem
        return None

    return judge(
        "encode",
        encode,
        lambda: [BoxCoder().encode(box, anchor) for box, anchor in pairs],
        lambda fn: [
            torch.as_tensor(fn(box.clone(), anchor.clone()), dtype=torch.float32) for box, anchor in pairs
        ],
        compare,
        "dx = (x - xa) / wa and dy = (y - ya) / ha use the centres; dw = log(w / wa), dh = log(h / ha)",
    )


def check_max_width_growth(answer: float | None) -> Verdict:
    """Exercise 3: the largest factor by which decoding can make a box wider than its anchor."""

    def reference() -> float:
        # decode an absurdly large dw against a 1-pixel-wide anchor: the width that comes out is the factor
        anchor = torch.tensor([[0.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
        box = BoxCoder().decode(torch.tensor([[0.0, 0.0, 1e3, 0.0]], dtype=torch.float64), anchor)
        return float(box[0, 2] - box[0, 0])  # exp(BBOX_XFORM_CLIP) = 1000 / 16

    return judge(
        "max_width_growth",
        answer,
        reference,
        float,
        lambda got, expected: number_problem(got, expected, rel_tol=1e-4),
        "decoding clamps dw at BBOX_XFORM_CLIP before exp(); the width is exp(dw) · anchor width",
    )
