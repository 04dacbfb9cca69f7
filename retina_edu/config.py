"""Every knob of RetinaNet in one small dataclass, with named presets.

``RetinaNetConfig.paper()`` is the paper's ResNet-50-FPN at 800 px (Lin et al. 2017, §4 and §5.1);
``RetinaNetConfig.torchvision()`` is the same network with the three places where torchvision's
``retinanet_resnet50_fpn`` differs from the paper switched to torchvision's choice, so that its
weights load and give the same numbers; ``RetinaNetConfig.cpu()`` is a small model that trains on
a laptop CPU in minutes on the project's 128-pixel synthetic data.

``num_classes`` counts foreground classes only: labels are ``0..K-1`` and the model outputs one
sigmoid per class, with no background slot.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Literal, get_args

PRIOR_PROB = 0.01  # π, §4.1 "Initialization"
FOCAL_ALPHA = 0.25  # α, §5.1 / Table 1b
FOCAL_GAMMA = 2.0  # γ, §5.1 / Table 1b
FG_IOU_THRESH = 0.5  # §4 "Anchors": IoU >= 0.5 is foreground
BG_IOU_THRESH = 0.4  # §4 "Anchors": IoU in [0, 0.4) is background
SCALES = (2**0, 2 ** (1 / 3), 2 ** (2 / 3))  # §4 "Anchors": three scales per octave
ASPECT_RATIOS = (0.5, 1.0, 2.0)  # §4 "Anchors": {1:2, 1:1, 2:1}, as height / width
SMOOTH_L1_BETA = 0.1  # Detectron's RetinaNet (the paper names no β)
SCORE_THRESH = 0.05  # §4.1 "Inference": "after thresholding detector confidence at 0.05"
TOPK_CANDIDATES = 1000  # §4.1 "Inference": "at most 1k top-scoring predictions per FPN level"
NMS_THRESH = 0.5  # §4.1 "Inference": "non-maximum suppression with a threshold of 0.5"
DETECTIONS_PER_IMG = 100  # COCO scores at most 100 detections per image
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


Backbone = Literal["resnet18", "resnet34", "resnet50", "resnet101", "small"]
TrunkNorm = Literal["batch", "frozen"]
P6Input = Literal["C5", "P5"]
HeadNorm = Literal["none", "group"]
BoxLoss = Literal["smooth_l1", "l1"]
CHOICES = {  # the config fields that take one of a few names, and their allowed names
    "backbone": Backbone,
    "trunk_norm": TrunkNorm,
    "p6_input": P6Input,
    "head_norm": HeadNorm,
    "box_loss": BoxLoss,
}

QUICK_ENV = "RETINA_EDU_QUICK"  # "1" under `make test`: the notebooks' long cells do less


def quick_mode() -> bool:
    """Whether the notebooks run in quick mode (``RETINA_EDU_QUICK=1``, set by ``make test``)."""
    return os.environ.get(QUICK_ENV) == "1"


def anchor_sizes_per_level(
    base_sizes: tuple[float, ...], scales: tuple[float, ...] = SCALES, whole_pixels: bool = False
) -> tuple[tuple[float, ...], ...]:
    """Anchor side lengths for each pyramid level: ``base * scale`` for every scale.

    The paper's areas are 32² … 512² on P3 … P7 times the scales {2⁰, 2^⅓, 2^⅔}. torchvision
    truncates the products to whole pixels (32, 40, 50 on P3): ``whole_pixels=True`` does the same.
    """
    if whole_pixels:
        return tuple(tuple(float(int(b * s)) for s in scales) for b in base_sizes)
    return tuple(tuple(float(b * s) for s in scales) for b in base_sizes)


@dataclass(frozen=True)
class RetinaNetConfig:
    """All settings of a RetinaNet. Use a preset and ``replace`` what you want to change."""

    num_classes: int = 80  # foreground classes only; labels are 0..K-1
    backbone: Backbone = "resnet50"
    small_trunk_channels: tuple[int, int, int, int] = (32, 64, 128, 256)  # strides 4, 8, 16, 32
    # Batch norm in the trunk: "batch" trains its statistics; "frozen" uses fixed statistics and
    # affine parameters (torchvision does this when it loads ImageNet or COCO weights).
    trunk_norm: TrunkNorm = "batch"
    # FPN (§3 and §4 "Feature Pyramid Network Backbone")
    fpn_channels: int = 256
    # Where P6 comes from: the paper computes it from C5; torchvision's first RetinaNet from P5.
    p6_input: P6Input = "C5"
    # Class and box subnets (§4 "Classification Subnet", "Box Regression Subnet")
    head_convs: int = 4
    head_norm: HeadNorm = "none"  # "none" (paper) or "group" (GroupNorm; trains faster)
    head_norm_groups: int = 32  # GroupNorm's groups: fpn_channels / groups channels share a mean
    prior_prob: float = PRIOR_PROB
    # Anchors: side lengths per level (P3..P7) and aspect ratios h/w
    anchor_sizes: tuple[tuple[float, ...], ...] = anchor_sizes_per_level((32, 64, 128, 256, 512))
    aspect_ratios: tuple[float, ...] = ASPECT_RATIOS
    # Matching anchors to ground truth
    fg_iou_thresh: float = FG_IOU_THRESH
    bg_iou_thresh: float = BG_IOU_THRESH
    allow_low_quality_matches: bool = True
    # Losses
    focal_alpha: float | None = FOCAL_ALPHA  # None: no α weighting
    focal_gamma: float = FOCAL_GAMMA
    box_loss: BoxLoss = "smooth_l1"  # "smooth_l1" (paper) | "l1" (torchvision)
    smooth_l1_beta: float = SMOOTH_L1_BETA
    # Image transform: resize the shorter side to min_size unless the longer one passes max_size,
    # normalise, pad the batch to a multiple of size_divisible.
    min_size: int = 800
    max_size: int = 1333
    size_divisible: int = 32
    image_mean: tuple[float, float, float] = IMAGENET_MEAN
    image_std: tuple[float, float, float] = IMAGENET_STD
    # Inference (§4.1 "Inference")
    score_thresh: float = SCORE_THRESH
    topk_candidates: int = TOPK_CANDIDATES  # per level
    nms_thresh: float = NMS_THRESH
    detections_per_img: int = DETECTIONS_PER_IMG

    @property
    def num_anchors_per_location(self) -> int:
        """A: anchors per feature-map position (3 scales × 3 ratios = 9 in the paper)."""
        return len(self.anchor_sizes[0]) * len(self.aspect_ratios)

    def replace(self, **changes) -> RetinaNetConfig:
        """A copy with some fields changed (``dataclasses.replace``), checked."""
        return dataclasses.replace(self, **changes)

    def __post_init__(self) -> None:
        for name, choice in CHOICES.items():
            allowed = get_args(choice)
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        if len(self.anchor_sizes) != 5:
            raise ValueError(f"anchor_sizes needs one tuple per level P3..P7, got {self.anchor_sizes}")
        if len({len(s) for s in self.anchor_sizes}) != 1:
            raise ValueError("every level needs the same number of anchor sizes")
        groups = self.head_norm_groups
        if self.head_norm == "group" and (groups < 1 or self.fpn_channels % groups):
            raise ValueError(f"head_norm_groups must divide fpn_channels ({self.fpn_channels}), got {groups}")
        if not 0 < self.prior_prob < 1:
            raise ValueError(f"prior_prob must be in (0, 1), got {self.prior_prob}")
        if not 0 <= self.bg_iou_thresh <= self.fg_iou_thresh <= 1:
            raise ValueError("need 0 <= bg_iou_thresh <= fg_iou_thresh <= 1")

    @classmethod
    def paper(cls, num_classes: int = 80) -> RetinaNetConfig:
        """The paper's RetinaNet: ResNet-50-FPN, 800 px, γ=2, α=0.25, π=0.01, 9 anchors."""
        return cls(num_classes=num_classes)

    @classmethod
    def torchvision(cls, num_classes: int = 91) -> RetinaNetConfig:
        """The paper's network as torchvision's ``retinanet_resnet50_fpn`` builds it.

        Differences from ``paper()``: P6 from P5 rather than C5; L1 rather than smooth L1 box
        loss; anchor sizes truncated to whole pixels; 300 detections per image. torchvision also
        freezes batch norm when it loads trained weights: pass ``trunk_norm="frozen"`` for those.
        COCO weights use 91 classes, indexed by COCO category id.
        """
        return cls(
            num_classes=num_classes,
            p6_input="P5",
            box_loss="l1",
            anchor_sizes=anchor_sizes_per_level((32, 64, 128, 256, 512), whole_pixels=True),
            detections_per_img=300,
        )

    @classmethod
    def cpu(cls, num_classes: int = 5) -> RetinaNetConfig:
        """A small RetinaNet for 128-pixel images that trains on a laptop CPU in minutes."""
        return cls(
            num_classes=num_classes,
            backbone="small",
            fpn_channels=64,
            head_convs=2,
            head_norm="group",
            anchor_sizes=anchor_sizes_per_level((16, 32, 64, 128, 256)),
            min_size=128,
            max_size=128,
        )

    @classmethod
    def tiny(cls, num_classes: int = 5) -> RetinaNetConfig:
        """The CPU preset shrunk for 64-pixel images: a training step takes a fraction of a
        second. The tests and the exercise checks use it."""
        return cls.cpu(num_classes).replace(
            small_trunk_channels=(8, 16, 32, 64), fpn_channels=32, min_size=64, max_size=64
        )
