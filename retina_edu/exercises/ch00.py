"""Checks for the exercises of ``00_overview``: how many anchors, and how few of them are objects.

Each check returns a ``Verdict`` (see ``retina_edu.exercises``): the reference is computed with the
package first, outside the guard, then the learner's answer on the same cases."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from retina_edu.anchors import anchors_for_config
from retina_edu.boxes import box_iou
from retina_edu.config import RetinaNetConfig
from retina_edu.exercises import Verdict, judge, number_problem
from retina_edu.matching import BACKGROUND, IGNORED, match_anchors


def _num_anchors(config: RetinaNetConfig, height: int, width: int) -> int:
    return len(anchors_for_config(config, (height, width)))


def check_num_anchors_256(answer: int | None) -> Verdict:
    """Exercise 1: anchors of the CPU preset on a 256 × 256 image."""
    return judge(
        "num_anchors_256",
        answer,
        lambda: _num_anchors(RetinaNetConfig.cpu(), 256, 256),
        int,
        number_problem,
        "level l has a ceil(256 / 2^l) × ceil(256 / 2^l) grid with 9 anchors at every position; add P3 … P7",
    )


def _count_cases() -> list[tuple[str, torch.Tensor]]:
    """(what, matches (A,)): random object indices, BACKGROUND and IGNORED; an all-background image."""
    gen = torch.Generator().manual_seed(0)
    cases = [(f"{n} random matches", torch.randint(-2, 5, (n,), generator=gen)) for n in (1, 10, 1000)]
    cases.append(("7 background anchors", torch.full((7,), BACKGROUND)))
    return cases


def check_count_matches(count_matches: Callable | None) -> Verdict:
    """Exercise 2: ``count_matches(matches) -> (foreground, background, ignored)`` as ints."""
    cases = _count_cases()

    def reference():
        return [
            (int((m >= 0).sum()), int((m == BACKGROUND).sum()), int((m == IGNORED).sum())) for _, m in cases
        ]

    def attempt(fn):
        results = []
        for _, matches in cases:
            fg, bg, ign = fn(matches.clone())
            results.append((int(fg), int(bg), int(ign)))
        return results

    def compare(results, expected):
        for (what, _), got, want in zip(cases, results, expected, strict=True):
            if got != want:
                return f"for {what} you gave (foreground, background, ignored) = {got}, expected {want}"
        return None

    return judge(
        "count_matches",
        count_matches,
        reference,
        attempt,
        compare,
        "foreground anchors hold an object index (>= 0); BACKGROUND is -1 and IGNORED is -2",
    )


@functools.cache
def paper_fg_fraction_truth() -> float:
    """The share of foreground anchors on train image 0 scaled to 800 px, with the paper's anchors."""
    from retina_edu.data import load_split

    train = load_split("train", make=False)  # the notebook made it; a check never does
    anchors = anchors_for_config(RetinaNetConfig.paper(), (800, 800))  # (120087, 4) xyxy
    matches = match_anchors(box_iou(train.target(0)["boxes"] * 800 / 128, anchors))
    return float((matches >= 0).sum()) / len(anchors)


def check_paper_fg_fraction(answer: float | None) -> Verdict:
    """Exercise 3: the foreground share with the paper's anchors at 800 px (within 2 %)."""

    def compare(got: float, expected: float) -> str | None:
        if got > 1:
            return f"you gave {got:g}: a share of the anchors lies between 0 and 1 (a count or a percentage?)"
        return number_problem(got, expected, rel_tol=0.02)

    return judge(
        "paper_fg_fraction",
        answer,
        paper_fg_fraction_truth,
        float,
        compare,
        "scale the boxes by 800 / 128, build RetinaNetConfig.paper()'s anchors for an 800 × 800 image, "
        "match, and divide the foreground count by the number of anchors (a fraction, not a percentage)",
    )
