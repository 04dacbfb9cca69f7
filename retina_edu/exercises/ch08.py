"""Checks for the exercises of ``08_inference_and_nms``: non-maximum suppression, class-wise NMS in
one call, overlapping neighbours, the largest number of candidates that reach NMS."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision.ops import batched_nms

from retina_edu.anchors import pyramid_grid_sizes
from retina_edu.config import RetinaNetConfig
from retina_edu.exercises import Verdict, judge, tensor_problem, verdict
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

    def compare(results, expected):
        for (what, *_), got, want in zip(cases, results, expected, strict=True):
            if isinstance(got, list):
                got = torch.tensor(got, dtype=torch.int64)
            if isinstance(got, torch.Tensor) and got.shape != want.shape and got.dim() == 1:
                return f"with {what}, you kept {len(got)} boxes, expected {len(want)}"
            problem = tensor_problem(got, want, f"with {what}, the kept indices")
            if problem is not None:
                return problem + " (same boxes in another order? highest score first)"
        return None

    return judge(
        "greedy_nms",
        greedy_nms,
        reference,
        attempt,
        compare,
        "sort by score, best first; keep the best box left, drop every remaining box with IoU > iou_thresh "
        "with it, repeat; return the kept indices into the original boxes as an int64 tensor",
    )


def check_batched_nms_by_offsets(fn: Callable | None) -> bool:
    """Exercise 1: ``fn(boxes, scores, labels, iou_thresh)`` equals ``torchvision.ops.batched_nms``."""

    def is_right(fn: Callable) -> bool:
        for seed, thresh in ((0, 0.5), (1, 0.3), (2, 0.7)):
            boxes, scores, labels = _random_case(seed)
            got = torch.as_tensor(fn(boxes.clone(), scores.clone(), labels.clone(), thresh))
            if not torch.equal(got.long(), batched_nms(boxes, scores, labels, thresh)):
                return False
        return True

    return verdict(
        "batched_nms_by_offsets",
        fn,
        is_right,
        "add labels[:, None] * (boxes.max() + 1) to the boxes, then call nms(shifted, scores, iou_thresh)",
    )


def _two_overlapping_boxes() -> torch.Tensor:
    # Two 10 × 10 boxes shifted by 2.5 px: intersection 75, union 125, IoU 0.6.
    return torch.tensor([[0.0, 0.0, 10.0, 10.0], [2.5, 0.0, 12.5, 10.0]])


def check_overlapping_neighbours(answer: tuple[int, int] | None) -> bool:
    """Exercise 2: ``(kept at NMS 0.5, kept at NMS 0.7)`` for two perfect boxes with IoU 0.6."""
    boxes, scores = _two_overlapping_boxes(), torch.tensor([0.9, 0.8])
    truth = (len(nms(boxes, scores, 0.5)), len(nms(boxes, scores, 0.7)))  # (1, 2)
    return verdict(
        "overlapping_neighbours",
        answer,
        lambda a: tuple(int(x) for x in a) == truth,
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


def check_max_candidates(answer: int | None) -> bool:
    """Exercise 3: the most candidates that reach NMS for an 800 × 1344 image, paper preset."""
    truth = max_candidates()
    return verdict(
        "max_candidates",
        answer,
        lambda a: int(a) == truth,
        "count the scores of each level (positions × 9 anchors × 80 classes); each level sends at most 1,000",
    )
