"""The exercise checks of notebooks 04-06: the worked answers pass, plausible wrong answers and
unanswered exercises (None, or a stub that raises NotImplementedError) do not."""

import math

import pytest
import torch

from retina_edu.exercises import Verdict, ch04, ch05, ch06

from .conftest import load_solution, stub

s04, s05, s06 = load_solution("ch04"), load_solution("ch05"), load_solution("ch06")


def floor_halving_sizes(height, width):
    # a plausible mistake: rounding down instead of up
    return [(height // 2**level, width // 2**level) for level in range(3, 8)]


def fpn_count_ignoring_p6_input(in_channels, channels, p6_input):
    return s04.fpn_parameter_count(in_channels, channels, "C5")  # always counts P6 from C5


def fpn_count_without_biases(in_channels, channels, p6_input):
    c, p6_in = channels, in_channels[-1] if p6_input == "C5" else channels
    return sum(ci * c for ci in in_channels) + 3 * 9 * c * c + 9 * p6_in * c + 9 * c * c


def class_major_rows(y, num_anchors):
    # a plausible mistake: split the channels as (k, A) instead of (A, k)
    b, channels, h, w = y.shape
    k = channels // num_anchors
    return y.view(b, k, num_anchors, h, w).permute(0, 3, 4, 2, 1).reshape(b, -1, k)


CASES = [
    # (check, solution, wrong answers)
    (ch04.check_pyramid_sizes, s04.pyramid_sizes, [floor_halving_sizes]),
    (
        ch04.check_fpn_parameter_count,
        s04.fpn_parameter_count,
        [fpn_count_ignoring_p6_input, fpn_count_without_biases],
    ),
    (ch04.check_p6_p7_anchor_count, s04.p6_p7_anchors, [(12 * 12 + 6 * 6) * 9, 13 * 13 + 7 * 7]),
    (
        ch05.check_prior_bias,
        s05.prior_bias_for,
        [lambda pi: math.log((1 - pi) / pi), lambda pi: -math.log(pi)],  # sign flipped; log of π only
    ),
    (
        ch05.check_background_loss_at_start,
        s05.background_loss_at_start,
        [lambda n, k, pi, a, g: n * k * -math.log(1 - pi)],  # forgets alpha and the modulating factor
    ),
    (ch05.check_anchor_rows, s05.anchor_rows, [class_major_rows]),
    (ch06.check_reduction_gamma5, s06.reduction_gamma5, [100, 1e-5]),
    (ch06.check_p_t_for_10x, s06.p_t_for_10x, [0.9, 1 - 0.1**2]),
    (
        ch06.check_focal_gradient,
        s06.focal_gradient,
        [lambda x, y, g: torch.sigmoid(x) - y, lambda x, y, g: -s06.focal_gradient(x, y, g)],
    ),
]
IDS = [case[0].__name__ for case in CASES]
NOT_ANSWERED = "not answered yet: fill in the cell above and run it"


def _name(check):
    return repr(check(None)).split(":")[0]  # the exercise's name, as the learner reads it


@pytest.mark.parametrize("check,solution,wrong", CASES, ids=IDS)
def test_solution_is_accepted(check, solution, wrong, capsys):
    result = check(solution)
    assert isinstance(result, Verdict) and result and repr(result) == f"{_name(check)}: correct"
    assert capsys.readouterr().out == ""  # the verdict is returned, not printed


@pytest.mark.parametrize("check,solution,wrong", CASES, ids=IDS)
def test_wrong_answers_are_refused(check, solution, wrong):
    for answer in wrong:
        result = check(answer)
        assert isinstance(result, Verdict) and not result
        assert repr(result).startswith(f"{_name(check)}: not yet: ") and "Hint: " in repr(result)


@pytest.mark.parametrize("check,solution,wrong", CASES, ids=IDS)
def test_unanswered_is_not_answered(check, solution, wrong):
    unanswered = [None, stub] if callable(solution) else [None]  # the stub raises NotImplementedError
    for answer in unanswered:
        result = check(answer)
        assert not result and repr(result).endswith(f": {NOT_ANSWERED}")


@pytest.mark.parametrize(
    "check,wrong,says",
    [
        (ch04.check_pyramid_sizes, floor_halving_sizes, "for a 100 × 75 input you gave"),
        (ch04.check_fpn_parameter_count, fpn_count_without_biases, "P6 from C5 you counted 323,584"),
        (ch04.check_p6_p7_anchor_count, 13 * 13 + 7 * 7, "you gave 218, which is too small"),
        (ch05.check_prior_bias, lambda pi: -math.log(pi), "pi = 0.01 you gave 4.60517, expected -4.59512"),
        (ch05.check_background_loss_at_start, lambda n, k, pi, a, g: 0.0, "3069 anchors, 5 classes, pi=0.5"),
        (ch05.check_anchor_rows, class_major_rows, "for box deltas (2, 9·4, 5, 3), A = 9, the rows"),
        (ch06.check_reduction_gamma5, 100, "you gave 100, which is too small"),
        (ch06.check_p_t_for_10x, 10.0, "p_t is a probability"),
        (ch06.check_focal_gradient, lambda x, y, g: torch.sigmoid(x) - y, "with gamma=0.5, dFL/dx"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_a_wrong_answer_is_told_what_differs(check, wrong, says):
    assert says in repr(check(wrong))


def _focal_loss_from_p(logits, targets, alpha=0.25, gamma=2.0):
    # the textbook formula: infinite loss and NaN gradients once sigmoid rounds to 0 or 1
    p = torch.sigmoid(logits)
    p_t = torch.where(targets == 1, p, 1 - p)
    alpha_t = 1.0 if alpha is None else torch.where(targets == 1, alpha, 1 - alpha)
    return -alpha_t * (1 - p_t) ** gamma * torch.log(p_t)


def _focal_loss_alpha_swapped(logits, targets, alpha=0.25, gamma=2.0):
    flipped = None if alpha is None else 1 - alpha  # α on the negatives instead of the positives
    return s06.focal_loss_from_logits(logits, targets, flipped, gamma)


def test_core_focal_loss_from_logits(capsys):
    check = ch06.check_focal_loss_from_logits
    right = check(s06.focal_loss_from_logits)
    assert right and repr(right) == "focal_loss_from_logits: correct"
    for wrong, says in (
        (_focal_loss_from_p, "inf or NaN"),
        (_focal_loss_alpha_swapped, "largest difference"),
    ):
        result = check(wrong)
        assert not result and "not yet" in repr(result) and says in repr(result) and "Hint:" in repr(result)
    for unanswered in (None, stub):
        assert "not answered yet" in repr(check(unanswered))
    assert capsys.readouterr().out == ""
