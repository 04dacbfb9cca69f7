"""Checks for the exercises of ``08_inference_and_nms``: non-maximum suppression, class-wise NMS in
one call, overlapping neighbours, the largest number of candidates that reach NMS.

Each check returns a ``Verdict`` (see ``retina_edu.exercises``): the reference is computed with the
package (or torchvision) first, outside the guard, then the learner's answer on the same cases."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision.ops import batched_nms

from retina_edu.anchors import pyramid_grid_sizes
from retina_edu.config import RetinaNetConfig
from retina_edu.exercises import Verdict, judge, number_problem, tensor_problem
from retina_edu.postprocess import nms


def _random_case(seed: int, n: int = 200, num_classes: int = 4):
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=gen) * 100
    wh = 4 + torch.rand(n, 2, generator=gen) * 40
    boxes = torch.cat([xy, xy + wh], dim=1)  # (n, 4) xyxy
    return boxes, torch.rand(n, generator=gen), torch.randint(num_classes, (n,), generator=gen)


def _nms_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, float]]:
    """(what, boxes, scores, IoU threshold): random boxes at three thresholds, one box, no box."""
    cases = []
    for seed, thresh in ((0, 0.5), (1, 0.3), (2, 0.7)):
        boxes, scores, _ = _random_case(seed)
        cases.append((f"200 random boxes at threshold {thresh}", boxes, scores, thresh))
    boxes, scores, _ = _random_case(3, n=1)
    cases.append(("a single box", boxes, scores, 0.5))
    cases.append(("no boxes at all", torch.zeros(0, 4), torch.zeros(0), 0.5))
    return cases


def check_greedy_nms(greedy_nms: Callable | None) -> Verdict:
    """The core: ``greedy_nms(boxes (N, 4), scores (N,), iou_thresh) -> (M,)`` int64 kept indices,
    highest score first: ``retina_edu.postprocess.nms`` (and ``torchvision.ops.nms``)."""
    cases = _nms_cases()

    def reference():
        return [nms(boxes, scores, thresh) for _, boxes, scores, thresh in cases]

    def attempt(fn):
        return [fn(boxes.clone(), scores.clone(), thresh) for _, boxes, scores, thresh in cases]

    return judge(
        "greedy_nms",
        greedy_nms,
        reference,
        attempt,
        lambda results, expected: _kept_problem(cases, results, expected),
        "sort by score, best first; keep the best box left, drop every remaining box with IoU > iou_thresh "
        "with it, repeat; return the kept indices into the original boxes as an int64 tensor",
    )


def _kept_problem(cases: list, results: list, expected: list) -> str | None:
    """The first case whose kept indices differ: how many were kept, or which entries differ."""
    for (what, *_), got, want in zip(cases, results, expected, strict=True):
        if isinstance(got, list):
            got = torch.tensor(got, dtype=torch.int64)
        if isinstance(got, torch.Tensor) and got.shape != want.shape and got.dim() == 1:
            return f"with {what}, you kept {len(got)} boxes, expected {len(want)}"
        problem = tensor_problem(got, want, f"with {what}, the kept indices")
        if problem is not None:
            return problem + " (same boxes in another order? highest score first)"
    return None


def _batched_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor, float]]:
    """(what, boxes, scores, labels, IoU threshold): 200 random boxes of 4 classes at three thresholds."""
    cases = []
    for seed, thresh in ((0, 0.5), (1, 0.3), (2, 0.7)):
        boxes, scores, labels = _random_case(seed)
        cases.append((f"200 random boxes of 4 classes at threshold {thresh}", boxes, scores, labels, thresh))
    return cases


def check_batched_nms_by_offsets(fn: Callable | None) -> Verdict:
    """Exercise 1: ``fn(boxes, scores, labels, iou_thresh)`` equals ``torchvision.ops.batched_nms``."""
    cases = _batched_cases()
    return judge(
        "batched_nms_by_offsets",
        fn,
        lambda: [batched_nms(boxes, scores, labels, t) for _, boxes, scores, labels, t in cases],
        lambda fn: [
            torch.as_tensor(fn(boxes.clone(), scores.clone(), labels.clone(), t))
            for _, boxes, scores, labels, t in cases
        ],
        lambda results, expected: _kept_problem(cases, results, expected),
        "add labels[:, None] * (boxes.max() + 1) to the boxes, then call nms(shifted, scores, iou_thresh)",
    )


def _two_overlapping_boxes() -> torch.Tensor:
    # Two 10 × 10 boxes shifted by 2.5 px: intersection 75, union 125, IoU 0.6.
    return torch.tensor([[0.0, 0.0, 10.0, 10.0], [2.5, 0.0, 12.5, 10.0]])


OVERLAP_THRESHOLDS = (0.5, 0.7)


def check_overlapping_neighbours(answer: tuple[int, int] | None) -> Verdict:
    """Exercise 2: ``(kept at NMS 0.5, kept at NMS 0.7)`` for two perfect boxes with IoU 0.6."""

    def reference():
        boxes, scores = _two_overlapping_boxes(), torch.tensor([0.9, 0.8])
        return tuple(len(nms(boxes, scores, t)) for t in OVERLAP_THRESHOLDS)  # (1, 2)

    def compare(got, expected):
        if len(got) != len(expected):
            return f"give two counts, (kept at NMS 0.5, kept at NMS 0.7); you gave {len(got)}"
        for thresh, count, want in zip(OVERLAP_THRESHOLDS, got, expected, strict=True):
            if count != want:
                return f"at NMS threshold {thresh}, {count} kept is not what NMS does"
        return None

    return judge(
        "overlapping_neighbours",
        answer,
        reference,
        lambda a: tuple(int(x) for x in a),
        compare,
        "NMS drops a box whose IoU with a kept box is above the threshold; 0.6 > 0.5 but 0.6 < 0.7",
    )


def max_candidates(height: int = 800, width: int = 1344) -> int:
    """Upper bound on the candidates reaching NMS for the paper's preset at ``height × width``."""
    config = RetinaNetConfig.paper()
    scores_per_level = [
        h * w * config.num_anchors_per_location * config.num_classes
        for h, w in pyramid_grid_sizes((height, width))
    ]
    return sum(min(config.topk_candidates, n) for n in scores_per_level)


def check_max_candidates(answer: int | None) -> Verdict:
    """Exercise 3: the most candidates that reach NMS for an 800 × 1344 image, paper preset."""
    return judge(
        "max_candidates",
        answer,
        max_candidates,
        int,
        number_problem,
        "count the scores of each level (positions × 9 anchors × 80 classes); each level sends at most 1,000",
    )
