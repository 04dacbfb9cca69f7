"""Transforms of an ``(image, target)`` pair, and the batch collate function.

Every transform is a callable ``(image, target) -> (image, target)`` with image ``(3, H, W)`` float
and target ``{"boxes": (N, 4) xyxy in pixels, "labels": (N,), ...}``; other target keys pass
through. Inputs are never changed in place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from retina_edu.transform import resize_scale

Target = dict[str, Any]  # {"boxes": (N, 4) float32 xyxy, "labels": (N,) int64, "image_id": int}
Transform = Callable[[Tensor, Target], tuple[Tensor, Target]]


def _check_image(image: Tensor) -> None:
    if image.dim() != 3:
        raise ValueError(f"image must be (C, H, W), got {tuple(image.shape)}")


class Compose:
    """Apply ``transforms`` one after the other."""

    def __init__(self, transforms: Sequence[Transform]):
        self.transforms = list(transforms)

    def __call__(self, image: Tensor, target: Target) -> tuple[Tensor, Target]:
        for transform in self.transforms:
            image, target = transform(image, target)
        return image, target

    def __repr__(self) -> str:
        return f"Compose({self.transforms})"


class RandomHorizontalFlip:
    """Mirror image and boxes left to right with probability ``p``: x1' = W - x2, x2' = W - x1.

    ``generator``: a ``torch.Generator`` for the coin flips (default: torch's global one).
    """

    def __init__(self, p: float = 0.5, generator: torch.Generator | None = None):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = p
        self.generator = generator

    def __call__(self, image: Tensor, target: Target) -> tuple[Tensor, Target]:
        _check_image(image)
        if torch.rand(1, generator=self.generator).item() >= self.p:
            return image, target
        width = image.shape[-1]
        x1, y1, x2, y2 = target["boxes"].unbind(-1)
        boxes = torch.stack([width - x2, y1, width - x1, y2], dim=-1)  # (N, 4)
        return image.flip(-1), {**target, "boxes": boxes}

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Resize:
    """Scale the shorter side to ``min_size``, less if the longer side would pass ``max_size``.

    Bilinear interpolation; boxes are scaled by the same factor as each axis of the image (the
    sizes are rounded to whole pixels, so the two factors can differ slightly).
    """

    def __init__(self, min_size: int, max_size: int):
        if not 0 < min_size <= max_size:
            raise ValueError(f"need 0 < min_size <= max_size, got {min_size}, {max_size}")
        self.min_size = min_size
        self.max_size = max_size

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """``(new_height, new_width)`` for an image of ``height`` x ``width``."""
        scale = resize_scale(height, width, self.min_size, self.max_size)
        return round(height * scale), round(width * scale)

    def __call__(self, image: Tensor, target: Target) -> tuple[Tensor, Target]:
        _check_image(image)
        height, width = image.shape[-2:]
        new_height, new_width = self.output_size(height, width)
        resized = F.interpolate(
            image[None], size=(new_height, new_width), mode="bilinear", align_corners=False
        )[0]
        factors = torch.tensor(
            [new_width / width, new_height / height] * 2, dtype=target["boxes"].dtype
        )  # (4,): x, y, x, y
        return resized, {**target, "boxes": target["boxes"] * factors}

    def __repr__(self) -> str:
        return f"Resize(min_size={self.min_size}, max_size={self.max_size})"


def collate(batch: Sequence[tuple[Tensor, Target]]) -> tuple[list[Tensor], list[Target]]:
    """``[(image, target), ...]`` → ``([image, ...], [target, ...])``.

    The images may differ in size, so they stay a list: the model pads them into one batch, as
    torchvision's detection models do.
    """
    images = [image for image, _ in batch]
    targets = [target for _, target in batch]
    return images, targets
