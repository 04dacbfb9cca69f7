"""Worked answers to the exercises of 02_anchors."""

import math

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
