"""Checks for the exercises of ``04_backbone_and_fpn``: pyramid sizes, FPN parameters, P6/P7 anchors.

Each check returns a ``Verdict`` (see ``retina_edu.exercises``): the reference is computed with the
package first (a trunk and an FPN on the meta device), outside the guard, then the learner's answer."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import torch

from retina_edu.anchors import anchors_for_grid, cell_anchors
from retina_edu.backbone import SmallTrunk
from retina_edu.config import RetinaNetConfig
from retina_edu.exercises import Verdict, judge, number_problem
from retina_edu.fpn import FPN

# Odd sizes on purpose: the trunk rounds every halving up.
SIZES_TO_CHECK = ((128, 128), (100, 75), (257, 130), (800, 1216))
FPN_CONFIGS = (
    ((64, 128, 256), 64, "C5"),  # the CPU preset
    ((512, 1024, 2048), 256, "C5"),  # the paper's ResNet-50 FPN
    ((512, 1024, 2048), 256, "P5"),  # torchvision's first RetinaNet
    ((128, 256, 512), 128, "P5"),
)


@cache
def pyramid_sizes_of_network(height: int, width: int) -> list[tuple[int, int]]:
    """The ``(H, W)`` of P3 … P7 for a ``(height, width)`` input, by running a trunk and an FPN."""
    with torch.device("meta"), torch.no_grad():  # meta: shapes only, no arithmetic, no random numbers
        trunk = SmallTrunk((8, 8, 8, 8)).eval()
        fpn = FPN(trunk.out_channels, 8).eval()
        pyramid = fpn(trunk(torch.zeros(1, 3, height, width)))
    return [tuple(p.shape[-2:]) for p in pyramid]


def check_pyramid_sizes(pyramid_sizes: Callable[[int, int], list[tuple[int, int]]] | None) -> Verdict:
    """``pyramid_sizes(h, w)`` must give the P3 … P7 sizes of the network for several inputs."""

    def compare(results, expected):
        for (h, w), got, want in zip(SIZES_TO_CHECK, results, expected, strict=True):
            if got != want:
                return f"for a {h} × {w} input you gave {got}, the network makes {want}"
        return None

    return judge(
        "pyramid_sizes",
        pyramid_sizes,
        lambda: [pyramid_sizes_of_network(h, w) for h, w in SIZES_TO_CHECK],
        lambda fn: [[tuple(int(v) for v in s) for s in fn(h, w)] for h, w in SIZES_TO_CHECK],
        compare,
        "halve with rounding up: the stem gives ceil(n/2), then every stage ceil again; P3 is stride 8",
    )


def check_fpn_parameter_count(fpn_parameter_count: Callable[[tuple, int, str], int] | None) -> Verdict:
    """``fpn_parameter_count(in_channels, channels, p6_input)`` must equal the package FPN's count."""
    described = [f"in_channels {c_in}, {c} channels, P6 from {p6}" for c_in, c, p6 in FPN_CONFIGS]

    def reference():
        with torch.device("meta"):  # shapes only: no memory for the paper's 2048-channel convs
            return [sum(p.numel() for p in FPN(*config).parameters()) for config in FPN_CONFIGS]

    def compare(results, expected):
        for case, got, want in zip(described, results, expected, strict=True):
            if got != want:
                return f"for {case} you counted {got:,}, the package's FPN has {want:,}"
        return None

    return judge(
        "fpn_parameter_count",
        fpn_parameter_count,
        reference,
        lambda fn: [int(fn(*config)) for config in FPN_CONFIGS],
        compare,
        "a k×k conv from c_in to c_out has k·k·c_in·c_out weights and c_out biases; the FPN has three "
        "1×1 laterals, three 3×3 smoothing convs, a 3×3 P6 conv (input C5 or P5) and a 3×3 P7 conv",
    )


def p6_p7_anchor_count(image_size: int = 800) -> int:
    """The anchors of P6 and P7 for a square image with the paper's preset, built with the package."""
    config = RetinaNetConfig.paper()
    total = 0
    for level, sizes in ((6, config.anchor_sizes[3]), (7, config.anchor_sizes[4])):
        side = -(-image_size // 2**level)  # ceil: the trunk rounds up
        cell = cell_anchors(sizes, config.aspect_ratios)
        total += len(anchors_for_grid(cell, (side, side), (2**level, 2**level)))
    return total


def check_p6_p7_anchor_count(answer: int | None) -> Verdict:
    """The number of P6 and P7 anchors for an 800 × 800 image with the paper's preset."""
    return judge(
        "p6_p7_anchors",
        answer,
        p6_p7_anchor_count,
        int,
        number_problem,
        "P6 has stride 64, P7 stride 128; the grid side is ceil(800 / stride); 9 anchors per position",
    )
