"""Boxes: formats, area, pairwise IoU, and the box coder (§4 "Box Regression Subnet").

Inside the package a set of boxes is an ``(N, 4)`` float tensor in xyxy order
(x1, y1, x2, y2) in absolute pixels. COCO's xywh appears only where files are read and written.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# dw, dh are clamped before exp() so that one wild prediction cannot make an infinite box:
# the largest growth is 1000/16 = 62.5x (the value torchvision and detectron2 use).
BBOX_XFORM_CLIP = math.log(1000.0 / 16)


def check_boxes(boxes: Tensor, name: str = "boxes") -> None:
    """Raise ``ValueError`` unless ``boxes`` is a finite float ``(N, 4)`` xyxy tensor, x2 > x1, y2 > y1."""
    if not isinstance(boxes, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(boxes).__name__}")
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"{name} must be (N, 4), got {tuple(boxes.shape)}")
    if not boxes.is_floating_point():
        raise ValueError(f"{name} must be a float tensor, got {boxes.dtype}")
    if not torch.isfinite(boxes).all():
        raise ValueError(f"{name} contains NaN or infinite coordinates")
    bad = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    if bad.any():
        i = int(bad.nonzero()[0])
        raise ValueError(
            f"{name}[{i}] = {boxes[i].tolist()} has zero or negative size (need x2 > x1 and y2 > y1)"
        )


def xywh_to_xyxy(boxes: Tensor) -> Tensor:
    """``(N, 4)`` COCO (x, y, w, h) → ``(N, 4)`` xyxy."""
    x, y, w, h = boxes.unbind(-1)
    return torch.stack([x, y, x + w, y + h], dim=-1)


def xyxy_to_xywh(boxes: Tensor) -> Tensor:
    """``(N, 4)`` xyxy → ``(N, 4)`` COCO (x, y, w, h)."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([x1, y1, x2 - x1, y2 - y1], dim=-1)


def xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """``(N, 4)`` xyxy → ``(N, 4)`` centre x, centre y, width, height."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    w, h = x2 - x1, y2 - y1
    return torch.stack([x1 + 0.5 * w, y1 + 0.5 * h, w, h], dim=-1)


def cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """``(N, 4)`` centre x, centre y, width, height → ``(N, 4)`` xyxy."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


def box_area(boxes: Tensor) -> Tensor:
    """``(..., 4)`` xyxy → ``(...)`` areas."""
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise intersection over union.

    boxes1: ``(..., N, 4)`` xyxy, boxes2: ``(..., M, 4)`` xyxy (leading batch dims broadcast).
    Returns ``(..., N, M)``: ``IoU[i, j] = |b1_i ∩ b2_j| / |b1_i ∪ b2_j|``.
    """
    area1 = box_area(boxes1)  # (..., N)
    area2 = box_area(boxes2)  # (..., M)
    a = boxes1[..., :, None, :]  # (..., N, 1, 4)
    b = boxes2[..., None, :, :]  # (..., 1, M, 4)
    # one coordinate at a time: each intermediate is a contiguous (..., N, M) tensor
    width = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    height = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp(min=0)
    inter = width * height  # (..., N, M)
    union = area1[..., :, None] + area2[..., None, :] - inter
    return inter / union


def clip_boxes_to_image(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Clip ``(..., 4)`` xyxy boxes to an image of ``size = (height, width)``."""
    h, w = size
    x = boxes[..., 0::2].clamp(0, w)
    y = boxes[..., 1::2].clamp(0, h)
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], dim=-1)


class BoxCoder:
    """Encode a box relative to an anchor as deltas (dx, dy, dw, dh), and decode it back.

    With anchor centre (xa, ya) and size (wa, ha) and box centre (x, y) and size (w, h)
    (Girshick et al. 2014, used unchanged by the paper)::

        dx = wx (x - xa) / wa    dy = wy (y - ya) / ha    dw = ww log(w / wa)    dh = wh log(h / ha)

    RetinaNet uses weights (1, 1, 1, 1). Decoding clamps dw, dh at ``log(1000 / 16)``.
    """

    def __init__(
        self,
        weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
        bbox_xform_clip: float = BBOX_XFORM_CLIP,
    ) -> None:
        self.weights = weights
        self.bbox_xform_clip = bbox_xform_clip

    def encode(self, boxes: Tensor, anchors: Tensor) -> Tensor:
        """boxes ``(..., 4)`` xyxy, anchors ``(..., 4)`` xyxy (same shape) → deltas ``(..., 4)``."""
        wx, wy, ww, wh = self.weights
        ax, ay, aw, ah = xyxy_to_cxcywh(anchors).unbind(-1)
        bx, by, bw, bh = xyxy_to_cxcywh(boxes).unbind(-1)
        dx = wx * (bx - ax) / aw
        dy = wy * (by - ay) / ah
        dw = ww * torch.log(bw / aw)
        dh = wh * torch.log(bh / ah)
        return torch.stack([dx, dy, dw, dh], dim=-1)

    def decode(self, deltas: Tensor, anchors: Tensor) -> Tensor:
        """deltas ``(..., 4)``, anchors ``(..., 4)`` xyxy (same shape) → boxes ``(..., 4)`` xyxy."""
        wx, wy, ww, wh = self.weights
        ax, ay, aw, ah = xyxy_to_cxcywh(anchors.to(deltas.dtype)).unbind(-1)
        dx, dy, dw, dh = deltas.unbind(-1)
        dw = (dw / ww).clamp(max=self.bbox_xform_clip)
        dh = (dh / wh).clamp(max=self.bbox_xform_clip)
        cx = dx / wx * aw + ax
        cy = dy / wy * ah + ay
        w = torch.exp(dw) * aw
        h = torch.exp(dh) * ah
        return cxcywh_to_xyxy(torch.stack([cx, cy, w, h], dim=-1))
