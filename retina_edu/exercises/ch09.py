"""Checks for the exercises of ``09_coco_evaluation``: AP from a ranking, COCO area ranges, reading
pycocotools' precision array.

Each check returns a ``Verdict`` (see ``retina_edu.exercises``): the reference is computed first
(``reference_ap_101`` is tested against pycocotools), outside the guard, then the learner's answer."""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import Params

from retina_edu.evaluate import CocoEvalResult, coco_evaluate
from retina_edu.exercises import Verdict, judge, values_problem

RECALL_LEVELS = np.linspace(0.0, 1.0, 101)  # COCO's recall thresholds 0, 0.01, …, 1


def reference_ap_101(is_tp: Sequence[bool], num_gt: int) -> float:
    """COCO's 101-point interpolated AP of one class from TP/FP flags sorted best score first
    (what ``COCOeval.accumulate`` computes, with ``num_gt`` objects that are not ignored)."""
    if num_gt < 1:
        raise ValueError(f"num_gt must be >= 1, got {num_gt}")
    tp = np.asarray(is_tp, dtype=bool)
    if tp.size == 0:
        return 0.0
    tp_cum, fp_cum = np.cumsum(tp), np.cumsum(~tp)
    recall = tp_cum / num_gt
    precision = tp_cum / (tp_cum + fp_cum)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]  # best precision at any higher recall
    first = np.searchsorted(recall, RECALL_LEVELS, side="left")
    values = np.where(first < len(recall), envelope[np.minimum(first, len(recall) - 1)], 0.0)
    return float(values.mean())


def _ap_cases() -> list[tuple[list[bool], int]]:
    rng = np.random.default_rng(0)
    cases = [
        ([True, True, False, True, False, False, True], 5),
        ([True] * 4, 4),  # perfect: AP 1
        ([True] * 4, 8),  # half the objects found: AP ~0.5
        ([False, False, True, True], 2),  # found, but ranked below two false positives
        ([False] * 3, 3),  # nothing found: AP 0
        ([], 3),  # no detections: AP 0
    ]
    for n, num_gt in ((50, 30), (200, 60)):
        flags = (rng.random(n) < np.linspace(0.9, 0.1, n)).tolist()  # good detections first
        cases.append((flags, max(num_gt, sum(flags))))
    return cases


def check_ap_101(fn: Callable | None) -> Verdict:
    """Exercise 1: ``fn(is_tp, num_gt)`` is COCO's 101-point AP."""
    cases = _ap_cases()
    described = [
        f"{len(flags)} detections ({sum(flags)} true positives) of {num_gt} objects"
        for flags, num_gt in cases
    ]
    return judge(
        "ap_101",
        fn,
        lambda: [reference_ap_101(flags, num_gt) for flags, num_gt in cases],
        lambda fn: [fn(list(flags), num_gt) for flags, num_gt in cases],
        lambda got, expected: values_problem(got, expected, described, abs_tol=1e-9),
        "cumulative TP and FP give precision and recall after each detection; make precision "
        "non-increasing from the right, read it at the first rank reaching recall 0, 0.01, ..., 1 "
        "(0 where recall never gets there), and average the 101 values",
    )


# Areas of the ground-truth objects of exercise 2 (COCO's ``area`` is the object's, not its box's).
EXERCISE_AREAS = (
    30.0 * 30.0,  # (a) filled square, 30 × 30 box: 900
    math.pi * 20.0**2,  # (b) circle in a 40 × 40 box: 1256.6
    2 * 40.0 * 40.0 / 3 - (40.0 / 3) ** 2,  # (c) cross of two bars 40 × 40/3, overlapping: 888.9
    100.0 * 100.0,  # (d) filled square, 100 × 100 box: 10000
)


def area_range(area: float) -> str:
    """The COCO area range ("small", "medium", "large") of an object of ``area`` px²."""
    params = Params(iouType="bbox")
    for label, (low, high) in zip(params.areaRngLbl, params.areaRng, strict=True):
        if label != "all" and low <= area < high:
            return label
    raise ValueError(f"area {area} outside every range")


