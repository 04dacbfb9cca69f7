"""The exercise checks of notebooks 00–03: the worked solution passes, a plausible wrong answer and
an unanswered exercise (None, or a stub that raises NotImplementedError) do not, and no check raises."""

import math

import pytest
import torch

from retina_edu.exercises import Verdict, ch00, ch01, ch02, ch03, judge

from .conftest import load_solution, stub


def _wrong_count_matches(matches):
    # counts ignored anchors as background
    return int((matches >= 0).sum()), int((matches < 0).sum()), 0


def _wrong_iou_after_shift(size, shift):
    return (size - shift) / size  # the overlap's share of one box, not IoU


def _wrong_giou(a, b):
    from retina_edu.boxes import box_iou

    return box_iou(a, b)  # plain IoU: differs wherever boxes do not fill their enclosing box


def _wrong_anchor_wh(size, ratio):
    return size * ratio, size  # ratio applied to one side only: the area changes


def _wrong_level_of(index, grid_sizes, anchors_per_position=9):
    # forgets the 9 anchors per position
    for level, (h, w) in zip(range(3, 8), grid_sizes, strict=True):
        if index < h * w:
            return level
        index -= h * w
    return 7


def _wrong_encode(box, anchor):
    # offsets of the top-left corners instead of the centres
    wa, ha = anchor[2] - anchor[0], anchor[3] - anchor[1]
    w, h = box[2] - box[0], box[3] - box[1]
    dx, dy = (box[0] - anchor[0]) / wa, (box[1] - anchor[1]) / ha
    return torch.stack([dx, dy, torch.log(w / wa), torch.log(h / ha)])


CASES = {
    "ch00": [
        (ch00.check_num_anchors_256, "num_anchors_256", 12276, 9 * (32**2 + 16**2 + 8**2 + 4**2)),
        (ch00.check_count_matches, "count_matches", None, _wrong_count_matches),
        (ch00.check_paper_fg_fraction, "paper_fg_fraction", None, 143),  # a count, not a fraction
    ],
    "ch01": [
        (ch01.check_iou_after_shift, "iou_after_shift", None, _wrong_iou_after_shift),
        (ch01.check_max_shift_16, "max_shift_16", 16 / 3, 8.0),
        (ch01.check_giou, "giou", None, _wrong_giou),
    ],
    "ch02": [
        (ch02.check_num_anchors_1024, "num_anchors_1024", 196416, 21824),
        (ch02.check_anchor_wh, "anchor_wh", None, _wrong_anchor_wh),
        (ch02.check_level_of, "level_of", None, _wrong_level_of),
    ],
    "ch03": [
        (ch03.check_encode, "encode", None, _wrong_encode),
        (ch03.check_max_width_growth, "max_width_growth", 62.5, math.exp(10)),
    ],
}
PARAMS = [(chapter, *case) for chapter, cases in CASES.items() for case in cases]
IDS = [f"{chapter}-{case[1]}" for chapter, cases in CASES.items() for case in cases]
NOT_ANSWERED = "not answered yet: fill in the cell above and run it"


@pytest.mark.parametrize("chapter,check,name,expected,wrong", PARAMS, ids=IDS)
def test_solution_passes(chapter, check, name, expected, wrong, capsys):
    answer = getattr(load_solution(chapter), name)
    if expected is not None:
        assert answer == pytest.approx(expected)
    result = check(answer)
    assert isinstance(result, Verdict) and result and repr(result) == f"{name}: correct"
    assert capsys.readouterr().out == ""  # the verdict is returned, not printed


@pytest.mark.parametrize("chapter,check,name,expected,wrong", PARAMS, ids=IDS)
def test_wrong_answer_fails(chapter, check, name, expected, wrong):
    result = check(wrong)
    assert isinstance(result, Verdict) and not result
    assert repr(result).startswith(f"{name}: not yet: ") and "Hint: " in repr(result)


@pytest.mark.parametrize("chapter,check,name,expected,wrong", PARAMS, ids=IDS)
def test_unanswered_is_not_answered(chapter, check, name, expected, wrong):
    assert repr(check(None)) == f"{name}: {NOT_ANSWERED}" and not check(None)
    if callable(wrong):  # a function exercise: the notebook's stub raises NotImplementedError
        assert repr(check(stub)) == f"{name}: {NOT_ANSWERED}" and not check(stub)


