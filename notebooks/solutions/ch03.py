"""Worked answers to the exercises of 03_matching_and_encoding."""

import torch

from retina_edu.matching import BACKGROUND, IGNORED


# Exercise 1
def matcher(iou, fg_thresh=0.5, bg_thresh=0.4):
    """iou (G, A) → (A,): object index where the best IoU >= fg_thresh, IGNORED in
    [bg_thresh, fg_thresh), else BACKGROUND; then each object's best anchors (ties too) are kept."""
    best_iou, best_object = iou.max(dim=0)  # (A,) each anchor's best object
    matches = best_object.clone()
    matches[best_iou < fg_thresh] = IGNORED
    matches[best_iou < bg_thresh] = BACKGROUND
    is_best = (iou == iou.max(dim=1, keepdim=True).values).any(dim=0)  # (A,) best anchor of some object
    matches[is_best] = best_object[is_best]
    return matches


# Exercise 2
def encode(box, anchor):
    """box (4,), anchor (4,) xyxy → (dx, dy, dw, dh) as a (4,) tensor."""
    w, h = box[2] - box[0], box[3] - box[1]
    x, y = box[0] + w / 2, box[1] + h / 2
    wa, ha = anchor[2] - anchor[0], anchor[3] - anchor[1]
    xa, ya = anchor[0] + wa / 2, anchor[1] + ha / 2
    return torch.stack([(x - xa) / wa, (y - ya) / ha, torch.log(w / wa), torch.log(h / ha)])


# Exercise 3: dw is clamped at log(1000 / 16) before exp(), so the width grows at most 1000 / 16
max_width_growth = 1000 / 16  # 62.5
