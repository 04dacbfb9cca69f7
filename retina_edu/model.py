"""RetinaNet (§4): a backbone with an FPN, a class subnet and a box subnet on every level,
anchors, and the focal loss — wired together.

The calling convention is torchvision's detection models':

- ``model.train(); losses = model(images, targets)`` → ``{"classification": (), "box_regression": ()}``
- ``model.eval(); detections = model(images)`` → per image ``{"boxes": (D, 4) xyxy in the input
  image's pixels, "scores": (D,), "labels": (D,) int64 in 0..K-1}``

``images`` is a list of ``(3, H, W)`` float tensors in [0, 1] (sizes may differ) or one
``(B, 3, H, W)`` tensor; ``targets`` a list of ``{"boxes": (N, 4) float xyxy, "labels": (N,)
int64}``, one per image. Unlike torchvision, matching and the loss run on the whole batch at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence

from retina_edu.anchors import anchors_for_image
from retina_edu.backbone import build_trunk
from retina_edu.boxes import BoxCoder, box_iou, check_boxes
from retina_edu.config import RetinaNetConfig, resize_scale
from retina_edu.fpn import FPN
from retina_edu.heads import RetinaNetHead
from retina_edu.losses import retinanet_loss
from retina_edu.matching import match_anchors
from retina_edu.postprocess import postprocess_detections

# Annotation tools round: a box may pass the image border by this much before it is an error.
BORDER_TOLERANCE = 1.0  # pixels


def check_images(images: Sequence[Tensor]) -> None:
    """Raise ``ValueError`` unless every image is a finite float ``(3, H, W)`` tensor with H, W > 0."""
    if len(images) == 0:
        raise ValueError("got an empty batch: need at least one image")
    for i, image in enumerate(images):
        if not isinstance(image, Tensor):
            raise ValueError(f"images[{i}] must be a torch.Tensor, got {type(image).__name__}")
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"images[{i}] must be (3, H, W), got {tuple(image.shape)}")
        if image.shape[1] == 0 or image.shape[2] == 0:
            raise ValueError(f"images[{i}] is empty: size {tuple(image.shape)}")
        if not image.is_floating_point():
            raise ValueError(f"images[{i}] must be float in [0, 1], got {image.dtype}")
        if not torch.isfinite(image).all():
            raise ValueError(f"images[{i}] contains NaN or infinite values")


def check_targets(targets: Sequence[dict], images: Sequence[Tensor], num_classes: int) -> None:
    """Raise ``ValueError`` unless each target has valid xyxy ``boxes`` inside its image and
    ``labels`` in ``0..num_classes-1``."""
    if len(targets) != len(images):
        raise ValueError(f"got {len(images)} images but {len(targets)} targets")
    for i, (target, image) in enumerate(zip(targets, images, strict=True)):
        if not isinstance(target, dict) or "boxes" not in target or "labels" not in target:
            raise ValueError(f"targets[{i}] must be a dict with 'boxes' and 'labels'")
        boxes, labels = target["boxes"], target["labels"]
        check_boxes(boxes, f"targets[{i}]['boxes']")
        if not isinstance(labels, Tensor) or labels.shape != boxes.shape[:1]:
            raise ValueError(f"targets[{i}]['labels'] must be a ({len(boxes)},) tensor")
        if labels.dtype != torch.int64:
            raise ValueError(f"targets[{i}]['labels'] must be int64, got {labels.dtype}")
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(
                f"targets[{i}]['labels'] must lie in 0..{num_classes - 1}, got {labels.tolist()}"
            )
        h, w = image.shape[-2:]
        outside = (boxes[:, :2] < -BORDER_TOLERANCE).any(1) | (boxes[:, 2] > w + BORDER_TOLERANCE)
        outside |= boxes[:, 3] > h + BORDER_TOLERANCE
        if outside.any():
            j = int(outside.nonzero()[0])
            raise ValueError(
                f"targets[{i}]['boxes'][{j}] = {boxes[j].tolist()} lies outside its {h}x{w} image"
            )


class RetinaNet(nn.Module):
    """RetinaNet built from a ``RetinaNetConfig``; see the module docstring for inputs and outputs."""

    def __init__(self, config: RetinaNetConfig) -> None:
        super().__init__()
        self.config = config
        self.trunk = build_trunk(config.backbone, config.trunk_norm, config.small_trunk_channels)
        self.fpn = FPN(self.trunk.out_channels, config.fpn_channels, config.p6_input)
        self.head = RetinaNetHead(
            config.fpn_channels,
            config.num_anchors_per_location,
            config.num_classes,
            config.head_convs,
            config.head_norm,
            config.prior_prob,
        )
        self.box_coder = BoxCoder()
        self.register_buffer("image_mean", torch.tensor(config.image_mean), persistent=False)
        self.register_buffer("image_std", torch.tensor(config.image_std), persistent=False)
        # Channels-last memory for the trunk and the FPN: oneDNN (CPU) and cuDNN run their
        # convolutions faster when the channels of a pixel lie next to each other in memory, and
        # a convolution with channels-last weights gives channels-last outputs. Only the order of
        # the sums inside a convolution changes (float32 results differ in the last bits). The
        # subnets stay channels-first; see RetinaNetHead.forward.
        # A trunk whose stem is narrower than 16 channels stays channels-first: torch 2.14's CPU
        # kernel for the backward of a channels-last 1×1 stride-2 convolution (the first
        # downsampling shortcut) crashes the process for inputs of 4, 8 or 12 channels at some
        # image sizes (tests/test_model.py::test_narrow_small_trunk_trains).
        if config.backbone != "small" or config.small_trunk_channels[0] // 2 >= 16:
            self.trunk.to(memory_format=torch.channels_last)
            self.fpn.to(memory_format=torch.channels_last)

    # -- image transform: the same arithmetic as torchvision's GeneralizedRCNNTransform ----------
    def preprocess(
        self, images: Sequence[Tensor], targets: Sequence[dict] | None
    ) -> tuple[Tensor, list[tuple[int, int]], list[dict] | None]:
        """Normalise, resize and pad ``images`` into one ``(B, 3, H', W')`` batch.

        Returns the batch, each image's resized ``(H, W)``, and targets with resized boxes.
        """
        resized, targets = [], list(targets) if targets is not None else None
        for i, image in enumerate(images):
            image = (image - self.image_mean[:, None, None]) / self.image_std[:, None, None]
            h, w = image.shape[-2:]
            scale = resize_scale(h, w, self.config.min_size, self.config.max_size)
            if scale != 1.0:
                image = F.interpolate(
                    image[None],
                    scale_factor=scale,
                    mode="bilinear",
                    recompute_scale_factor=True,
                    align_corners=False,
                )[0]
                if targets is not None:
                    ratio = torch.tensor(image.shape[-2:], dtype=torch.float32) / torch.tensor(
                        (h, w), dtype=torch.float32
                    )
                    ratio = ratio.to(image.device)[[1, 0, 1, 0]]  # (rw, rh, rw, rh)
                    targets[i] = {**targets[i], "boxes": targets[i]["boxes"] * ratio}
            resized.append(image)
        sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in resized]
        stride = self.config.size_divisible
        pad_h = int(math.ceil(max(h for h, _ in sizes) / stride) * stride)
        pad_w = int(math.ceil(max(w for _, w in sizes) / stride) * stride)
        if all(s == (pad_h, pad_w) for s in sizes):
            return torch.stack(resized), sizes, targets
        batch = resized[0].new_zeros(len(resized), 3, pad_h, pad_w)
        for image, out in zip(resized, batch, strict=True):
            out[:, : image.shape[1], : image.shape[2]].copy_(image)
        return batch, sizes, targets

    # -- anchors ----------------------------------------------------------------------------------
    def anchors(self, batch_size: tuple[int, int], features: list[Tensor]) -> Tensor:
        """All ``(N, 4)`` anchors for a padded batch of ``batch_size = (H, W)``."""
        grid_sizes = [tuple(f.shape[-2:]) for f in features]
        return anchors_for_image(
            batch_size,
            grid_sizes,
            self.config.anchor_sizes,
            self.config.aspect_ratios,
            dtype=features[0].dtype,
            device=features[0].device,
        )

    # -- forward ----------------------------------------------------------------------------------
    def forward(self, images: Sequence[Tensor] | Tensor, targets: Sequence[dict] | None = None):
        """Train mode: dict of losses (needs ``targets``). Eval mode: list of detections."""
        images = list(images)
        check_images(images)
        if self.training:
            if targets is None:
                raise ValueError("in training mode the model needs targets (or call model.eval())")
            check_targets(targets, images, self.config.num_classes)
        original_sizes = [tuple(im.shape[-2:]) for im in images]
        batch, sizes, targets = self.preprocess(images, targets if self.training else None)

        features = self.fpn(self.trunk(batch))  # [P3 … P7]
        class_logits, box_deltas = self.head(features)  # (B, N, K), (B, N, 4)
        anchors = self.anchors(tuple(batch.shape[-2:]), features)  # (N, 4)

        if self.training:
            return self.loss(class_logits, box_deltas, anchors, targets)
        per_level = [f.shape[-2] * f.shape[-1] * self.config.num_anchors_per_location for f in features]
        detections = postprocess_detections(
            class_logits,
            box_deltas,
            anchors,
            per_level,
            sizes,
            self.box_coder,
            self.config.score_thresh,
            self.config.topk_candidates,
            self.config.nms_thresh,
            self.config.detections_per_img,
        )
        for det, size, original in zip(detections, sizes, original_sizes, strict=True):
            ratio = torch.tensor(original, dtype=torch.float32) / torch.tensor(size, dtype=torch.float32)
            det["boxes"] = det["boxes"] * ratio.to(det["boxes"].device)[[1, 0, 1, 0]]
        return detections

    def loss(
        self, class_logits: Tensor, box_deltas: Tensor, anchors: Tensor, targets: Sequence[dict]
    ) -> dict:
        """Match every image's anchors at once and compute the RetinaNet loss (see ``losses``)."""
        num_gt = torch.tensor([len(t["boxes"]) for t in targets], device=anchors.device)  # (B,)
        # padded with zeros to the most boxes G of any image: (B, G, 4) and (B, G)
        gt_boxes = pad_sequence([t["boxes"] for t in targets], batch_first=True).to(anchors)
        gt_labels = pad_sequence([t["labels"] for t in targets], batch_first=True)
        matches = match_anchors(
            box_iou(gt_boxes, anchors),  # (B, G, N)
            self.config.fg_iou_thresh,
            self.config.bg_iou_thresh,
            self.config.allow_low_quality_matches,
            num_gt=num_gt,
        )
        return retinanet_loss(
            class_logits,
            box_deltas,
            anchors,
            matches,
            gt_boxes,
            gt_labels,
            self.box_coder,
            self.config.focal_alpha,
            self.config.focal_gamma,
            self.config.box_loss,
            self.config.smooth_l1_beta,
        )
