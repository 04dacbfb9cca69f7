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
from matplotlib.patches import FancyBboxPatch, Rectangle
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
    placed: list[tuple[float, float, float]] = []  # captions drawn so far: display x, y, width
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
            text = " ".join(caption)
            x, y = _free_caption_spot(ax, x1, y1 - 1, len(text), placed)
            ax.text(
                x,
                y,
                text,
                color="white",
                fontsize=7,
                va="bottom",
                bbox={"facecolor": c, "alpha": 0.7, "pad": 1, "lw": 0},
            )
    return ax


def _free_caption_spot(
    ax: Axes, x: float, y: float, num_chars: int, placed: list[tuple[float, float, float]]
) -> tuple[float, float]:
    """Where to put a caption wanted at data point (x, y) so that it covers none of ``placed``: one
    line lower each time it would (duplicate detections of one object share a corner). Records it."""
    points = 7 * ax.figure.dpi / 72  # draw_boxes' caption font size, in display pixels
    height, width = 1.6 * points, 0.62 * points * num_chars
    px, py = ax.transData.transform((x, y))
    while any(abs(px - qx) < max(width, qw) and abs(py - qy) < height for qx, qy, qw in placed):
        py -= height
    placed.append((px, py, width))
    return tuple(ax.transData.inverted().transform((px, py)))


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


# -- diagrams -----------------------------------------------------------------------------------

# The series in pipeline order: (notebook, the piece it builds). ``you_are_here`` draws it.
SERIES = (
    ("00", "overview,\ndata"),
    ("01", "boxes,\nIoU"),
    ("02", "anchors"),
    ("03", "matching,\nencoding"),
    ("04", "backbone,\nFPN"),
    ("05", "subnets,\nprior"),
    ("06", "focal\nloss"),
    ("07", "training"),
    ("08", "inference,\nNMS"),
    ("09", "COCO\nAP"),
    ("10", "ablations"),
)


def _stage(ax: Axes, x: float, y: float, text: str, fill, w: float, h: float, **text_kw) -> None:
    """A rounded box of colour ``fill`` centred on (x, y), with its label."""
    ax.add_patch(
        FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.03", facecolor=fill,
                       edgecolor="0.3", lw=0.8)
    )  # fmt: skip
    ax.text(x, y, text, ha="center", va="center", **{"fontsize": 7, **text_kw})


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "color": "0.3", "lw": 0.9})


def you_are_here(notebook: str, ax: Axes | None = None) -> Axes:
    """The series as one strip of pipeline steps, with notebook ``notebook`` ("00" … "10") highlighted."""
    names = [number for number, _ in SERIES]
    if notebook not in names:
        raise ValueError(f"notebook must be one of {names}, got {notebook!r}")
    ax = _axes(ax, (10, 1.15))
    for i, (number, piece) in enumerate(SERIES):
        here = number == notebook
        style = (
            {"fontweight": "bold", "color": "black"} if here else {"fontweight": "normal", "color": "0.35"}
        )
        _stage(ax, i * 1.1, 0, f"{number}\n{piece}", "tab:orange" if here else "0.93", 0.92, 0.78, **style)
        if i:
            _arrow(ax, ((i - 1) * 1.1 + 0.47, 0), (i * 1.1 - 0.47, 0))
    ax.set_xlim(-0.55, (len(SERIES) - 1) * 1.1 + 0.55)
    ax.set_ylim(-0.5, 0.5)
    piece = dict(SERIES)[notebook].replace(",\n", ", ").replace("\n", " ")
    ax.set_title(f"you are here: notebook {notebook} · {piece}", fontsize=9)
    ax.set_axis_off()  # a diagram: the axes carry no quantity
    return ax


def draw_pipeline(ax: Axes | None = None) -> Axes:
    """RetinaNet from the image to the loss (training) and the detections (inference), each stage
    with the notebook that builds it in brackets."""
    ax = _axes(ax, (10, 3.5))
    net, train_c, infer_c, grey = "#cfe3f7", "#fde2c8", "#d5efd5", "0.92"
    _stage(ax, 0.75, 2.0, "image\n(3, H, W)\npadded to ×32", grey, 1.3, 0.62)
    _stage(ax, 2.4, 2.0, "backbone\nResNet: C3, C4, C5\n[04]", net, 1.5, 0.62)
    _stage(ax, 4.15, 2.0, "FPN\nP3 … P7\nstrides 8 … 128 [04]", net, 1.5, 0.62)
    _stage(ax, 5.95, 2.9, "class subnet\nK·A logits / position [05]", net, 1.6, 0.55)
    _stage(ax, 5.95, 2.0, "box subnet\n4·A deltas / position [05]", net, 1.6, 0.55)
    _stage(ax, 5.95, 1.1, "anchors: A = 9 / position\n~100k at 800 px [02]", grey, 1.6, 0.55)
    _stage(ax, 7.75, 2.0, "per anchor:\nK scores,\n4 deltas,\nits anchor box", grey, 1.3, 1.9)
    _stage(ax, 9.65, 2.65, "train: match to GT [03],\nfocal + box loss\n÷ #fg [06, 07]", train_c, 1.6, 0.8)
    _stage(ax, 9.65, 1.3, "infer: score > 0.05,\ntop 1k / level,\ndecode, NMS 0.5 [08]", infer_c, 1.6, 0.8)
    for start, end in [((1.4, 2.0), (1.65, 2.0)), ((3.15, 2.0), (3.4, 2.0)), ((4.9, 2.2), (5.15, 2.8)),
                       ((4.9, 2.0), (5.15, 2.0)), ((4.9, 1.8), (5.15, 1.2)), ((6.75, 2.9), (7.1, 2.7)),
                       ((6.75, 2.0), (7.1, 2.0)), ((6.75, 1.1), (7.1, 1.3)), ((8.4, 2.3), (8.83, 2.6)),
                       ((8.4, 1.7), (8.83, 1.35))]:  # fmt: skip
        _arrow(ax, start, end)
    ax.set_xlim(0, 10.5)
    ax.set_ylim(0.6, 3.3)
    ax.set_title("RetinaNet: one network, two subnets on every pyramid level, dense anchors")
    ax.set_axis_off()  # a diagram: the axes carry no quantity
    return ax
