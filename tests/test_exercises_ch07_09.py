"""The exercise checks of notebooks 07–09: the worked solution passes, a plausible wrong answer and
an unanswered exercise (None, or a stub that raises NotImplementedError) do not, and no check raises."""

import contextlib
import io
import math

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from torch import nn

from retina_edu.evaluate import coco_evaluate
from retina_edu.exercises import Verdict, ch07, ch08, ch09
from retina_edu.postprocess import nms
from retina_edu.train import TrainConfig

from .conftest import load_solution, stub

# ------------------------------------------------------------------------------------------- ch07


def _paper_lr_one_drop(step):
    return 0.01 if step < 60_000 else 0.001  # forgets the second division at 80k


def _train_step_without_clipping(model, optimizer, images, targets, max_norm):
    loss = sum(model(images, targets).values())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _train_step_without_zero_grad(model, optimizer, images, targets, max_norm):
    loss = sum(model(images, targets).values())
    loss.backward()  # gradients of the previous step pile up
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item()


def _ap_over_all_ious(coco_eval, category_id, iou):
    k = coco_eval.params.catIds.index(category_id)
    return float(coco_eval.eval["precision"][:, :, k, 0, -1].mean())  # ignores iou


def _ap_at_iou_0_5(coco_eval, category_id, iou):
    k = coco_eval.params.catIds.index(category_id)
    return float(coco_eval.eval["precision"][0, :, k, 0, -1].mean())  # always the first threshold


CASES = [
    # (check, solution attribute, chapter, wrong answers)
    (ch07.check_epochs, "epochs", "ch07", [ch07.default_epochs() * 1.1, TrainConfig().steps]),
    (ch07.check_paper_lr, "paper_lr", "ch07", [_paper_lr_one_drop, lambda step: 0.01]),
    (ch07.check_train_step, "train_step", "ch07",
     [_train_step_without_clipping, _train_step_without_zero_grad]),
    (ch08.check_batched_nms_by_offsets, "batched_nms_by_offsets", "ch08",
     [lambda boxes, scores, labels, t: nms(boxes, scores, t)]),  # not class-wise
    (ch08.check_overlapping_neighbours, "answer_overlap", "ch08", [(2, 2), (1, 1), (2, 1)]),
    (ch08.check_max_candidates, "answer_max_candidates", "ch08", [2945, 1000, 5001]),
    (ch09.check_ap_101, "ap_101", "ch09",
     [lambda is_tp, num_gt: float(np.mean(is_tp)) if len(is_tp) else 0.0,  # precision, not AP
      lambda is_tp, num_gt: sum(is_tp) / num_gt]),  # recall, not AP
    (ch09.check_area_ranges, "answer_areas", "ch09",
     [("small", "medium", "medium", "large"), ("small", "small", "small", "large"), ("small", "medium")]),
    (ch09.check_ap_at, "ap_at", "ch09", [_ap_over_all_ious, _ap_at_iou_0_5]),
]  # fmt: skip


NOT_ANSWERED = "not answered yet: fill in the cell above and run it"


@pytest.mark.parametrize("check,attribute,chapter,wrong", CASES, ids=[c[1] for c in CASES])
def test_solution_passes_and_wrong_answers_do_not(check, attribute, chapter, wrong, capsys):
    right = check(getattr(load_solution(chapter), attribute))
    assert isinstance(right, Verdict) and right
    name = repr(right).split(":")[0]
    assert repr(right) == f"{name}: correct"
    for answer in wrong:
        result = check(answer)
        assert isinstance(result, Verdict) and not result
        assert repr(result).startswith(f"{name}: not yet: ") and "Hint: " in repr(result)
    assert repr(check(None)) == f"{name}: {NOT_ANSWERED}"
    assert capsys.readouterr().out == ""  # the verdict is returned, not printed


@pytest.mark.parametrize(
    "check",
    [
        ch07.check_paper_lr,
        ch07.check_train_step,
        ch08.check_batched_nms_by_offsets,
        ch09.check_ap_101,
        ch09.check_ap_at,
    ],
)
def test_an_unwritten_function_is_not_answered(check):
    result = check(stub)
    assert not result and repr(result).endswith(f": {NOT_ANSWERED}")


def test_a_function_that_raises_is_not_yet():
    def broken(*args):
        raise KeyError("oops")

    result = ch09.check_ap_101(broken)
    assert not result and repr(result).startswith("ap_101: not yet: your code raised KeyError")


