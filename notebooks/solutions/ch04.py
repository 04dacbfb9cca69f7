"""Worked answers to the exercises of 04_backbone_and_fpn."""

import math


def pyramid_sizes(height, width):
    """P3 … P7 sizes: every stride-2 step maps n to ceil(n / 2); P3 is three halvings in."""
    sizes = []
    h, w = height, width
    for step in range(1, 8):  # strides 2, 4, …, 128
        h, w = math.ceil(h / 2), math.ceil(w / 2)
        if step >= 3:
            sizes.append((h, w))
    return sizes


def fpn_parameter_count(in_channels, channels, p6_input):
    """Three 1×1 laterals, three 3×3 smoothing convs, the P6 and P7 3×3 convs (weights + biases)."""

    def conv(k, c_in, c_out):
        return k * k * c_in * c_out + c_out

    lateral = sum(conv(1, c, channels) for c in in_channels)
    smoothing = 3 * conv(3, channels, channels)
    p6 = conv(3, in_channels[-1] if p6_input == "C5" else channels, channels)
    p7 = conv(3, channels, channels)
    return lateral + smoothing + p6 + p7


# P6: ceil(800 / 64) = 13, a 13 × 13 grid; P7: ceil(800 / 128) = 7, a 7 × 7 grid; 9 anchors each.
p6_p7_anchors = (13 * 13 + 7 * 7) * 9  # 1962
