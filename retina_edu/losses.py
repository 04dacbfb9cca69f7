"""Focal loss (§3) and the RetinaNet loss (§4.1 "Focal Loss" / "Training").

For a logit x, a binary target y and p = sigmoid(x), let p_t = p if y = 1 else 1 − p. Then

    CE(p_t) = −log(p_t)                                  (cross-entropy, eq. 2)
    CE_α(p_t) = −α_t log(p_t)                            (α-balanced CE, eq. 3)
    FL(p_t) = −α_t (1 − p_t)^γ log(p_t)                  (focal loss, eq. 5)

with α_t = α for y = 1 and 1 − α for y = 0. The package computes these through z = (1 − 2y)·x,
for which −log(p_t) = softplus(z) and 1 − p_t = sigmoid(z): no probability is ever rounded to
0 or 1 before a log or a power, so the loss and its gradient stay finite for any logit and any
γ ≥ 0 (torchvision's formula gives a NaN gradient for γ < 1 once a logit saturates).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from retina_edu.boxes import BoxCoder
from retina_edu.config import FOCAL_ALPHA, FOCAL_GAMMA, SMOOTH_L1_BETA, BoxLoss
from retina_edu.matching import IGNORED

Reduction = Literal["none", "sum", "mean"]


def sigmoid_focal_loss(
    logits: Tensor,
    targets: Tensor,
    alpha: float | None = FOCAL_ALPHA,
    gamma: float = FOCAL_GAMMA,
    reduction: Reduction = "none",
) -> Tensor:
    """Focal loss FL(p_t) = −α_t (1 − p_t)^γ log(p_t), element-wise over any shape.

    logits: ``(...)`` raw scores; targets: ``(...)`` of 0s and 1s, same shape. ``alpha=None``
    means no α weighting; ``gamma=0`` turns it into (α-balanced) cross-entropy.
    ``reduction``: ``"none"`` | ``"sum"`` | ``"mean"``.
    """
    positive = targets.bool()
    z = torch.where(positive, -logits, logits)  # (...) the "wrongness" of each logit
    loss = F.softplus(z)  # −log(p_t)
    if gamma != 0:
        # log(1 − p_t) = logsigmoid(z) = z − softplus(z): one softplus serves both factors
        loss = loss * torch.exp(gamma * (z - loss))  # × (1 − p_t)^γ
    if alpha is not None:
        loss = loss * torch.where(positive, alpha, 1 - alpha)  # × α_t
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    if reduction != "none":
        raise ValueError(f"reduction must be 'none', 'sum' or 'mean', got {reduction!r}")
    return loss


def alpha_balanced_cross_entropy(
    logits: Tensor, targets: Tensor, alpha: float | None = FOCAL_ALPHA, reduction: Reduction = "none"
) -> Tensor:
    """CE_α(p_t) = −α_t log(p_t) (eq. 3): focal loss with γ = 0."""
    return sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=0.0, reduction=reduction)


def box_regression_loss(
    pred: Tensor, target: Tensor, kind: BoxLoss = "smooth_l1", beta: float = SMOOTH_L1_BETA
) -> Tensor:
    """Element-wise box loss between ``(F, 4)`` predicted and target deltas → ``(F, 4)``.

    ``"smooth_l1"`` (the paper's): 0.5 d² / β for |d| < β, else |d| − 0.5 β. ``"l1"``: |d|.
    """
    if kind == "l1":
        return (pred - target).abs()
    if kind == "smooth_l1":
        return F.smooth_l1_loss(pred, target, reduction="none", beta=beta)
    raise ValueError(f"box loss must be 'smooth_l1' or 'l1', got {kind!r}")


def retinanet_loss(
    class_logits: Tensor,
    box_deltas: Tensor,
    anchors: Tensor,
    matches: Tensor,
    gt_boxes: Tensor,
    gt_labels: Tensor,
    *,
    box_coder: BoxCoder,
    alpha: float | None = FOCAL_ALPHA,
    gamma: float = FOCAL_GAMMA,
    box_loss: BoxLoss = "smooth_l1",
    smooth_l1_beta: float = SMOOTH_L1_BETA,
) -> dict[str, Tensor]:
    """The RetinaNet loss of a batch, every image at once.

    class_logits ``(B, N, K)``, box_deltas ``(B, N, 4)``, anchors ``(N, 4)`` xyxy,
    matches ``(B, N)`` (ground-truth index, ``BACKGROUND`` or ``IGNORED``; see ``matching``),
    gt_boxes ``(B, G, 4)`` xyxy and gt_labels ``(B, G)`` padded to G boxes per image.

    §4.1: "the total focal loss of an image is computed as the sum of the focal loss over all
    ~100k anchors, normalized by the number of anchors assigned to a ground-truth box" — and
    the same normaliser for the box loss over the foreground anchors. Each image's losses are
    divided by its own foreground count (at least 1), then averaged over the batch.
    Returns ``{"classification": (), "box_regression": ()}``, float32 (float64 for float64 inputs).

    Under mixed precision (``torch.autocast``) the network's outputs arrive in bfloat16 or
    float16; the loss is reduced in float32 all the same: sums over ~100k anchors and the per-image
    normalisation would lose digits in a 16-bit float (bfloat16 keeps 8 bits of mantissa), and
    the per-image sum (``index_add``) needs one dtype on both sides.
    """
    class_logits = class_logits.to(torch.promote_types(class_logits.dtype, torch.float32))  # (B, N, K)
    box_deltas = box_deltas.to(class_logits.dtype)  # (B, N, 4)
    batch, _, num_classes = class_logits.shape
    foreground = matches >= 0  # (B, N)
    num_foreground = foreground.sum(dim=1).clamp(min=1).to(class_logits.dtype)  # (B,)
    gt_index = matches.clamp(min=0)  # (B, N); background anchors point at box 0, masked below

    # Classification: one-hot targets for foreground anchors, zeros for background, ignored dropped.
    if gt_labels.shape[1] > 0:
        anchor_labels = torch.gather(gt_labels, 1, gt_index)  # (B, N)
        targets = F.one_hot(anchor_labels, num_classes) * foreground[..., None]  # (B, N, K)
    else:
        targets = torch.zeros_like(class_logits)
    focal = sigmoid_focal_loss(class_logits, targets, alpha=alpha, gamma=gamma)  # (B, N, K)
    focal = focal * (matches != IGNORED)[..., None]
    classification = (focal.sum(dim=(1, 2)) / num_foreground).mean()

    # Box regression: only foreground anchors, against their object's encoded box.
    image_index, anchor_index = foreground.nonzero(as_tuple=True)  # (F,), (F,)
    matched_boxes = gt_boxes[image_index, gt_index[image_index, anchor_index]]  # (F, 4)
    target_deltas = box_coder.encode(matched_boxes, anchors[anchor_index]).to(box_deltas)  # (F, 4)
    per_anchor = box_regression_loss(
        box_deltas[image_index, anchor_index], target_deltas, box_loss, smooth_l1_beta
    ).sum(dim=1)  # (F,)
    per_image = box_deltas.new_zeros(batch).index_add(0, image_index, per_anchor)  # (B,)
    box_regression = (per_image / num_foreground).mean()
    return {"classification": classification, "box_regression": box_regression}
