"""Checks for the exercises of ``10_paper_ablations``: an AP over a chosen set of seeds from
``runs.json``, reading Figure 4's curves, and the loss of one negative at initialisation.

Each check returns a ``Verdict`` (see ``retina_edu.exercises``): the reference values are computed
first, outside the guard, then the learner's function on the same cases."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

from retina_edu import ablations
from retina_edu.exercises import Verdict, judge
from retina_edu.heads import prior_bias
from retina_edu.losses import sigmoid_focal_loss

# ---------------------------------------------------------------------------------- exercise 1


def reference_mean_ap(runs: Sequence[dict], key: str, seeds: Iterable[int]) -> float:
    """Mean AP of the runs of ``key`` (a setting's ``ablations.run_key``) whose seed is in ``seeds``."""
    wanted = set(seeds)
    aps = [r["AP"] for r in runs if r["key"] == key and r["seed"] in wanted]
    if not aps:
        raise ValueError(f"no run of this setting with seeds {sorted(wanted)}")
    return statistics.mean(aps)


def _toy_runs() -> list[dict]:
    """A small hand-made ``runs.json``: two settings, three seeds, other records in between."""
    aps = {("A", 0): 0.50, ("A", 1): 0.56, ("A", 2): 0.47, ("B", 0): 0.61, ("B", 1): 0.0, ("B", 2): 0.64}
    return [
        {"key": key, "seed": seed, "steps": 200, "diverged": ap == 0.0, "AP": ap, "seconds": 1.0}
        for (key, seed), ap in aps.items()
    ]


def _seed_subsets(runs: Sequence[dict]) -> list[tuple[str, tuple[int, ...]]]:
    cases = []
    for key in dict.fromkeys(r["key"] for r in runs):
        seeds = sorted({r["seed"] for r in runs if r["key"] == key})
        for subset in {(seeds[0],), tuple(seeds[:2]), tuple(seeds), tuple(seeds[1:])}:
            if subset:
                cases.append((key, subset))
    return cases


def _values_problem(got: list[float], expected: list[float], cases: list, tol: float) -> str | None:
    """The first case where ``got`` differs from ``expected`` by more than ``tol``, or ``None``."""
    for value, truth, case in zip(got, expected, cases, strict=True):
        if not math.isclose(float(value), truth, abs_tol=tol):
            return f"for {case} you gave {float(value):.6g}, expected {truth:.6g}"
    return None


def check_mean_ap(fn: Callable | None, runs: Sequence[dict] | None = None) -> Verdict:
    """Exercise 1: ``fn(runs, key, seeds)`` is the mean AP of one setting over the given seeds
    (checked on a hand-made list of runs and, when given, on the study's ``runs``)."""
    cases = [
        (data, key, seeds) for data in (_toy_runs(), list(runs or [])) for key, seeds in _seed_subsets(data)
    ]
    described = [f"seeds {list(seeds)} of a setting" for _, _, seeds in cases]
    return judge(
        "mean_ap",
        fn,
        lambda: [reference_mean_ap(data, key, seeds) for data, key, seeds in cases],
        lambda fn: [fn(data, key, list(seeds)) for data, key, seeds in cases],
        lambda got, expected: _values_problem(got, expected, described, 1e-9),
        "keep the records whose 'key' is the setting's key and whose 'seed' is one of the seeds, "
        "then average their 'AP' (a diverged run counts, with AP 0)",
    )


# ---------------------------------------------------------------------------------- exercise 2


def reference_hardest_share(fig4: dict, gamma: float, kind: str, fraction: float) -> float:
    """Share of the total loss carried by the hardest ``fraction`` of the samples of ``kind``
    ("positive" or "negative") at ``gamma``, read from Figure 4's cumulative curves: the study's own
    ``ablations.hardest_share``."""
    return ablations.hardest_share(fig4, gamma, kind, fraction)


def _toy_figure4() -> dict:
    """Curves of made-up losses, in the format of ``figure4.json``."""
    grid = np.linspace(0, 1, 101)
    out: dict = {"fraction": grid.tolist()}
    for gamma, power in ((0.0, 2.0), (0.5, 3.0), (1.0, 5.0), (2.0, 12.0)):
        for kind, extra in (("positive", 0.5), ("negative", 0.0)):
            out[f"gamma={gamma} {kind}"] = (grid ** (power + extra)).round(5).tolist()
    return out


def check_hardest_share(fn: Callable | None, fig4: dict | None = None) -> Verdict:
    """Exercise 2: ``fn(fig4, gamma, kind, fraction)`` is the share of the loss carried by the
    hardest ``fraction`` of the samples (checked on made-up curves and, when given, on ``fig4``,
    one model's curves from ``figure4.json``)."""
    cases = []
    for data in (_toy_figure4(), fig4):
        if data is not None:
            gammas = [float(k.split()[0].split("=")[1]) for k in data if k.endswith(" negative")]
            cases += [
                (data, g, kind, f)
                for g in gammas
                for kind in ("positive", "negative")
                for f in (0.5, 0.2, 0.1, 0.01)
            ]
    described = [f"gamma={g}, {kind}, hardest {f:.0%}" for _, g, kind, f in cases]
    return judge(
        "hardest_share",
        fn,
        lambda: [reference_hardest_share(*case) for case in cases],
        lambda fn: [fn(*case) for case in cases],
        lambda got, expected: _values_problem(got, expected, described, 1e-6),
        "the curve at x is the share carried by the EASIEST (lowest-loss) fraction x; the hardest "
        "fraction f carries 1 minus the curve at x = 1 - f (the grid is fig4['fraction'])",
    )


# ---------------------------------------------------------------------------------- exercise 3


def reference_negative_loss_at_init(prior_prob: float, alpha: float, gamma: float) -> float:
    """Loss of one negative (anchor, class) pair when its logit is the prior's bias: the package's
    focal loss at x = −log((1 − π)/π) with target 0, i.e. −(1 − α) π^γ log(1 − π)."""
    logit = torch.tensor([prior_bias(prior_prob)], dtype=torch.float64)
    return float(sigmoid_focal_loss(logit, torch.zeros_like(logit), alpha=alpha, gamma=gamma))


INIT_CASES = [  # (π, α, γ): Table 1's CE and FL settings, with and without the prior, and a few more
    (0.01, 0.75, 0.0), (0.5, 0.75, 0.0), (0.01, 0.25, 2.0), (0.5, 0.25, 2.0),
    (0.1, 0.5, 0.5), (0.001, 0.25, 5.0), (0.3, 0.9, 1.0),
]  # fmt: skip


def check_negative_loss_at_init(fn: Callable | None) -> Verdict:
    """Exercise 3: ``fn(prior_prob, alpha, gamma)`` is one negative's loss at initialisation."""
    described = [f"pi={p}, alpha={a}, gamma={g}" for p, a, g in INIT_CASES]

    def problem(got: list[float], expected: list[float]) -> str | None:
        for value, truth, case in zip(got, expected, described, strict=True):
            if not math.isclose(float(value), truth, rel_tol=1e-6):
                return f"for {case} you gave {float(value):.6g}, expected {truth:.6g}"
        return None

    return judge(
        "negative_loss_at_init",
        fn,
        lambda: [reference_negative_loss_at_init(*case) for case in INIT_CASES],
        lambda fn: [fn(*case) for case in INIT_CASES],
        problem,
        "at initialisation every probability is about pi; a negative has p_t = 1 - pi, so its loss "
        "is alpha_t (1 - p_t)^gamma (-log p_t) with alpha_t = 1 - alpha for a negative",
    )
