"""Checks for the exercises of ``01_boxes_and_iou``: IoU of shifted squares, and generalised IoU.

Each check returns a ``Verdict`` (see ``retina_edu.exercises``): the reference is computed first,
outside the guard (``box_iou``, torchvision's ``generalized_box_iou``), then the learner's answer."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision.ops import generalized_box_iou

from retina_edu.boxes import box_iou
from retina_edu.exercises import Verdict, judge, number_problem, tensor_problem, values_problem

SHIFT_CASES = [(16, 0), (16, 4), (16, 5.5), (32, 8), (64, 30), (10, 10), (10, 25), (128, 1)]  # (size, shift)


def _shifted_iou(size: float, shift: float) -> float:
    square = torch.tensor([[0.0, 0.0, size, size]], dtype=torch.float64)
    return float(box_iou(square, square + torch.tensor([shift, 0.0, shift, 0.0], dtype=torch.float64)))


def check_iou_after_shift(iou_after_shift: Callable | None) -> Verdict:
    """Exercise 1: ``iou_after_shift(size, shift)``, a size × size square against its copy moved
    ``shift`` pixels to the right (``shift >= 0``)."""
    described = [f"size {s}, shift {d}" for s, d in SHIFT_CASES]
    return judge(
        "iou_after_shift",
        iou_after_shift,
        lambda: [_shifted_iou(s, d) for s, d in SHIFT_CASES],
        lambda fn: [fn(s, d) for s, d in SHIFT_CASES],
        lambda got, expected: values_problem(got, expected, described, abs_tol=1e-6),
        "the overlap is (size - shift) × size while shift < size, the union is 2·size² minus the overlap",
    )


def check_max_shift_16(answer: float | None) -> Verdict:
    """Exercise 2: the largest horizontal shift of a 16-pixel square that keeps IoU >= 0.5."""

    def reference() -> float:
        # IoU falls as the shift grows: bisect the package's IoU for the shift where it crosses 0.5
        low, high = 0.0, 16.0
        for _ in range(60):
            middle = (low + high) / 2
            low, high = (middle, high) if _shifted_iou(16, middle) >= 0.5 else (low, middle)
        return low  # (16 - d) / (16 + d) = 0.5 at d = 16 / 3

    return judge(
        "max_shift_16",
        answer,
        reference,
        float,
        lambda got, expected: number_problem(got, expected, abs_tol=0.01),
        "solve (16 - d) / (16 + d) = 0.5 for d (pixels, not a fraction of the side)",
    )


def _giou_cases() -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)

    def boxes(n: int) -> torch.Tensor:  # (n, 4) xyxy
        xy = torch.rand(n, 2, generator=gen) * 80
        return torch.cat([xy, xy + 4 + torch.rand(n, 2, generator=gen) * 40], dim=1)

    return [(boxes(1), boxes(1)), (boxes(5), boxes(7)), (boxes(30), boxes(20))]


def check_giou(giou: Callable | None) -> Verdict:
    """Exercise 3: ``giou(boxes1 (N, 4), boxes2 (M, 4)) -> (N, M)`` generalised IoU, equal to
    torchvision's ``generalized_box_iou``."""
    cases = _giou_cases()

    def compare(results, expected):
        for (a, b), got, want in zip(cases, results, expected, strict=True):
            problem = tensor_problem(got, want, f"for ({len(a)}, 4) and ({len(b)}, 4) boxes, GIoU", atol=1e-5)
            if problem is not None:
                return problem
        return None

    return judge(
        "giou",
        giou,
        lambda: [generalized_box_iou(a, b) for a, b in cases],
        lambda fn: [fn(a.clone(), b.clone()) for a, b in cases],
        compare,
        "GIoU = IoU - (area of the smallest box enclosing both - area of the union) / that enclosing area; "
        "it lies in (-1, 1] and is negative for boxes that do not overlap",
    )
