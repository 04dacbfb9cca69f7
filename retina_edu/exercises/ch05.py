"""Checks for the exercises of ``05_subnets_and_prior``: the prior bias, the background loss at the
start of training, and the (B, A·k, H, W) → (B, H·W·A, k) layout of the head's outputs.

Each check returns a ``Verdict`` (see ``retina_edu.exercises``): the reference is computed with the
package first, outside the guard, then the learner's answer on the same cases."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from retina_edu.exercises import Verdict, judge, tensor_problem, values_problem
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


def check_prior_bias(prior_bias_for: Callable[[float], float] | None) -> Verdict:
    """``prior_bias_for(pi)`` must match ``retina_edu.heads.prior_bias`` for several π."""
    return judge(
        "prior_bias_for",
        prior_bias_for,
        lambda: [prior_bias(pi) for pi in PRIORS_TO_CHECK],
        lambda fn: [fn(pi) for pi in PRIORS_TO_CHECK],
        lambda got, expected: values_problem(
            got, expected, [f"pi = {pi}" for pi in PRIORS_TO_CHECK], rel_tol=1e-6, abs_tol=1e-9
        ),
        "solve sigmoid(b) = π for b: 1 / (1 + exp(-b)) = π",
    )


def background_loss_of_package(num_anchors, num_classes, prior_prob, alpha, gamma) -> float:
    """The focal loss summed over an all-background image whose logits all equal the prior bias."""
    logits = torch.full((num_anchors, num_classes), prior_bias(prior_prob), dtype=torch.float64)
    return sigmoid_focal_loss(logits, torch.zeros_like(logits), alpha, gamma, reduction="sum").item()


def check_background_loss_at_start(background_loss_at_start: Callable[..., float] | None) -> Verdict:
    """``background_loss_at_start(num_anchors, num_classes, prior_prob, alpha, gamma)`` must equal the
    package's focal loss for an all-background image at initialisation (``alpha=None``: no α)."""
    described = [f"{n} anchors, {k} classes, pi={pi}, alpha={a}, gamma={g}" for n, k, pi, a, g in START_CASES]
    return judge(
        "background_loss_at_start",
        background_loss_at_start,
        lambda: [background_loss_of_package(*case) for case in START_CASES],
        lambda fn: [fn(*case) for case in START_CASES],
        lambda got, expected: values_problem(got, expected, described, rel_tol=1e-4),
        "for a background pair y = 0, so p_t = 1 - p with p = π: each pair adds "
        "(1 - α)·π^γ·(-log(1 - π)) (no (1 - α) factor when alpha is None); multiply by anchors × classes",
    )


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


def _anchor_rows_cases() -> list[tuple[str, Tensor, int]]:
    generator = torch.Generator().manual_seed(0)
    return [
        ("box deltas (2, 9·4, 5, 3), A = 9", torch.randn(2, 9 * 4, 5, 3, generator=generator), 9),  # k = 4
        ("class logits (1, 6·3, 4, 7), A = 6", torch.randn(1, 6 * 3, 4, 7, generator=generator), 6),  # k = 3
    ]


def check_anchor_rows(anchor_rows: Callable[[Tensor, int], Tensor] | None) -> Verdict:
    """``anchor_rows(y, A)`` must lay out ``(B, A·k, H, W)`` as ``(B, H·W·A, k)`` like the package."""
    cases = _anchor_rows_cases()

    def compare(results, expected):
        for (what, *_), got, want in zip(cases, results, expected, strict=True):
            problem = tensor_problem(got, want, f"for {what}, the rows")
            if problem is not None:
                return problem
        return None

    return judge(
        "anchor_rows",
        anchor_rows,
        lambda: [package_anchor_rows(y, a) for _, y, a in cases],
        lambda fn: [fn(y.clone(), a) for _, y, a in cases],
        compare,
        "view(B, A, k, H, W) (anchor-major channels), permute to (B, H, W, A, k), reshape to (B, -1, k)",
    )
