"""The class and box subnets (§4 "Classification Subnet", "Box Regression Subnet") and the
prior-probability initialisation (§4.1 "Initialization").

Both subnets are small FCNs shared across all pyramid levels: four 3×3 convs with C channels and
ReLU, then a 3×3 conv to K·A class logits or 4·A box deltas per position. The last class conv
has bias b = −log((1 − π) / π), so that at the start every anchor says "object" with
probability π = 0.01: the ~100k background anchors then add a small loss instead of swamping
the first steps of training.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from retina_edu.config import PRIOR_PROB, HeadNorm


def prior_bias(prior_prob: float = PRIOR_PROB) -> float:
    """The class-logit bias b with sigmoid(b) = π: ``-log((1 - π) / π)`` (≈ -4.595 for π = 0.01)."""
    return -math.log((1 - prior_prob) / prior_prob)


class Subnet(nn.Module):
    """``num_convs`` × (3×3 conv, [GroupNorm of ``norm_groups`` groups], ReLU), then a 3×3 conv to
    ``A · outputs_per_anchor``.

    Applied to each pyramid level with the same weights; the outputs of all levels are
    concatenated in anchor order (level → row → column → anchor).
    """

    def __init__(
        self,
        channels: int,
        num_anchors: int,
        outputs_per_anchor: int,
        num_convs: int = 4,
        norm: HeadNorm = "none",
        norm_groups: int = 32,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(num_convs):
            layers.append(nn.Conv2d(channels, channels, 3, padding=1, bias=norm == "none"))
            if norm == "group":
                layers.append(nn.GroupNorm(norm_groups, channels))
            layers.append(nn.ReLU(inplace=True))
        self.convs = nn.Sequential(*layers)
        self.predictor = nn.Conv2d(channels, num_anchors * outputs_per_anchor, 3, padding=1)
        self.outputs_per_anchor = outputs_per_anchor
        for m in self.modules():  # §4.1: "all new conv layers ... Gaussian weight fill with σ = 0.01"
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, features: list[Tensor]) -> Tensor:
        """``[(B, C, H_l, W_l)]`` → ``(B, Σ_l H_l · W_l · A, outputs_per_anchor)``."""
        outputs = []
        for x in features:
            y = self.predictor(self.convs(x))  # (B, A·k, H, W)
            b, _, h, w = y.shape
            y = y.view(b, -1, self.outputs_per_anchor, h, w).permute(0, 3, 4, 1, 2)  # (B, H, W, A, k)
            outputs.append(y.reshape(b, -1, self.outputs_per_anchor))
        return torch.cat(outputs, dim=1)


class RetinaNetHead(nn.Module):
    """The class subnet (K sigmoid logits per anchor) and the box subnet (4 deltas per anchor)."""

    def __init__(
        self,
        channels: int,
        num_anchors: int,
        num_classes: int,
        num_convs: int = 4,
        norm: HeadNorm = "none",
        prior_prob: float = PRIOR_PROB,
        norm_groups: int = 32,
    ) -> None:
        super().__init__()
        self.class_subnet = Subnet(channels, num_anchors, num_classes, num_convs, norm, norm_groups)
        self.box_subnet = Subnet(channels, num_anchors, 4, num_convs, norm, norm_groups)
        nn.init.constant_(self.class_subnet.predictor.bias, prior_bias(prior_prob))

    def forward(self, features: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Pyramid ``[P3 … P7]`` → class logits ``(B, N_anchors, K)``, box deltas ``(B, N_anchors, 4)``."""
        features = [f.contiguous() for f in features]  # channels-first: GroupNorm is slow otherwise
        return self.class_subnet(features), self.box_subnet(features)