@pytest.mark.parametrize(
    "check,wrong,says",
    [
        # a number: which way it is off, not the answer itself
        (ch00.check_num_anchors_256, 9 * (32**2 + 16**2 + 8**2 + 4**2), "you gave 12240, which is too small"),
        (ch00.check_paper_fg_fraction, 143, "between 0 and 1"),
        (ch01.check_max_shift_16, 8.0, "you gave 8, which is too large"),
        # a function: the case, what came back and what was expected
        (ch00.check_count_matches, _wrong_count_matches, "(foreground, background, ignored) = "),
        (ch01.check_iou_after_shift, _wrong_iou_after_shift, "size 16, shift 4 you gave 0.75, expected 0.6"),
        (ch01.check_giou, _wrong_giou, "GIoU: largest difference"),
        (ch02.check_anchor_wh, _wrong_anchor_wh, "for size 32, ratio 0.5 you gave (w, h) = (16, 32)"),
        (ch02.check_level_of, _wrong_level_of, "is on P3, you gave 7"),
        (ch03.check_encode, _wrong_encode, "(dx, dy, dw, dh): largest difference"),
        (ch03.check_max_width_growth, math.exp(10), "which is too large"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_a_wrong_answer_is_told_what_differs(check, wrong, says):
    assert says in repr(check(wrong))


def test_a_stub_that_is_half_written_is_the_learners_error():
    def half_written(matches):
        return int((matches >= 0).sum())  # one count, not three

    result = ch00.check_count_matches(half_written)
    assert repr(result).startswith("count_matches: not yet: your code raised TypeError")


# -- the core exercises: the learner writes the piece itself; the check returns a Verdict --------


def _anchors_centred_on_cells(grid_size, stride, sizes, aspect_ratios):
    # a plausible mistake: centres at ((j + ½)·stride, (i + ½)·stride) instead of the cell's corner
    anchors = load_solution("ch02").level_anchors(grid_size, stride, sizes, aspect_ratios)
    return anchors + torch.tensor([stride[1], stride[0], stride[1], stride[0]]) / 2


def _anchors_size_major(grid_size, stride, sizes, aspect_ratios):
    # a plausible mistake: for each size, every ratio (torchvision's order is ratio-major)
    anchors = load_solution("ch02").level_anchors(grid_size, stride, sizes, aspect_ratios)
    positions = grid_size[0] * grid_size[1]
    return anchors.view(positions, len(aspect_ratios), len(sizes), 4).transpose(1, 2).reshape(-1, 4)


def _matcher_without_low_quality(iou, fg_thresh=0.5, bg_thresh=0.4):
    best_iou, matches = iou.max(dim=0)
    matches[best_iou < fg_thresh] = -2
    matches[best_iou < bg_thresh] = -1
    return matches


def _matcher_one_best_anchor(iou, fg_thresh=0.5, bg_thresh=0.4):
    # a plausible mistake: argmax keeps one best anchor per object, dropping the ties
    matches = _matcher_without_low_quality(iou, fg_thresh, bg_thresh)
    best = iou.argmax(dim=1)  # (G,)
    matches[best] = iou.max(dim=0).indices[best]
    return matches


CORE = [
    # (check, chapter, function name, wrong answers, a word the hint must carry)
    (
        ch02.check_level_anchors,
        "ch02",
        "level_anchors",
        [_anchors_centred_on_cells, _anchors_size_major],
        "row",
    ),
    (
        ch03.check_matcher,
        "ch03",
        "matcher",
        [_matcher_without_low_quality, _matcher_one_best_anchor],
        "anchor",
    ),
]


@pytest.mark.parametrize("check,chapter,name,wrong,word", CORE, ids=[c[2] for c in CORE])
def test_core_exercise(check, chapter, name, wrong, word, capsys):
    right = check(getattr(load_solution(chapter), name))
    assert isinstance(right, Verdict) and right and repr(right) == f"{name}: correct"
    for answer in wrong:
        result = check(answer)
        assert not result and repr(result).startswith(f"{name}: not yet:") and "Hint:" in repr(result)
        assert word in repr(result)
    for unanswered in (None, stub):
        assert repr(check(unanswered)) == f"{name}: not answered yet: fill in the cell above and run it"
    assert capsys.readouterr().out == ""  # the verdict is returned, not printed


def test_a_fault_of_the_checker_is_not_blamed_on_the_learner():
    def broken_reference():
        raise RuntimeError("reference went wrong")

    result = judge("x", 1, broken_reference, lambda a: a, lambda got, want: None, "a hint")
    assert not result and "checker itself failed" in repr(result) and "not of your answer" in repr(result)
    learner_error = judge("x", 1, lambda: 1, lambda a: 1 / 0, lambda got, want: None, "a hint")
    assert repr(learner_error).startswith("x: not yet: your code raised ZeroDivisionError")
