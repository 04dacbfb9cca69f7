"""The backbone trunk (§4 "Feature Pyramid Network Backbone"): a ResNet that returns the feature
maps C3, C4, C5 of its last three stages, at strides 8, 16 and 32.

The ResNets are torchvision's own definitions, built without weights (nothing is downloaded);
``load_state_dict`` puts ImageNet or COCO weights in when you have the file. ``SmallTrunk`` is a
four-stage ResNet of torchvision's ``BasicBlock`` narrow enough to train on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable

import torchvision
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock
from torchvision.ops.misc import FrozenBatchNorm2d

from retina_edu.config import Backbone, TrunkNorm

RESNET_DEPTHS = {"resnet18": 18, "resnet34": 34, "resnet50": 50, "resnet101": 101}


def norm_layer_for(trunk_norm: TrunkNorm) -> Callable[[int], nn.Module]:
    """``"batch"`` → ``nn.BatchNorm2d``; ``"frozen"`` → ``FrozenBatchNorm2d`` (fixed statistics)."""
    return FrozenBatchNorm2d if trunk_norm == "frozen" else nn.BatchNorm2d


class ResNetTrunk(nn.Module):
    """A torchvision ResNet without its classifier, returning C3, C4, C5.

    Its parameter names are torchvision's (``conv1``, ``bn1``, ``layer1`` … ``layer4``), so
    ImageNet or COCO checkpoints load with ``load_state_dict``.
    """

    def __init__(self, name: str = "resnet50", trunk_norm: TrunkNorm = "batch") -> None:
        super().__init__()
        resnet = getattr(torchvision.models, name)(weights=None, norm_layer=norm_layer_for(trunk_norm))
        self.conv1, self.bn1, self.relu, self.maxpool = (
            resnet.conv1,
            resnet.bn1,
            resnet.relu,
            resnet.maxpool,
        )
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            resnet.layer1,
            resnet.layer2,
            resnet.layer3,
            resnet.layer4,
        )
        expansion = 4 if RESNET_DEPTHS[name] >= 50 else 1
        self.out_channels = (128 * expansion, 256 * expansion, 512 * expansion)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x: ``(B, 3, H, W)`` → C3 ``(B, c3, H/8, W/8)``, C4 ``(…, H/16, W/16)``, C5 ``(…, H/32, W/32)``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return c3, c4, c5


def _stage(in_ch: int, out_ch: int, norm: Callable[[int], nn.Module]) -> nn.Sequential:
    """One stride-2 stage: a downsampling ``BasicBlock`` and a plain one."""
    downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=2, bias=False), norm(out_ch))
    return nn.Sequential(
        BasicBlock(in_ch, out_ch, stride=2, downsample=downsample, norm_layer=norm),
        BasicBlock(out_ch, out_ch, norm_layer=norm),
    )


class SmallTrunk(nn.Module):
    """A narrow ResNet for the CPU: a stride-2 stem, then four stride-2 stages.

    ``channels`` are the widths of the stages at strides 4, 8, 16 and 32.
    """

    def __init__(
        self, channels: tuple[int, int, int, int] = (32, 64, 128, 256), trunk_norm: TrunkNorm = "batch"
    ) -> None:
        super().__init__()
        norm = norm_layer_for(trunk_norm)
        stem_ch = channels[0] // 2
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem_ch, 3, stride=2, padding=1, bias=False),
            norm(stem_ch),
            nn.ReLU(inplace=True),
        )
        self.layer1 = _stage(stem_ch, channels[0], norm)
        self.layer2 = _stage(channels[0], channels[1], norm)
        self.layer3 = _stage(channels[1], channels[2], norm)
        self.layer4 = _stage(channels[2], channels[3], norm)
        self.out_channels = tuple(channels[1:])
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x: ``(B, 3, H, W)`` → C3, C4, C5 at strides 8, 16, 32."""
        c2 = self.layer1(self.stem(x))
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return c3, c4, c5


def build_trunk(
    backbone: Backbone,
    trunk_norm: TrunkNorm = "batch",
    small_channels: tuple[int, int, int, int] = (32, 64, 128, 256),
) -> nn.Module:
    """The trunk a config names: a torchvision ResNet or the ``SmallTrunk``."""
    if backbone == "small":
        return SmallTrunk(small_channels, trunk_norm)
    if backbone not in RESNET_DEPTHS:
        raise ValueError(f"unknown backbone {backbone!r}; choose from {sorted(RESNET_DEPTHS)} or 'small'")
    return ResNetTrunk(backbone, trunk_norm)
