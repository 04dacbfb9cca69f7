"""Worked answers to the exercises of 05_subnets_and_prior."""

import math


def prior_bias_for(pi):
    """sigmoid(b) = π  ⇔  b = -log((1 - π) / π). For π = 0.5 it is 0: p = 0.5, no prior."""
    return -math.log((1 - pi) / pi)


def background_loss_at_start(num_anchors, num_classes, prior_prob, alpha, gamma):
    """Every pair is a negative (y = 0) with p = π, so p_t = 1 - π and
    FL = (1 - α)·π^γ·(-log(1 - π)), the same for all num_anchors × num_classes pairs."""
    alpha_t = 1.0 if alpha is None else 1 - alpha
    per_pair = alpha_t * prior_prob**gamma * -math.log(1 - prior_prob)
    return num_anchors * num_classes * per_pair


def anchor_rows(y, num_anchors):
    """(B, A·k, H, W) → (B, H·W·A, k), rows ordered row → column → anchor."""
    b, channels, h, w = y.shape
    k = channels // num_anchors
    return y.view(b, num_anchors, k, h, w).permute(0, 3, 4, 1, 2).reshape(b, -1, k)
