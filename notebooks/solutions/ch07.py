"""Worked answers to the exercises of 07_training."""

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from retina_edu.boxes import BoxCoder, box_iou
from retina_edu.losses import sigmoid_focal_loss
from retina_edu.matching import IGNORED, match_anchors
from retina_edu.train import TrainConfig


# Exercise 0: the core, every image at once
def retinanet_loss_batch(class_logits, box_deltas, anchors, targets, alpha=0.25, gamma=2.0):
    """class_logits (B, N, K), box_deltas (B, N, 4), anchors (N, 4) → the two losses of §4.1."""
    num_classes = class_logits.shape[2]
    num_gt = torch.tensor([len(t["boxes"]) for t in targets])  # (B,)
    gt_boxes = pad_sequence([t["boxes"] for t in targets], batch_first=True)  # (B, G, 4), zero-padded
    gt_labels = pad_sequence([t["labels"] for t in targets], batch_first=True)  # (B, G)
    matches = match_anchors(box_iou(gt_boxes, anchors), num_gt=num_gt)  # (B, N)
    foreground = matches >= 0
    num_fg = foreground.sum(dim=1).clamp(min=1)  # (B,)
    gt_index = matches.clamp(min=0)  # (B, N); non-foreground rows are masked below
    labels = torch.gather(gt_labels, 1, gt_index) if gt_labels.shape[1] else torch.zeros_like(matches)
    one_hot = F.one_hot(labels, num_classes) * foreground[..., None]  # (B, N, K)
    focal = sigmoid_focal_loss(class_logits, one_hot.to(class_logits), alpha, gamma)  # (B, N, K)
    focal = focal * (matches != IGNORED)[..., None]
    image, anchor = foreground.nonzero(as_tuple=True)  # (F,) each
    target_deltas = BoxCoder().encode(gt_boxes[image, gt_index[image, anchor]], anchors[anchor])  # (F, 4)
    box = F.smooth_l1_loss(box_deltas[image, anchor], target_deltas, reduction="none", beta=0.1)  # (F, 4)
    box_per_image = torch.zeros(len(targets)).index_add(0, image, box.sum(dim=1))  # (B,)
    return {
        "classification": (focal.sum(dim=(1, 2)) / num_fg).mean(),
        "box_regression": (box_per_image / num_fg).mean(),
    }


# Exercise 1: an epoch of the 2000 training images is 2000 // 16 = 125 steps (the last partial batch
# is dropped), so the default TrainConfig() with its 1000 steps makes 1000 / 125 = 8 epochs.
epochs = TrainConfig().steps / (2000 // TrainConfig().batch_size)


# Exercise 2
def paper_lr(step):
    """The paper's learning rate (§4.1): 0.01, divided by 10 at 60k and again at 80k iterations."""
    if step < 60_000:
        return 0.01
    if step < 80_000:
        return 0.001
    return 0.0001


# Exercise 3
def train_step(model, optimizer, images, targets, max_norm):
    """One training step; returns the loss before the update as a float."""
    losses = model(images, targets)  # {"classification": (), "box_regression": ()}
    loss = sum(losses.values())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item()
