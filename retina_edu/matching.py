"""Matching anchors to ground truth (§4 "Anchors").

"Anchors are assigned to ground-truth object boxes using an intersection-over-union (IoU)
threshold of 0.5; and to background if their IoU is in [0, 0.4). ... Anchors with IoU in
[0.4, 0.5) are ignored during training." On top of that every object keeps the anchors that
overlap it best, even below 0.5 (the "low-quality matches" of Faster R-CNN), so that no object
goes without a training target.

The result is, for each anchor, the index of its ground-truth box, or one of two sentinels.
"""

from __future__ import annotations

import torch
from torch import Tensor

from retina_edu.config import BG_IOU_THRESH, FG_IOU_THRESH

BACKGROUND = -1  # IoU < bg threshold with every object: trained towards "no object"
IGNORED = -2  # IoU between the thresholds: contributes no loss


def match_anchors(
    iou: Tensor,
    fg_iou_thresh: float = FG_IOU_THRESH,
    bg_iou_thresh: float = BG_IOU_THRESH,
    allow_low_quality_matches: bool = True,
    num_gt: Tensor | None = None,
) -> Tensor:
    """Assign each anchor a ground-truth index, ``BACKGROUND`` or ``IGNORED``.

    iou: ``(G, A)`` IoU between G ground-truth boxes and A anchors, or ``(B, G, A)`` for a batch
    whose ground truth is padded to G boxes per image (give ``num_gt``, ``(B,)``, the real count:
    the padding rows are never matched). Returns ``(A,)`` or ``(B, A)`` int64.
    """
    batched = iou.dim() == 3
    if not batched:
        iou = iou[None]
    batch, max_gt, _ = iou.shape
    real = torch.ones(batch, max_gt, 1, dtype=torch.bool, device=iou.device)  # (B, G, 1)
    if num_gt is not None:  # padding rows must lose to every real box and to the thresholds
        real = (torch.arange(max_gt, device=iou.device)[None, :] < num_gt[:, None])[:, :, None]
        iou = iou.masked_fill(~real, -1.0)
    if max_gt == 0:
        matches = torch.full(iou.shape[::2], BACKGROUND, dtype=torch.int64, device=iou.device)
        return matches if batched else matches[0]

    best_iou, matches = iou.max(dim=1)  # (B, A): each anchor's best object
    low_quality = matches.clone()
    matches[best_iou < fg_iou_thresh] = IGNORED
    matches[best_iou < bg_iou_thresh] = BACKGROUND

    if allow_low_quality_matches:
        # For each object, every anchor that ties for its highest IoU keeps its best object.
        best_per_gt = iou.max(dim=2, keepdim=True).values  # (B, G, 1)
        is_best = ((iou == best_per_gt) & real).any(dim=1)  # (B, A)
        matches = torch.where(is_best, low_quality, matches)
    if num_gt is not None:  # images without objects: everything is background
        matches[num_gt == 0] = BACKGROUND
    return matches if batched else matches[0]
