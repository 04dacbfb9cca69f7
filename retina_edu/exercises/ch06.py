"""Checks for the exercises of ``06_focal_loss``: the focal loss against cross-entropy, and its gradient."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from retina_edu.exercises import verdict
from retina_edu.losses import sigmoid_focal_loss


def focal_over_ce(p_t: float, gamma: float) -> float:
    """FL / CE at ``p_t`` (no α): the modulating factor (1 − p_t)^γ, computed with the package."""
    logit = torch.logit(torch.tensor([p_t], dtype=torch.float64))  # y = 1, so p = p_t
    target = torch.ones(1, dtype=torch.float64)
    fl = sigmoid_focal_loss(logit, target, alpha=None, gamma=gamma)
    ce = sigmoid_focal_loss(logit, target, alpha=None, gamma=0.0)
    return (fl / ce).item()


def check_reduction_gamma5(answer: float | None) -> bool:
    """CE / FL at p_t = 0.9 with γ = 5 (1e5)."""

    def is_right(a) -> bool:
        return math.isclose(float(a), 1 / focal_over_ce(0.9, 5.0), rel_tol=1e-3)

    hint = "FL / CE is the modulating factor (1 - p_t)^γ; CE / FL is its inverse"
    return verdict("reduction_gamma5", answer, is_right, hint)


def check_p_t_for_10x(answer: float | None) -> bool:
    """The p_t at which FL (γ = 2, no α) is ten times lower than CE: 1 − √0.1 ≈ 0.684."""

    def is_right(a) -> bool:
        a = float(a)
        return 0 < a < 1 and math.isclose(focal_over_ce(a, 2.0), 0.1, rel_tol=1e-2)

    hint = "solve (1 - p_t)^2 = 1/10 for p_t"
    return verdict("p_t_for_10x", answer, is_right, hint)


def check_focal_gradient(focal_gradient: Callable[[Tensor, Tensor, float], Tensor]) -> bool:
    """``focal_gradient(x, y, gamma)`` must equal dFL/dx from autograd through the package (no α)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=generator, dtype=torch.float64) * 4
    y = (torch.rand(40, 3, generator=generator) < 0.3).double()

    def is_right(fn) -> bool:
        for gamma in (0.0, 0.5, 1.0, 2.0, 5.0):
            xg = x.clone().requires_grad_()
            (expected,) = torch.autograd.grad(sigmoid_focal_loss(xg, y, None, gamma).sum(), xg)
            got = fn(x.clone(), y.clone(), gamma)
            if not isinstance(got, Tensor) or got.shape != x.shape:
                return False
            if not torch.allclose(got.double(), expected, rtol=1e-4, atol=1e-6):
                return False
        return True

    hint = "p = sigmoid(x); p_t = p for y = 1, 1 - p for y = 0; y± = 2y - 1; then the formula as written"
    return verdict("focal_gradient", focal_gradient, is_right, hint)
