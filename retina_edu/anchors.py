"""Anchors (§4 "Anchors"): A boxes of several scales and aspect ratios at every position of
every pyramid level.

Order, the same as torchvision's: level → position (row, then column) → anchor. Within one
position the anchors run ratio-major: for each aspect ratio, every size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from retina_edu.boxes import box_iou

if TYPE_CHECKING:
    from retina_edu.config import RetinaNetConfig


def cell_anchors(
    sizes: Sequence[float], aspect_ratios: Sequence[float], dtype: torch.dtype = torch.float32
) -> Tensor:
    """The A = len(ratios) · len(sizes) anchors of one position, centred on (0, 0).

    An anchor of size s and aspect ratio r = h / w keeps the area s²: h = s·√r, w = s/√r.
    Coordinates are rounded to whole pixels, as torchvision does. Returns ``(A, 4)`` xyxy.
    """
    sizes_t = torch.as_tensor(sizes, dtype=dtype)
    ratios = torch.as_tensor(aspect_ratios, dtype=dtype)
    h_ratios = torch.sqrt(ratios)
    w_ratios = 1 / h_ratios
    ws = (w_ratios[:, None] * sizes_t[None, :]).reshape(-1)  # (A,) ratio-major
    hs = (h_ratios[:, None] * sizes_t[None, :]).reshape(-1)
    return (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round()


def anchors_for_grid(cell: Tensor, grid_size: tuple[int, int], stride: tuple[int, int]) -> Tensor:
    """Shift the ``(A, 4)`` cell anchors to every position of an ``(H, W)`` feature grid.

    The anchors of grid position (i, j) are centred on the pixel (j · stride_w, i · stride_h).
    Returns ``(H · W · A, 4)`` xyxy, ordered row → column → anchor.
    """
    (grid_h, grid_w), (stride_h, stride_w) = grid_size, stride
    shift_x = torch.arange(grid_w, dtype=torch.int32, device=cell.device) * stride_w  # (W,)
    shift_y = torch.arange(grid_h, dtype=torch.int32, device=cell.device) * stride_h  # (H,)
    shift_y, shift_x = torch.meshgrid(shift_y, shift_x, indexing="ij")  # (H, W) each
    shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
    shifts = torch.stack([shift_x, shift_y, shift_x, shift_y], dim=1)  # (H·W, 4)
    return (shifts[:, None, :] + cell[None, :, :]).reshape(-1, 4)


def pyramid_grid_sizes(image_size: tuple[int, int], levels: range = range(3, 8)) -> list[tuple[int, int]]:
    """The ``(H_l, W_l)`` feature-map size of each pyramid level for an ``(H, W)`` network input.

    Every stride-2 conv rounds up, so level l has ``ceil(H / 2^l) × ceil(W / 2^l)`` positions.
    """
    height, width = image_size
    return [(-(-height // 2**level), -(-width // 2**level)) for level in levels]


def anchors_for_image(
    image_size: tuple[int, int],
    grid_sizes: Sequence[tuple[int, int]],
    anchor_sizes: Sequence[Sequence[float]],
    aspect_ratios: Sequence[float],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Tensor:
    """All anchors of an image of ``image_size = (H, W)`` (the padded batch size).

    ``grid_sizes`` holds each level's feature-map size; level l's stride is
    ``image_size // grid_size`` per axis, as in torchvision's ``AnchorGenerator``. Where the
    stride-2 convs round a grid up this is not 2^l: at 800 px P6 (13 × 13) gets stride 61 and
    P7 (7 × 7) stride 114, not 64 and 128. ``anchor_sizes[l]`` are the sizes for level l.
    Returns ``(Σ_l H_l · W_l · A, 4)`` xyxy.
    """
    per_level = []
    for grid, sizes in zip(grid_sizes, anchor_sizes, strict=True):
        stride = (image_size[0] // grid[0], image_size[1] // grid[1])
        cell = cell_anchors(sizes, aspect_ratios, dtype).to(device)
        per_level.append(anchors_for_grid(cell, grid, stride))
    return torch.cat(per_level)


def anchors_for_config(
    config: RetinaNetConfig, image_size: tuple[int, int], device: torch.device | str = "cpu"
) -> Tensor:
    """The anchors a model with ``config`` lays over a padded image of ``image_size = (H, W)``:
    ``anchors_for_image`` with the grids of P3..P7 (``pyramid_grid_sizes``). Returns ``(A_total, 4)`` xyxy."""
    return anchors_for_image(
        image_size, pyramid_grid_sizes(image_size), config.anchor_sizes, config.aspect_ratios, device=device
    )


def best_anchor_iou(gt_boxes: Tensor, anchors: Tensor, chunk: int = 256) -> Tensor:
    """For each ground-truth box the IoU of its best anchor: the anchor coverage of a data set.

    gt_boxes: ``(G, 4)`` xyxy, anchors: ``(A, 4)`` xyxy → ``(G,)``. A box whose best IoU is below
    the foreground threshold (0.5) only gets a training target through the low-quality match.
    Boxes go ``chunk`` at a time, so the IoU matrix stays small (256 × 120k floats = 120 MB).
    """
    best = [box_iou(g, anchors).max(dim=1).values for g in gt_boxes.split(chunk)]
    return torch.cat(best) if best else gt_boxes.new_zeros(0)
