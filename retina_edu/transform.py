"""The image transform around the network: check, normalise, resize, pad into a batch, and map
detected boxes back to the input image. The arithmetic is torchvision's
``GeneralizedRCNNTransform``, so that the same weights give the same numbers in both.

``RetinaNet.preprocess`` calls these in order; ``retina_edu.data.Resize`` shares ``resize_scale``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from retina_edu.boxes import check_boxes

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


def normalize(image: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """``(image - mean) / std`` per channel, ``(3, H, W)`` → ``(3, H, W)``.

    The constants are made in the image's own dtype, so a float64 image is normalised with
    float64 constants (not float32 ones rounded and widened), as torchvision does."""
    mean_t = torch.as_tensor(mean, dtype=image.dtype, device=image.device)[:, None, None]
    std_t = torch.as_tensor(std, dtype=image.dtype, device=image.device)[:, None, None]
    return (image - mean_t) / std_t


def resize_scale(height: int, width: int, min_size: int, max_size: int) -> float:
    """The factor that brings an image's shorter side to ``min_size``, or less if its longer side
    would then pass ``max_size``: the paper's "scale" is the shorter edge, 800 px by default.
    Used by the model's own transform and by ``retina_edu.data.Resize``."""
    return min(min_size / min(height, width), max_size / max(height, width))


def resize_boxes(boxes: Tensor, from_size: tuple[int, int], to_size: tuple[int, int]) -> Tensor:
    """``(N, 4)`` xyxy boxes of an image of ``from_size = (H, W)`` in the pixels of ``to_size``:
    x scaled by the ratio of the widths, y by that of the heights."""
    ratio = torch.tensor(to_size, dtype=torch.float32) / torch.tensor(from_size, dtype=torch.float32)
    return boxes * ratio.to(boxes.device)[[1, 0, 1, 0]]  # (rw, rh, rw, rh)


def resize(image: Tensor, min_size: int, max_size: int) -> Tensor:
    """Bilinear resize of a ``(3, H, W)`` image by ``resize_scale``; unchanged when the scale is 1.
    torchvision's rule: the output size is the input size times the scale, rounded down."""
    scale = resize_scale(image.shape[-2], image.shape[-1], min_size, max_size)
    if scale == 1.0:
        return image
    return F.interpolate(
        image[None], scale_factor=scale, mode="bilinear", recompute_scale_factor=True, align_corners=False
    )[0]


def batch_images(images: Sequence[Tensor], size_divisible: int) -> Tensor:
    """Pad ``(3, H_i, W_i)`` images with zeros (bottom and right) into one ``(B, 3, H, W)`` batch,
    H and W the largest sizes rounded up to a multiple of ``size_divisible``."""
    pad_h = int(math.ceil(max(im.shape[-2] for im in images) / size_divisible) * size_divisible)
    pad_w = int(math.ceil(max(im.shape[-1] for im in images) / size_divisible) * size_divisible)
    if all(tuple(im.shape[-2:]) == (pad_h, pad_w) for im in images):
        return torch.stack(list(images))
    batch = images[0].new_zeros(len(images), 3, pad_h, pad_w)
    for image, out in zip(images, batch, strict=True):
        out[:, : image.shape[1], : image.shape[2]].copy_(image)
    return batch
