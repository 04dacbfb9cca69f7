"""Checks for the exercises of ``05_subnets_and_prior``: the prior bias, the background loss at the
start of training, and the (B, A·k, H, W) → (B, H·W·A, k) layout of the head's outputs."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from retina_edu.exercises import verdict
from retina_edu.heads import Subnet, prior_bias
from retina_edu.losses import sigmoid_focal_loss

PRIORS_TO_CHECK = (0.01, 0.1, 0.5, 0.001, 0.9)
# (num_anchors, num_classes, prior_prob, alpha, gamma)
START_CASES = (
    (3069, 5, 0.5, 0.25, 2.0),  # the CPU preset at 128 px, no prior
    (3069, 5, 0.01, 0.25, 2.0),  # ... with the prior
    (120087, 80, 0.01, 0.25, 2.0),  # the paper at 800 px
    (1000, 3, 0.2, None, 0.0),  # plain cross-entropy
    (500, 7, 0.05, 0.5, 1.0),
)


def check_prior_bias(prior_bias_for: Callable[[float], float]) -> bool:
    """``prior_bias_for(pi)`` must match ``retina_edu.heads.prior_bias`` for several π."""

    def is_right(fn) -> bool:
        return all(
            math.isclose(float(fn(pi)), prior_bias(pi), rel_tol=1e-6, abs_tol=1e-9) for pi in PRIORS_TO_CHECK
        )

    hint = "solve sigmoid(b) = π for b: 1 / (1 + exp(-b)) = π"
    return verdict("prior_bias_for", prior_bias_for, is_right, hint)


def background_loss_of_package(num_anchors, num_classes, prior_prob, alpha, gamma) -> float:
    """The focal loss summed over an all-background image whose logits all equal the prior bias."""
    logits = torch.full((num_anchors, num_classes), prior_bias(prior_prob), dtype=torch.float64)
    return sigmoid_focal_loss(logits, torch.zeros_like(logits), alpha, gamma, reduction="sum").item()


def check_background_loss_at_start(background_loss_at_start: Callable[..., float]) -> bool:
    """``background_loss_at_start(num_anchors, num_classes, prior_prob, alpha, gamma)`` must equal the
    package's focal loss for an all-background image at initialisation (``alpha=None``: no α)."""

    def is_right(fn) -> bool:
        return all(
            math.isclose(float(fn(*case)), background_loss_of_package(*case), rel_tol=1e-4)
            for case in START_CASES
        )

    hint = (
        "for a background pair y = 0, so p_t = 1 - p with p = π: each pair adds "
        "(1 - α)·π^γ·(-log(1 - π)) (no (1 - α) factor when alpha is None); multiply by anchors × classes"
    )
    return verdict("background_loss_at_start", background_loss_at_start, is_right, hint)


def package_anchor_rows(y: Tensor, num_anchors: int) -> Tensor:
    """What ``retina_edu.heads.Subnet`` does with a predictor output ``y``: its predictor is set to
    the identity (a 3×3 conv with a single 1 in the centre), so the subnet only lays ``y`` out."""
    channels = y.shape[1]
    with torch.random.fork_rng(devices=[]):  # the subnet's random init must not move the learner's seed
        subnet = Subnet(channels, num_anchors, channels // num_anchors, num_convs=0)
    with torch.no_grad():
        subnet.predictor.weight.zero_()
        subnet.predictor.weight[:, :, 1, 1] = torch.eye(channels)
        subnet.predictor.bias.zero_()
        return subnet([y])


def check_anchor_rows(anchor_rows: Callable[[Tensor, int], Tensor]) -> bool:
    """``anchor_rows(y, A)`` must lay out ``(B, A·k, H, W)`` as ``(B, H·W·A, k)`` like the package."""
    generator = torch.Generator().manual_seed(0)
    cases = [
        (torch.randn(2, 9 * 4, 5, 3, generator=generator), 9),  # box deltas: k = 4
        (torch.randn(1, 6 * 3, 4, 7, generator=generator), 6),  # class logits: k = 3
    ]

    def is_right(fn) -> bool:
        for y, num_anchors in cases:
            got = fn(y.clone(), num_anchors)
            expected = package_anchor_rows(y, num_anchors)
            if not isinstance(got, Tensor) or got.shape != expected.shape:
                return False
            if not torch.allclose(got, expected, atol=1e-6):
                return False
        return True

    hint = "view(B, A, k, H, W) (anchor-major channels), permute to (B, H, W, A, k), reshape to (B, -1, k)"
    return verdict("anchor_rows", anchor_rows, is_right, hint)
