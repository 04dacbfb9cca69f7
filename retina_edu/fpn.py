"""The Feature Pyramid Network with RetinaNet's P6 and P7 (§4 "Feature Pyramid Network Backbone").

"We construct a pyramid with levels P3 through P7 ... P3 to P5 are computed from the output of
the corresponding ResNet residual stage (C3 through C5) using top-down and lateral connections
... P6 is obtained via a 3×3 stride-2 conv on C5, and P7 is computed by applying ReLU followed
by a 3×3 stride-2 conv on P6." All levels have C = 256 channels.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from retina_edu.config import P6Input


class FPN(nn.Module):
    """C3, C4, C5 → P3, P4, P5, P6, P7, each with ``channels`` channels and strides 8 … 128.

    ``p6_input="C5"`` is the paper's choice; ``"P5"`` is torchvision's first RetinaNet.
    """

    def __init__(
        self, in_channels: tuple[int, int, int], channels: int = 256, p6_input: P6Input = "C5"
    ) -> None:
        super().__init__()
        self.p6_input = p6_input
        # lateral 1×1 convs bring C3..C5 to `channels`; 3×3 output convs smooth the sums
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.output = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1) for _ in in_channels)
        self.p6 = nn.Conv2d(
            in_channels[-1] if p6_input == "C5" else channels, channels, 3, stride=2, padding=1
        )
        self.p7 = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.zeros_(m.bias)

    def forward(self, features: tuple[Tensor, Tensor, Tensor]) -> list[Tensor]:
        """C3 ``(B, c3, H/8, W/8)``, C4, C5 → ``[P3, …, P7]``, each ``(B, channels, H/2^l, W/2^l)``."""
        c5 = features[-1]
        top_down = self.lateral[-1](c5)
        outputs = [self.output[-1](top_down)]
        for level in range(len(features) - 2, -1, -1):  # C4, then C3
            lateral = self.lateral[level](features[level])
            top_down = lateral + F.interpolate(top_down, size=lateral.shape[-2:], mode="nearest")
            outputs.insert(0, self.output[level](top_down))
        p6 = self.p6(c5 if self.p6_input == "C5" else outputs[-1])
        p7 = self.p7(F.relu(p6))
        return outputs + [p6, p7]
