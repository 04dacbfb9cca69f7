"""Conversion to and from torchvision's RetinaNet state dict.

torchvision's ``retinanet_resnet50_fpn`` and retina_edu's ``RetinaNet`` with
``RetinaNetConfig.torchvision()`` hold the same tensors under different names; these functions
rename them, so torchvision's released COCO weights file (when you have it) loads into the
hand-built model, and the hand-built model's weights load into torchvision.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models.detection import RetinaNet as TorchvisionRetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.retinanet import RetinaNetHead as TorchvisionRetinaNetHead
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from retina_edu.backbone import build_trunk
from retina_edu.config import HeadNorm, RetinaNetConfig
from retina_edu.model import RetinaNet

# The same name prefixes in both models, torchvision's first; "{i}" stands for a level's index.
# (Head conv layers are handled apart: their index depends on whether the subnets have GroupNorm.)
PREFIXES = [
    ("backbone.body.", "trunk."),
    ("backbone.fpn.inner_blocks.{i}.0.", "fpn.lateral.{i}."),
    ("backbone.fpn.layer_blocks.{i}.0.", "fpn.output.{i}."),
    ("backbone.fpn.extra_blocks.p6.", "fpn.p6."),
    ("backbone.fpn.extra_blocks.p7.", "fpn.p7."),
    ("head.classification_head.cls_logits.", "head.class_subnet.predictor."),
    ("head.regression_head.bbox_reg.", "head.box_subnet.predictor."),
]


def _rule(source: str, target: str) -> tuple[str, str]:
    """A prefix pair as a regular expression and its replacement: ``{i}`` matches digits."""
    pattern = "^" + re.escape(source).replace(re.escape("{i}"), r"(\d+)")
    return pattern, target.replace("{i}", r"\1")


TORCHVISION_TO_RETINA_EDU = [_rule(tv, ours) for tv, ours in PREFIXES]
RETINA_EDU_TO_TORCHVISION = [_rule(ours, tv) for tv, ours in PREFIXES]
SUBNET_NAMES = {"classification_head": "class_subnet", "regression_head": "box_subnet"}


def _modules_per_conv(head_norm: HeadNorm) -> int:
    """Modules per head conv in retina_edu's flat Sequential: conv, [GroupNorm,] ReLU."""
    return 3 if head_norm == "group" else 2


def _rename(name: str, rules: list[tuple[str, str]]) -> str:
    """Apply the first rule whose pattern matches ``name``."""
    for pattern, replacement in rules:
        if re.match(pattern, name):
            return re.sub(pattern, replacement, name, count=1)
    raise KeyError(f"no rule renames parameter {name!r}")


def from_torchvision_state_dict(state: dict[str, Tensor], head_norm: HeadNorm = "none") -> dict[str, Tensor]:
    """torchvision RetinaNet state dict → retina_edu ``RetinaNet`` state dict (the same tensors).

    torchvision's head conv ``conv.{i}.{j}`` (j: 0 conv, 1 norm) is retina_edu's
    ``convs.{i·m + j}`` with m = 2 modules per conv (conv, ReLU) or 3 with GroupNorm.
    """
    step = _modules_per_conv(head_norm)
    out = {}
    for name, tensor in state.items():
        head = re.fullmatch(r"head\.(classification_head|regression_head)\.conv\.(\d+)\.(\d)\.(.*)", name)
        if head:
            subnet, layer, part, leaf = head.groups()
            name = f"head.{SUBNET_NAMES[subnet]}.convs.{int(layer) * step + int(part)}.{leaf}"
            out[name] = tensor
        else:
            out[_rename(name, TORCHVISION_TO_RETINA_EDU)] = tensor
    return out


