"""The exercise checks of notebooks 00–03: the worked solution passes, a plausible wrong answer and
an unanswered exercise (None, or a stub that raises NotImplementedError) do not, and no check raises."""

import math

import pytest
import torch

from retina_edu.exercises import ch00, ch01, ch02, ch03

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


def _wrong_match(iou):
    best_iou, matches = iou.max(dim=0)
    matches[best_iou <= 0.5] = -2  # boundary on the wrong side
    matches[best_iou < 0.4] = -1
    return matches


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
        (ch03.check_match_without_low_quality, "match_without_low_quality", None, _wrong_match),
        (ch03.check_encode, "encode", None, _wrong_encode),
        (ch03.check_max_width_growth, "max_width_growth", 62.5, math.exp(10)),
    ],
}
PARAMS = [(chapter, *case) for chapter, cases in CASES.items() for case in cases]
IDS = [f"{chapter}-{case[1]}" for chapter, cases in CASES.items() for case in cases]


@pytest.mark.parametrize("chapter,check,name,expected,wrong", PARAMS, ids=IDS)
def test_solution_passes(chapter, check, name, expected, wrong, capsys):
    answer = getattr(load_solution(chapter), name)
    if expected is not None:
        assert answer == pytest.approx(expected)
    assert check(answer) is True
    assert capsys.readouterr().out.strip() == f"{name}: correct"


@pytest.mark.parametrize("chapter,check,name,expected,wrong", PARAMS, ids=IDS)
def test_wrong_answer_fails(chapter, check, name, expected, wrong, capsys):
    assert check(wrong) is False
    assert "not yet" in capsys.readouterr().out


@pytest.mark.parametrize("chapter,check,name,expected,wrong", PARAMS, ids=IDS)
def test_unanswered_is_not_answered(chapter, check, name, expected, wrong, capsys):
    assert check(None) is False
    assert "not answered yet" in capsys.readouterr().out
    if callable(wrong):  # a function exercise: the notebook's stub raises NotImplementedError
        assert check(stub) is False
        assert "not answered yet" in capsys.readouterr().out
