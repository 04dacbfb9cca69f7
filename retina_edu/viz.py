"""Pictures for the notebooks: images with boxes, anchors, feature maps and loss curves.

Every function draws on a matplotlib ``Axes`` it is given (or a new one) and returns it, so
notebooks can lay several out side by side.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle
from torch import Tensor

CLASS_COLORS = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:pink")


def _axes(ax: Axes | None, size: tuple[float, float] = (4, 4)) -> Axes:
    return ax if ax is not None else plt.subplots(figsize=size)[1]


def show_image(image: Tensor, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Show a ``(3, H, W)`` float image in [0, 1] with pixel axes."""
    ax = _axes(ax)
    ax.imshow(image.detach().permute(1, 2, 0).clamp(0, 1).cpu().numpy())
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels)")
    if title:
        ax.set_title(title)
    return ax


def draw_boxes(
    ax: Axes,
    boxes: Tensor,
    labels: Tensor | None = None,
    scores: Tensor | None = None,
    class_names: Sequence[str] | None = None,
    color: str | None = None,
    linewidth: float = 1.5,
    linestyle: str = "-",
    alpha: float = 1.0,
) -> Axes:
    """Draw ``(N, 4)`` xyxy boxes; colour by label unless ``color`` is given; caption with the
    class name and score when given."""
    boxes = boxes.detach().cpu()
    for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        label = int(labels[i]) if labels is not None else None
        c = color or (CLASS_COLORS[label % len(CLASS_COLORS)] if label is not None else "yellow")
        ax.add_patch(
            Rectangle(
                (x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=c, lw=linewidth, ls=linestyle, alpha=alpha
            )
        )
        caption = []
        if label is not None and class_names is not None:
            caption.append(class_names[label])
        if scores is not None:
            caption.append(f"{float(scores[i]):.2f}")
        if caption:
            ax.text(
                x1,
                y1 - 1,
                " ".join(caption),
                color="white",
                fontsize=7,
                va="bottom",
                bbox={"facecolor": c, "alpha": 0.7, "pad": 1, "lw": 0},
            )
    return ax


def show_detections(
    image: Tensor,
    detections: dict[str, Tensor],
    class_names: Sequence[str] | None = None,
    target: dict[str, Tensor] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """An image with its detections (solid, captioned) and, if given, its ground truth (dashed white)."""
    ax = show_image(image, ax, title)
    if target is not None:
        draw_boxes(ax, target["boxes"], color="white", linestyle="--", linewidth=1.0)
    draw_boxes(ax, detections["boxes"], detections["labels"], detections.get("scores"), class_names)
    return ax


def plot_loss_curves(history: Sequence[dict[str, float]], ax: Axes | None = None, smooth: int = 20) -> Axes:
    """Training losses against the step, each smoothed by a running mean over ``smooth`` steps."""
    ax = _axes(ax, (6, 3.5))
    steps = np.array([r["step"] for r in history])
    for key in ("loss", "classification", "box_regression"):
        values = np.array([r[key] for r in history])
        k = max(1, min(smooth, len(values)))
        running = np.convolve(values, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1 :], running, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title("training loss")
    ax.legend()
    return ax


def show_feature_maps(features: Sequence[Tensor], names: Sequence[str] | None = None, size: float = 2.2):
    """One panel per pyramid level: mean absolute activation of the first image, (C, H, W) → (H, W)."""
    names = names or [f"P{level}" for level in range(3, 3 + len(features))]
    fig, axes = plt.subplots(1, len(features), figsize=(size * len(features), size))
    for ax, f, name in zip(np.atleast_1d(axes), features, names, strict=True):
        ax.imshow(f[0].detach().abs().mean(0).cpu().numpy(), cmap="viridis")
        ax.set_title(f"{name} {tuple(f.shape[-2:])}")
        ax.set_xlabel("column")
        ax.set_ylabel("row")
    fig.tight_layout()
    return fig


def anchor_centres(anchors: Tensor) -> Tensor:
    """``(N, 4)`` xyxy → ``(N, 2)`` centres."""
    return (anchors[:, :2] + anchors[:, 2:]) / 2


def draw_anchors(
    ax: Axes, anchors: Tensor, color: str = "tab:cyan", max_boxes: int = 50, seed: int = 0
) -> Axes:
    """Draw up to ``max_boxes`` of ``(N, 4)`` anchors (a seeded random subset) and all their centres."""
    centres = anchor_centres(anchors)
    ax.scatter(centres[:, 0], centres[:, 1], s=2, color=color)
    if len(anchors) > max_boxes:
        pick = torch.randperm(len(anchors), generator=torch.Generator().manual_seed(seed))[:max_boxes]
        anchors = anchors[pick]
    return draw_boxes(ax, anchors, color=color, linewidth=0.6, alpha=0.8)
