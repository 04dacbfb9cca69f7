"""Worked answers to the exercises of 01_boxes_and_iou."""

import torch

from retina_edu.boxes import box_area


# Exercise 1
def iou_after_shift(size, shift):
    """IoU of a size × size square with its copy moved ``shift`` (>= 0) pixels to the right."""
    overlap = max(size - shift, 0) * size
    return overlap / (2 * size * size - overlap)  # = (size - shift) / (size + shift) while shift < size


# Exercise 2: (16 - d) / (16 + d) = 0.5  →  d = 16 / 3
max_shift_16 = 16 / 3  # 5.33 pixels, a third of the side


# Exercise 3
def giou(boxes1, boxes2):
    """Generalised IoU (Rezatofighi et al. 2019): (N, 4), (M, 4) xyxy → (N, M)."""
    top_left = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    bottom_right = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)  # (N, M)
    union = box_area(boxes1)[:, None] + box_area(boxes2)[None, :] - inter
    enclose_tl = torch.minimum(boxes1[:, None, :2], boxes2[None, :, :2])
    enclose_br = torch.maximum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    enclosing = (enclose_br - enclose_tl).prod(-1)  # (N, M)
    return inter / union - (enclosing - union) / enclosing
