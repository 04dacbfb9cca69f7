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

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence

from retina_edu.anchors import anchors_for_image
from retina_edu.backbone import build_trunk
from retina_edu.boxes import BoxCoder, box_iou
from retina_edu.config import RetinaNetConfig
from retina_edu.fpn import FPN
from retina_edu.heads import RetinaNetHead
from retina_edu.losses import retinanet_loss
from retina_edu.matching import match_anchors
from retina_edu.postprocess import postprocess_detections
from retina_edu.transform import batch_images, check_images, check_targets, normalize, resize, resize_boxes

Detections = list[dict[str, Tensor]]  # per image {"boxes": (D, 4), "scores": (D,), "labels": (D,)}


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
            config.head_norm_groups,
        )
        self.box_coder = BoxCoder()
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
        c = self.config
        resized = [resize(normalize(im, c.image_mean, c.image_std), c.min_size, c.max_size) for im in images]
        sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in resized]
        if targets is not None:
            targets = [
                {**t, "boxes": resize_boxes(t["boxes"], tuple(im.shape[-2:]), size)}
                for t, im, size in zip(targets, images, sizes, strict=True)
            ]
        return batch_images(resized, c.size_divisible), sizes, targets

    # -- anchors ----------------------------------------------------------------------------------
    def anchors(self, padded_size: tuple[int, int], features: list[Tensor]) -> Tensor:
        """All ``(N, 4)`` anchors for a batch padded to ``padded_size = (H, W)``, whose pyramid
        levels are ``features``; float32 even when the features are 16-bit (mixed precision),
        since bfloat16 cannot tell 800 px from 803 px."""
        return anchors_for_image(
            padded_size,
            [tuple(f.shape[-2:]) for f in features],
            self.config.anchor_sizes,
            self.config.aspect_ratios,
            dtype=torch.promote_types(features[0].dtype, torch.float32),
            device=features[0].device,
        )

    # -- forward ----------------------------------------------------------------------------------
    def forward(
        self, images: Sequence[Tensor] | Tensor, targets: Sequence[dict] | None = None
    ) -> dict[str, Tensor] | Detections:
        """Train mode: ``forward_training`` (needs ``targets``). Eval mode: ``forward_inference``."""
        images = list(images)
        check_images(images)
        if not self.training:
            return self.forward_inference(images)
        if targets is None:
            raise ValueError("in training mode the model needs targets (or call model.eval())")
        check_targets(targets, images, self.config.num_classes)
        return self.forward_training(images, targets)

    def dense_outputs(self, batch: Tensor) -> tuple[Tensor, Tensor, Tensor, list[Tensor]]:
        """The network on a padded ``(B, 3, H, W)`` batch: class logits ``(B, N, K)``, box deltas
        ``(B, N, 4)``, anchors ``(N, 4)`` and the pyramid's features ``[P3 … P7]``."""
        features = self.fpn(self.trunk(batch))  # [P3 … P7]
        class_logits, box_deltas = self.head(features)  # (B, N, K), (B, N, 4)
        anchors = self.anchors(tuple(batch.shape[-2:]), features)  # (N, 4)
        return class_logits, box_deltas, anchors, features

    def forward_training(self, images: list[Tensor], targets: Sequence[dict]) -> dict[str, Tensor]:
        """The losses ``{"classification": (), "box_regression": ()}`` of a checked batch."""
        batch, _, targets = self.preprocess(images, targets)
        class_logits, box_deltas, anchors, _ = self.dense_outputs(batch)
        return self.loss(class_logits, box_deltas, anchors, targets)

    def forward_inference(self, images: list[Tensor]) -> Detections:
        """Detections of a checked batch, boxes in each input image's pixels (see ``postprocess``)."""
        batch, sizes, _ = self.preprocess(images, None)
        class_logits, box_deltas, anchors, features = self.dense_outputs(batch)
        per_level = [f.shape[-2] * f.shape[-1] * self.config.num_anchors_per_location for f in features]
        detections = postprocess_detections(
            class_logits,
            box_deltas,
            anchors,
            per_level,
            sizes,
            box_coder=self.box_coder,
            score_thresh=self.config.score_thresh,
            topk_candidates=self.config.topk_candidates,
            nms_thresh=self.config.nms_thresh,
            detections_per_img=self.config.detections_per_img,
        )
        for det, size, image in zip(detections, sizes, images, strict=True):
            det["boxes"] = resize_boxes(det["boxes"], size, tuple(image.shape[-2:]))
        return detections

    def loss(
        self, class_logits: Tensor, box_deltas: Tensor, anchors: Tensor, targets: Sequence[dict]
    ) -> dict[str, Tensor]:
        """Match every image's anchors at once and compute the RetinaNet loss (see ``losses``)."""
        num_gt = torch.tensor([len(t["boxes"]) for t in targets], device=anchors.device)  # (B,)
        # padded with zeros to the most boxes G of any image: (B, G, 4) and (B, G)
        gt_boxes = pad_sequence([t["boxes"] for t in targets], batch_first=True).to(anchors)
        gt_labels = pad_sequence([t["labels"] for t in targets], batch_first=True)
        matches = match_anchors(
            box_iou(gt_boxes, anchors),  # (B, G, N)
            fg_iou_thresh=self.config.fg_iou_thresh,
            bg_iou_thresh=self.config.bg_iou_thresh,
            allow_low_quality_matches=self.config.allow_low_quality_matches,
            num_gt=num_gt,
        )
        return retinanet_loss(
            class_logits,
            box_deltas,
            anchors,
            matches,
            gt_boxes,
            gt_labels,
            box_coder=self.box_coder,
            alpha=self.config.focal_alpha,
            gamma=self.config.focal_gamma,
            box_loss=self.config.box_loss,
            smooth_l1_beta=self.config.smooth_l1_beta,
        )