def check_area_ranges(answer: Sequence[str] | None) -> Verdict:
    """Exercise 2: the area range of each of the four objects."""

    def compare(got, expected):
        if len(got) != len(expected):
            return f"give one range per object, (a) to (d): {len(expected)} names, you gave {len(got)}"
        for letter, name, want in zip("abcd", got, expected, strict=True):
            if name != want:
                return f"object ({letter}) is not {name!r}"
        return None

    return judge(
        "area_ranges",
        answer,
        lambda: tuple(area_range(a) for a in EXERCISE_AREAS),  # ("small", "medium", "small", "large")
        lambda a: tuple(str(x).strip().lower() for x in a),
        compare,
        "compute each object's own area (a circle is pi r², a cross two bars minus their overlap) "
        "and compare it with 32² = 1024 and 96² = 9216",
    )


def _small_eval() -> CocoEvalResult:
    """A hand-made evaluation: 4 images, 2 categories, detections of varied IoU and score."""
    images = [{"id": i, "file_name": f"{i}.png", "width": 100, "height": 100} for i in range(1, 5)]
    gt_boxes = [  # (image, category, [x, y, w, h])
        (1, 1, [10, 10, 30, 30]), (1, 2, [50, 50, 40, 20]), (2, 1, [5, 60, 20, 20]),
        (2, 1, [60, 5, 30, 30]), (3, 2, [20, 20, 50, 50]), (4, 1, [40, 40, 12, 12]),
    ]  # fmt: skip
    annotations = [
        {"id": n, "image_id": i, "category_id": c, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
        for n, (i, c, b) in enumerate(gt_boxes, start=1)
    ]
    gt = COCO()
    gt.dataset = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    results = [  # shifted copies of the ground truth (IoU from ~0.55 to 1) and some false positives
        {"image_id": 1, "category_id": 1, "bbox": [11, 10, 30, 30], "score": 0.95},
        {"image_id": 1, "category_id": 2, "bbox": [54, 52, 40, 20], "score": 0.6},
        {"image_id": 2, "category_id": 1, "bbox": [7, 62, 20, 20], "score": 0.9},
        {"image_id": 2, "category_id": 1, "bbox": [60, 5, 30, 30], "score": 0.4},
        {"image_id": 2, "category_id": 1, "bbox": [30, 30, 20, 20], "score": 0.7},
        {"image_id": 3, "category_id": 2, "bbox": [25, 22, 50, 50], "score": 0.8},
        {"image_id": 3, "category_id": 1, "bbox": [20, 20, 50, 50], "score": 0.5},
        {"image_id": 4, "category_id": 1, "bbox": [43, 41, 12, 12], "score": 0.3},
    ]
    return coco_evaluate(gt, results, verbose=False)


AP_AT_CASES = [(category_id, iou) for category_id in (1, 2) for iou in (0.5, 0.7, 0.75, 0.85)]


def check_ap_at(fn: Callable | None) -> Verdict:
    """Exercise 3: ``fn(coco_eval, category_id, iou)`` reads AP at one IoU from the precision array."""
    made: dict[str, CocoEvalResult] = {}

    def reference():
        made["evaluation"] = evaluation = _small_eval()
        return [
            float(evaluation.precision_recall(category_id=c, iou=iou)[1].mean()) for c, iou in AP_AT_CASES
        ]

    return judge(
        "ap_at",
        fn,
        reference,
        lambda fn: [fn(made["evaluation"].coco_eval, c, iou) for c, iou in AP_AT_CASES],
        lambda got, expected: values_problem(
            got, expected, [f"category {c} at IoU {iou}" for c, iou in AP_AT_CASES], abs_tol=1e-9
        ),
        "precision has shape (T, R, K, A, M): pick t with np.isclose(params.iouThrs, iou), "
        "k = params.catIds.index(category_id), area 0 ('all'), the last M (100 detections), "
        "and average over the R = 101 recall levels",
    )
