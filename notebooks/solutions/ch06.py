"""Worked answers to the exercises of 06_focal_loss."""

import math

import torch
import torch.nn.functional as F

# FL / CE = (1 - p_t)^γ, so CE / FL = 1 / (1 - 0.9)^5 = 1 / 0.1^5 = 100,000.
reduction_gamma5 = 1 / (1 - 0.9) ** 5

# (1 - p_t)^2 = 1/10  ⇔  p_t = 1 - √0.1 ≈ 0.684.
p_t_for_10x = 1 - math.sqrt(0.1)


def focal_gradient(x, y, gamma):
    """dFL/dx = y±·(1 − p_t)^γ·(γ·p_t·log(p_t) + p_t − 1), the paper's Appendix B (no α)."""
    p = torch.sigmoid(x)
    p_t = torch.where(y == 1, p, 1 - p)
    y_pm = 2 * y - 1
    return y_pm * (1 - p_t) ** gamma * (gamma * p_t * torch.log(p_t) + p_t - 1)


def focal_loss_from_logits(logits, targets, alpha=0.25, gamma=2.0):
    """FL = −α_t (1 − p_t)^γ log(p_t) from logits, through z = (1 − 2y)·x: finite for any logit."""
    z = (1 - 2 * targets) * logits  # > 0: wrong, < 0: right
    loss = F.softplus(z) * torch.exp(gamma * F.logsigmoid(z))  # −log(p_t) · (1 − p_t)^γ
    if alpha is None:
        return loss
    return torch.where(targets == 1, alpha, 1 - alpha) * loss
