"""The exercise checks of notebook 10: the worked solution passes, a plausible wrong answer and an
unanswered exercise (None, or a stub that raises NotImplementedError) do not, and no check raises."""

import math
import statistics

import numpy as np
import pytest

from retina_edu.exercises import ch10

from .conftest import load_solution, stub


def _mean_over_all_seeds(runs, key, seeds):
    return statistics.mean(r["AP"] for r in runs if r["key"] == key)  # ignores seeds


def _mean_without_diverged(runs, key, seeds):
    aps = [r["AP"] for r in runs if r["key"] == key and r["seed"] in seeds and not r["diverged"]]
    return statistics.mean(aps)


def _easiest_share(fig4, gamma, kind, fraction):  # reads the curve at the fraction itself
    return float(np.interp(fraction, fig4["fraction"], fig4[f"gamma={float(gamma)} {kind}"]))


def _hardest_share_at_fraction(fig4, gamma, kind, fraction):  # 1 − curve, but at x = fraction
    return 1.0 - _easiest_share(fig4, gamma, kind, fraction)


CASES = [
    # (check, solution attribute, wrong answers)
    (ch10.check_mean_ap, "mean_ap", [_mean_over_all_seeds, _mean_without_diverged]),
    (ch10.check_hardest_share, "hardest_share", [_easiest_share, _hardest_share_at_fraction]),
    (ch10.check_negative_loss_at_init, "negative_loss_at_init", [
        lambda p, a, g: -a * p**g * math.log(1 - p),  # α instead of 1 − α
        lambda p, a, g: -(1 - a) * math.log(1 - p),  # no modulating factor
        lambda p, a, g: -(1 - a) * (1 - p) ** g * math.log(p),  # a positive's loss
    ]),
]  # fmt: skip


@pytest.mark.parametrize("check,attribute,wrong", CASES, ids=[c[1] for c in CASES])
def test_solution_passes_and_wrong_answers_do_not(check, attribute, wrong):
    assert repr(check(getattr(load_solution("ch10"), attribute))) == f"{attribute}: correct"
    for answer in wrong:
        verdict = check(answer)
        assert not verdict and "not yet" in repr(verdict) and "Hint" in repr(verdict)
    for unanswered in (None, stub):
        assert repr(check(unanswered)) == f"{attribute}: not answered yet: fill in the cell above and run it"


def test_checks_use_the_study_files_when_given():
    runs = ch10._toy_runs() + [
        {"key": "C", "seed": s, "steps": 200, "diverged": False, "AP": 0.1 * s, "seconds": 1.0}
        for s in range(4)
    ]
    assert ch10.check_mean_ap(load_solution("ch10").mean_ap, runs)
    assert not ch10.check_mean_ap(_mean_over_all_seeds, runs)
    fig4 = ch10._toy_figure4()
    fig4["gamma=5.0 negative"] = fig4["gamma=2.0 negative"]
    fig4["gamma=5.0 positive"] = fig4["gamma=2.0 positive"]
    assert ch10.check_hardest_share(load_solution("ch10").hardest_share, fig4)
    assert not ch10.check_hardest_share(_easiest_share, fig4)


def test_reference_values_by_hand():
    # bias 0 (π = 0.5), CE with α = .75: a negative costs 0.25 · log 2
    assert ch10.reference_negative_loss_at_init(0.5, 0.75, 0.0) == pytest.approx(0.25 * math.log(2))
    # π = .01, FL γ = 2, α = .25: 0.75 · 1e-4 · (−log 0.99)
    assert ch10.reference_negative_loss_at_init(0.01, 0.25, 2.0) == pytest.approx(
        0.75 * 1e-4 * -math.log(0.99), rel=1e-6
    )
    fig4 = ch10._toy_figure4()  # negatives at γ = 0: curve x², the hardest half carries 1 − 0.25
    assert ch10.reference_hardest_share(fig4, 0.0, "negative", 0.5) == pytest.approx(0.75)
