"""Checks for the exercises of ``04_backbone_and_fpn``: pyramid sizes, FPN parameters, P6/P7 anchors."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import torch

from retina_edu.anchors import anchors_for_grid, cell_anchors
from retina_edu.backbone import SmallTrunk
from retina_edu.config import RetinaNetConfig
from retina_edu.exercises import verdict
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


def check_pyramid_sizes(pyramid_sizes: Callable[[int, int], list[tuple[int, int]]]) -> bool:
    """``pyramid_sizes(h, w)`` must give the P3 … P7 sizes of the network for several inputs."""

    def is_right(fn) -> bool:
        return all(
            [tuple(int(v) for v in s) for s in fn(h, w)] == pyramid_sizes_of_network(h, w)
            for h, w in SIZES_TO_CHECK
        )

    hint = "halve with rounding up: the stem gives ceil(n/2), then every stage ceil again; P3 is stride 8"
    return verdict("pyramid_sizes", pyramid_sizes, is_right, hint)


def check_fpn_parameter_count(fpn_parameter_count: Callable[[tuple, int, str], int]) -> bool:
    """``fpn_parameter_count(in_channels, channels, p6_input)`` must equal the package FPN's count."""

    def is_right(fn) -> bool:
        for in_channels, channels, p6_input in FPN_CONFIGS:
            expected = sum(p.numel() for p in FPN(in_channels, channels, p6_input).parameters())
            if int(fn(in_channels, channels, p6_input)) != expected:
                return False
        return True

    hint = (
        "a k×k conv from c_in to c_out has k·k·c_in·c_out weights and c_out biases; the FPN has three "
        "1×1 laterals, three 3×3 smoothing convs, a 3×3 P6 conv (input C5 or P5) and a 3×3 P7 conv"
    )
    return verdict("fpn_parameter_count", fpn_parameter_count, is_right, hint)


def p6_p7_anchor_count(image_size: int = 800) -> int:
    """The anchors of P6 and P7 for a square image with the paper's preset, built with the package."""
    config = RetinaNetConfig.paper()
    total = 0
    for level, sizes in ((6, config.anchor_sizes[3]), (7, config.anchor_sizes[4])):
        side = -(-image_size // 2**level)  # ceil: the trunk rounds up
        cell = cell_anchors(sizes, config.aspect_ratios)
        total += len(anchors_for_grid(cell, (side, side), (2**level, 2**level)))
    return total


def check_p6_p7_anchor_count(answer: int | None) -> bool:
    """The number of P6 and P7 anchors for an 800 × 800 image with the paper's preset."""
    hint = "P6 has stride 64, P7 stride 128; the grid side is ceil(800 / stride); 9 anchors per position"
    return verdict("p6_p7_anchors", answer, lambda a: int(a) == p6_p7_anchor_count(), hint)
