"""Worked answers to the exercises of 08_inference_and_nms."""

import math

import torch

from retina_edu.boxes import box_iou
from retina_edu.postprocess import nms


# Exercise 0: the core
def greedy_nms(boxes, scores, iou_thresh):
    """Kept indices (M,) int64, highest score first: keep the best box left, drop its overlaps, repeat."""
    order = scores.argsort(descending=True, stable=True)  # (N,) candidates left, best first
    keep = []
    while len(order) > 0:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        overlap = box_iou(boxes[best][None], boxes[rest])[0]  # (len(rest),)
        order = rest[overlap <= iou_thresh]
    return torch.tensor(keep, dtype=torch.int64)


# Exercise 1
def batched_nms_by_offsets(boxes, scores, labels, iou_thresh):
    """Class-wise NMS in one call: move each class's boxes by label × (largest coordinate + 1), so
    that boxes of different classes never overlap, then run plain NMS once."""
    if boxes.numel() == 0:
        return nms(boxes, scores, iou_thresh)
    offsets = labels.to(boxes.dtype)[:, None] * (boxes.max() + 1)  # (N, 1)
    return nms(boxes + offsets, scores, iou_thresh)


# Exercise 2: IoU 0.6 > 0.5, so the weaker box is suppressed at 0.5; 0.6 <= 0.7, so both stay at 0.7.
answer_overlap = (1, 2)

# Exercise 3: every level of an 800 × 1344 image has more than 1,000 scores (even P7: 7 × 11 × 9 × 80),
# so each of the 5 levels sends its top 1,000.
answer_max_candidates = sum(
    min(1000, math.ceil(800 / 2**level) * math.ceil(1344 / 2**level) * 9 * 80) for level in range(3, 8)
)  # 5000
