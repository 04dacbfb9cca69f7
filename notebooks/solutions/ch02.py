"""Worked answers to the exercises of 02_anchors."""

import math

import torch

# Exercise 1: 9 × (128² + 64² + 32² + 16² + 8²) = 9 × 21824
num_anchors_1024 = 9 * sum((1024 // 2**level) ** 2 for level in range(3, 8))  # 196416


# Exercise 2
def anchor_wh(size, ratio):
    """Width and height of an anchor of area size² and aspect ratio h / w = ratio (unrounded)."""
    return size / math.sqrt(ratio), size * math.sqrt(ratio)


# Exercise 3
def level_of(index, grid_sizes, anchors_per_position=9):
    """The pyramid level (3..7) of anchor ``index``; anchors run level → row → column → anchor."""
    for level, (h, w) in zip(range(3, 8), grid_sizes, strict=True):
        count = h * w * anchors_per_position
        if index < count:
            return level
        index -= count
    raise IndexError("index past the last anchor")


def level_anchors(grid_size, stride, sizes, aspect_ratios):
    """The (H·W·A, 4) xyxy anchors of one level, ordered row → column → anchor (ratio-major)."""
    sizes, ratios = torch.as_tensor(sizes), torch.as_tensor(aspect_ratios)
    w = (sizes[None, :] / ratios.sqrt()[:, None]).reshape(-1)  # (A,) for each ratio, each size
    h = (sizes[None, :] * ratios.sqrt()[:, None]).reshape(-1)
    cell = (torch.stack([-w, -h, w, h], dim=1) / 2).round()  # (A, 4) centred on (0, 0)
    ys = torch.arange(grid_size[0]) * stride[0]  # (H,)
    xs = torch.arange(grid_size[1]) * stride[1]  # (W,)
    y, x = torch.meshgrid(ys, xs, indexing="ij")  # (H, W) each
    shifts = torch.stack([x, y, x, y], dim=-1).reshape(-1, 1, 4)  # (H·W, 1, 4)
    return (shifts + cell[None]).reshape(-1, 4)
