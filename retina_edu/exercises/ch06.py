"""Checks for the exercises of ``06_focal_loss``: the focal loss itself, the focal loss against
cross-entropy, and its gradient.

Each check returns a ``Verdict`` (see ``retina_edu.exercises``): the reference is computed with the
package first, outside the guard, then the learner's answer on the same cases."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from retina_edu.exercises import Verdict, judge, number_problem, tensor_problem
from retina_edu.losses import sigmoid_focal_loss


def focal_over_ce(p_t: float, gamma: float) -> float:
    """FL / CE at ``p_t`` (no α): the modulating factor (1 − p_t)^γ, computed with the package."""
    logit = torch.logit(torch.tensor([p_t], dtype=torch.float64))  # y = 1, so p = p_t
    target = torch.ones(1, dtype=torch.float64)
    fl = sigmoid_focal_loss(logit, target, alpha=None, gamma=gamma)
    ce = sigmoid_focal_loss(logit, target, alpha=None, gamma=0.0)
    return (fl / ce).item()


def check_reduction_gamma5(answer: float | None) -> Verdict:
    """CE / FL at p_t = 0.9 with γ = 5 (1e5)."""
    return judge(
        "reduction_gamma5",
        answer,
        lambda: 1 / focal_over_ce(0.9, 5.0),
        float,
        lambda got, expected: number_problem(got, expected, rel_tol=1e-3),
        "FL / CE is the modulating factor (1 - p_t)^γ; CE / FL is its inverse",
    )


def p_t_where_focal_is(ratio: float, gamma: float) -> float:
    """The p_t at which FL / CE (no α) equals ``ratio``: bisection on the package's loss, which
    falls as p_t grows. For ratio 0.1 and γ = 2 it is 1 − √0.1 ≈ 0.684."""
    low, high = 1e-9, 1 - 1e-9
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if focal_over_ce(middle, gamma) > ratio else (low, middle)
    return (low + high) / 2


def check_p_t_for_10x(answer: float | None) -> Verdict:
    """The p_t at which FL (γ = 2, no α) is ten times lower than CE: 1 − √0.1 ≈ 0.684."""

    def compare(got: float, expected: float) -> str | None:
        if not 0 < got < 1:
            return f"you gave {got:g}: p_t is a probability, between 0 and 1"
        # within 1e-3 of p_t, FL / CE = (1 - p_t)^2 is within 1 % of 1/10
        return number_problem(got, expected, abs_tol=1e-3)

    return judge(
        "p_t_for_10x",
        answer,
        lambda: p_t_where_focal_is(0.1, 2.0),
        float,
        compare,
        "solve (1 - p_t)^2 = 1/10 for p_t",
    )


FOCAL_GAMMAS = (0.0, 0.5, 1.0, 2.0, 5.0)


def check_focal_gradient(focal_gradient: Callable[[Tensor, Tensor, float], Tensor] | None) -> Verdict:
    """``focal_gradient(x, y, gamma)`` must equal dFL/dx from autograd through the package (no α)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=generator, dtype=torch.float64) * 4  # (N, K) logits
    y = (torch.rand(40, 3, generator=generator) < 0.3).double()  # (N, K) targets

    def reference():
        grads = []
        for gamma in FOCAL_GAMMAS:
            xg = x.clone().requires_grad_()
            grads.append(torch.autograd.grad(sigmoid_focal_loss(xg, y, None, gamma).sum(), xg)[0])
        return grads

    def compare(results, expected):
        for gamma, got, want in zip(FOCAL_GAMMAS, results, expected, strict=True):
            problem = tensor_problem(got, want, f"with gamma={gamma}, dFL/dx", rtol=1e-4, atol=1e-6)
            if problem is not None:
                return problem
        return None

    return judge(
        "focal_gradient",
        focal_gradient,
        reference,
        lambda fn: [fn(x.clone(), y.clone(), gamma) for gamma in FOCAL_GAMMAS],
        compare,
        "p = sigmoid(x); p_t = p for y = 1, 1 - p for y = 0; y± = 2y - 1; then the formula as written",
    )


FOCAL_SETTINGS = [(0.25, 2.0), (None, 2.0), (0.25, 0.0), (0.75, 0.0), (0.5, 0.5), (0.25, 5.0)]  # (α, γ)


def _focal_cases() -> list[tuple[str, Tensor, Tensor, float | None, float]]:
    """(what, logits, targets, α, γ): moderate float64 logits for every setting, then float32 logits
    of ±50 and ±10⁴, confidently right and confidently wrong, where sigmoid rounds to 0 or 1."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(60, 5, generator=generator, dtype=torch.float64) * 3  # (N, K)
    targets = (torch.rand(60, 5, generator=generator) < 0.2).double()
    cases = [(f"alpha={a}, gamma={g}", logits, targets, a, g) for a, g in FOCAL_SETTINGS]
    extreme = torch.tensor([50.0, -50.0, -50.0, 50.0, 1e4, -1e4, -1e4, 1e4])  # float32
    extreme_targets = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0])  # right, right, wrong, wrong
    cases += [
        (f"float32 logits of ±50 and ±1e4, gamma={g}", extreme, extreme_targets, 0.25, g) for g in (0.5, 2.0)
    ]
    return cases


def check_focal_loss_from_logits(focal_loss_from_logits: Callable | None) -> Verdict:
    """The core: ``focal_loss_from_logits(logits, targets, alpha=0.25, gamma=2.0)``, element-wise from logits
    (``alpha=None``: no α), equal to ``sigmoid_focal_loss`` in value and gradient, also where
    sigmoid rounds to 0 or 1."""
    cases = _focal_cases()

    def value_and_grad(fn, x, y, a, g):
        x = x.clone().requires_grad_()
        value = fn(x, y.clone(), a, g)
        (grad,) = torch.autograd.grad(value.sum(), x)
        return value.detach(), grad

    def reference():
        return [value_and_grad(sigmoid_focal_loss, x, y, a, g) for _, x, y, a, g in cases]

    def attempt(fn):
        return [value_and_grad(fn, x, y, a, g) for _, x, y, a, g in cases]

    def compare(results, expected):
        for (what, *_), (value, grad), (want_value, want_grad) in zip(cases, results, expected, strict=True):
            problem = tensor_problem(
                value, want_value, f"with {what}, the loss", rtol=1e-4
            ) or tensor_problem(grad, want_grad, f"with {what}, the gradient", rtol=1e-4)
            if problem is not None:
                return problem
        return None

    return judge(
        "focal_loss_from_logits",
        focal_loss_from_logits,
        reference,
        attempt,
        compare,
        "z = (1 - 2y)·x is positive when wrong; -log(p_t) = softplus(z) and (1 - p_t)^γ = "
        "exp(γ·logsigmoid(z)); multiply by α for y = 1 and 1 - α for y = 0 unless alpha is None",
    )