@pytest.mark.parametrize(
    "check,wrong,says",
    [
        (ch07.check_epochs, TrainConfig().steps, "you gave 1000, which is too large"),
        (ch07.check_paper_lr, _paper_lr_one_drop, "for step 80,000 you gave 0.001, expected 0.0001"),
        (ch07.check_train_step, _train_step_without_clipping, "step 2 returned loss"),
        (ch07.check_train_step, _train_step_without_zero_grad, "the weights differ from the reference's"),
        (ch08.check_batched_nms_by_offsets, lambda b, s, labels, t: nms(b, s, t), "kept"),
        (ch08.check_overlapping_neighbours, (2, 2), "at NMS threshold 0.5, 2 kept"),
        (ch08.check_overlapping_neighbours, (1,), "give two counts"),
        (ch08.check_max_candidates, 1000, "you gave 1000, which is too small"),
        (ch09.check_ap_101, lambda is_tp, num_gt: sum(is_tp) / num_gt, "7 detections (4 true positives)"),
        (ch09.check_area_ranges, ("small", "medium", "medium", "large"), "object (c) is not 'medium'"),
        (ch09.check_ap_at, _ap_at_iou_0_5, "for category 1 at IoU 0.7 you gave"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_a_wrong_answer_is_told_what_differs(check, wrong, says):
    assert says in repr(check(wrong))


def test_solution_epochs_is_a_hand_computation():
    assert load_solution("ch07").epochs == pytest.approx(ch07.default_epochs())


# --------------------------------------------- ch09's reference AP against pycocotools itself


def _pycocotools_ap50(is_tp: list[bool], num_gt: int) -> float:
    """AP50 from pycocotools for a ranking: one object per image 1..num_gt; a TP is an exact box on
    the next object's image, an FP a box on an image of its own without objects."""
    n_fp = len(is_tp) - sum(is_tp)
    images = [
        {"id": i, "file_name": f"{i}.png", "width": 64, "height": 64} for i in range(1, num_gt + n_fp + 1)
    ]
    box = [10.0, 10.0, 20.0, 20.0]
    annotations = [
        {"id": i, "image_id": i, "category_id": 1, "bbox": box, "area": 400.0, "iscrowd": 0}
        for i in range(1, num_gt + 1)
    ]
    gt = COCO()
    gt.dataset = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "a"}]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    results, next_gt, next_empty = [], 1, num_gt + 1
    for rank, hit in enumerate(is_tp):
        if hit:
            image, next_gt = next_gt, next_gt + 1
        else:
            image, next_empty = next_empty, next_empty + 1
        results.append({"image_id": image, "category_id": 1, "bbox": box, "score": 1.0 - rank / 1000})
    return float(coco_evaluate(gt, results, verbose=False).precision_recall(category_id=1, iou=0.5)[1].mean())


@pytest.mark.parametrize("case", range(len(ch09._ap_cases())))
def test_reference_ap_equals_pycocotools(case):
    is_tp, num_gt = ch09._ap_cases()[case]
    assert math.isclose(ch09.reference_ap_101(is_tp, num_gt), _pycocotools_ap50(is_tp, num_gt), abs_tol=1e-9)


def test_area_ranges_by_hand():
    assert [ch09.area_range(a) for a in (900, 1023.9, 1024, 9215.9, 9216, 20_000)] == [
        "small", "small", "medium", "medium", "large", "large"
    ]  # fmt: skip


def test_train_step_reference_changes_the_weights():
    torch.manual_seed(0)
    from retina_edu import RetinaNet

    model = RetinaNet(ch07.TINY).train()
    before = [p.detach().clone() for p in model.parameters()]
    images, targets = ch07._tiny_batch()
    with ch07.one_thread():
        loss = ch07.reference_train_step(
            model, torch.optim.SGD(model.parameters(), lr=0.05), images, targets, 0.5
        )
    assert math.isfinite(loss)
    assert any(not torch.equal(p, q) for p, q in zip(before, model.parameters(), strict=True))


def _loss_summed_over_images(class_logits, box_deltas, anchors, targets, alpha=0.25, gamma=2.0):
    # a plausible mistake: the images' losses summed, not averaged
    losses = load_solution("ch07").retinanet_loss_batch(
        class_logits, box_deltas, anchors, targets, alpha, gamma
    )
    return {k: v * len(targets) for k, v in losses.items()}


def _loss_ignoring_nothing(class_logits, box_deltas, anchors, targets, alpha=0.25, gamma=2.0):
    # a plausible mistake: the ignored anchors are trained as background
    solution = load_solution("ch07")
    original, solution.IGNORED = solution.IGNORED, 99  # no anchor is IGNORED any more
    try:
        return solution.retinanet_loss_batch(class_logits, box_deltas, anchors, targets, alpha, gamma)
    finally:
        solution.IGNORED = original


def _nms_by_score_ascending(boxes, scores, iou_thresh):
    return load_solution("ch08").greedy_nms(boxes, -scores, iou_thresh)


def _nms_sorted_indices(boxes, scores, iou_thresh):
    return load_solution("ch08").greedy_nms(boxes, scores, iou_thresh).sort().values


CORE = [
    (ch07.check_retinanet_loss_batch, "ch07", "retinanet_loss_batch",
     [_loss_summed_over_images, _loss_ignoring_nothing]),
    (ch08.check_greedy_nms, "ch08", "greedy_nms", [_nms_by_score_ascending, _nms_sorted_indices]),
]  # fmt: skip


@pytest.mark.parametrize("check,chapter,name,wrong", CORE, ids=[c[2] for c in CORE])
def test_core_exercise(check, chapter, name, wrong, capsys):
    right = check(getattr(load_solution(chapter), name))
    assert right and repr(right) == f"{name}: correct"
    for answer in wrong:
        result = check(answer)
        assert not result and repr(result).startswith(f"{name}: not yet:") and "Hint:" in repr(result)
    for unanswered in (None, stub):
        assert repr(check(unanswered)) == f"{name}: not answered yet: fill in the cell above and run it"
    assert capsys.readouterr().out == ""


def test_the_loss_check_leaves_the_global_rng_alone():
    before = torch.random.get_rng_state()
    ch07.check_retinanet_loss_batch(load_solution("ch07").retinanet_loss_batch)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_the_train_step_check_leaves_the_global_rng_alone():
    before = torch.random.get_rng_state()
    assert ch07.check_train_step(load_solution("ch07").train_step)
    assert torch.equal(torch.random.get_rng_state(), before)