def to_torchvision_state_dict(state: dict[str, Tensor], head_norm: HeadNorm = "none") -> dict[str, Tensor]:
    """retina_edu ``RetinaNet`` state dict → torchvision RetinaNet state dict (the same tensors)."""
    step = _modules_per_conv(head_norm)
    torchvision_subnet = {v: k for k, v in SUBNET_NAMES.items()}
    out = {}
    for name, tensor in state.items():
        head = re.fullmatch(r"head\.(class_subnet|box_subnet)\.convs\.(\d+)\.(.*)", name)
        if head:
            subnet, index, leaf = head.groups()
            layer, part = divmod(int(index), step)
            out[f"head.{torchvision_subnet[subnet]}.conv.{layer}.{part}.{leaf}"] = tensor
        else:
            out[_rename(name, RETINA_EDU_TO_TORCHVISION)] = tensor
    return out


def load_torchvision_weights(path: str | Path, config: RetinaNetConfig | None = None) -> RetinaNet:
    """A retina_edu ``RetinaNet`` holding the weights of a torchvision RetinaNet checkpoint file.

    The file is read with ``weights_only=True`` (no code in it is run). For torchvision's COCO
    weights use ``RetinaNetConfig.torchvision(num_classes=91).replace(trunk_norm="frozen")``,
    the default here; labels then are COCO category ids.
    """
    config = config or RetinaNetConfig.torchvision().replace(trunk_norm="frozen")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure to read means a bad file
        raise ValueError(f"cannot read torchvision weights from {path}: {error}") from error
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path} is not a state dict of tensors")
    model = RetinaNet(config)
    model.load_state_dict(from_torchvision_state_dict(state, config.head_norm))
    return model


def torchvision_retinanet(config: RetinaNetConfig) -> TorchvisionRetinaNet:
    """torchvision's ``RetinaNet`` class assembled to the same architecture as ``RetinaNet(config)``.

    Its state dict converts to and from retina_edu's with the functions above, which makes it the
    reference the tests and benchmarks compare against. torchvision's smooth L1 box loss has β = 1.
    """
    if config.box_loss == "smooth_l1" and config.smooth_l1_beta != 1.0:
        raise ValueError("torchvision's smooth L1 box loss uses beta = 1.0: set smooth_l1_beta=1.0")
    trunk = build_trunk(config.backbone, config.trunk_norm, config.small_trunk_channels)
    channels = config.fpn_channels
    p6_in = trunk.out_channels[-1] if config.p6_input == "C5" else channels
    if (p6_in == channels) != (config.p6_input == "P5"):  # torchvision decides by channel counts
        raise ValueError("torchvision takes P6 from P5 exactly when C5 has as many channels as the FPN")
    backbone = BackboneWithFPN(
        trunk,
        return_layers={"layer2": "0", "layer3": "1", "layer4": "2"},
        in_channels_list=list(trunk.out_channels),
        out_channels=channels,
        extra_blocks=LastLevelP6P7(p6_in, channels),
    )
    norm = partial(nn.GroupNorm, config.head_norm_groups) if config.head_norm == "group" else None
    head = TorchvisionRetinaNetHead(
        channels, config.num_anchors_per_location, config.num_classes, norm_layer=norm
    )
    for subnet in (head.classification_head, head.regression_head):  # torchvision builds 4 convs
        subnet.conv = subnet.conv[: config.head_convs]
    head.regression_head._loss_type = config.box_loss
    anchors = AnchorGenerator(config.anchor_sizes, (config.aspect_ratios,) * len(config.anchor_sizes))
    return TorchvisionRetinaNet(
        backbone,
        config.num_classes,
        min_size=config.min_size,
        max_size=config.max_size,
        image_mean=list(config.image_mean),
        image_std=list(config.image_std),
        anchor_generator=anchors,
        head=head,
        score_thresh=config.score_thresh,
        nms_thresh=config.nms_thresh,
        detections_per_img=config.detections_per_img,
        fg_iou_thresh=config.fg_iou_thresh,
        bg_iou_thresh=config.bg_iou_thresh,
        topk_candidates=config.topk_candidates,
    )
