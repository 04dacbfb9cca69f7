"""Checks for the exercises of ``01_boxes_and_iou``: IoU of shifted squares, and generalised IoU."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torchvision.ops import generalized_box_iou

from retina_edu.boxes import box_iou
from retina_edu.exercises import verdict


def _shifted_iou(size: float, shift: float) -> float:
    square = torch.tensor([[0.0, 0.0, size, size]], dtype=torch.float64)
    return float(box_iou(square, square + torch.tensor([shift, 0.0, shift, 0.0], dtype=torch.float64)))


def check_iou_after_shift(iou_after_shift: Callable | None) -> bool:
    """Exercise 1: ``iou_after_shift(size, shift)``, a size × size square against its copy moved
    ``shift`` pixels to the right (``shift >= 0``)."""
    cases = [(16, 0), (16, 4), (16, 5.5), (32, 8), (64, 30), (10, 10), (10, 25), (128, 1)]

    def is_right(fn: Callable) -> bool:
        return all(math.isclose(float(fn(s, d)), _shifted_iou(s, d), abs_tol=1e-6) for s, d in cases)

    return verdict(
        "iou_after_shift",
        iou_after_shift,
        is_right,
        "the overlap is (size - shift) × size while shift < size, the union is 2·size² minus the overlap",
    )


def check_max_shift_16(answer: float | None) -> bool:
    """Exercise 2: the largest horizontal shift of a 16-pixel square that keeps IoU >= 0.5."""
    truth = 16 / 3  # (16 - d) / (16 + d) = 0.5
    return verdict(
        "max_shift_16",
        answer,
        lambda a: math.isclose(float(a), truth, abs_tol=0.01),
        "solve (16 - d) / (16 + d) = 0.5 for d (pixels, not a fraction of the side)",
    )


def check_giou(giou: Callable | None) -> bool:
    """Exercise 3: ``giou(boxes1 (N, 4), boxes2 (M, 4)) -> (N, M)`` generalised IoU."""
    gen = torch.Generator().manual_seed(0)

    def boxes(n: int) -> torch.Tensor:
        xy = torch.rand(n, 2, generator=gen) * 80
        return torch.cat([xy, xy + 4 + torch.rand(n, 2, generator=gen) * 40], dim=1)

    cases = [(boxes(1), boxes(1)), (boxes(5), boxes(7)), (boxes(30), boxes(20))]

    def is_right(fn: Callable) -> bool:
        for a, b in cases:
            out = fn(a.clone(), b.clone())
            if tuple(out.shape) != (len(a), len(b)):
                return False
            if not torch.allclose(out.float(), generalized_box_iou(a, b), atol=1e-5):
                return False
        return True

    return verdict(
        "giou",
        giou,
        is_right,
        "GIoU = IoU - (area of the smallest box enclosing both - area of the union) / that enclosing area; "
        "it lies in (-1, 1] and is negative for boxes that do not overlap",
    )
