"""The paper's central claim and its ablations, at a scale a laptop CPU can run.

The claim (§1, §3.2, §5.1): a one-stage detector sees ~100k anchors per image, about a thousand
background anchors for every foreground one; the easy negatives then dominate cross-entropy, and
focal loss — which discounts them — beats the best α-balanced cross-entropy. So the study does
not fix one data set. It makes three variants with the generator, the same objects on more or
less background, and counts each one's imbalance with the matcher:

============  ======  ================  ======================
variant       canvas  objects / image   background : foreground
============  ======  ================  ======================
``dense``     128 px  2–8               ~73 : 1
``sparse``    128 px  1                 ~405 : 1
``sparse192`` 192 px  1                 ~916 : 1 (the paper's regime)
============  ======  ================  ======================

On each it trains α-balanced CE for several α and FL (γ = 2, α = .25), several seeds, and at the
most imbalanced one the rows of Table 1a–c and the prior-initialisation test of §4.1. Every run
trains the same small RetinaNet (``study_config``) for the same number of steps and is evaluated
with pycocotools at every quarter of its schedule, keeping up to 100 detections per image (score
threshold 0: a model that becomes confident slowly is not cut off by the usual 0.05).

    python -m retina_edu.ablations                      # the whole study, resumable
    python -m retina_edu.ablations --groups imbalance   # only the imbalance axis
    python -m retina_edu.ablations --smoke --out /tmp/smoke   # the machinery, in about a minute

``--groups heads`` is a follow-up the default study leaves out: CE and FL with other subnets than
the study's, trained as the other rows: the paper's (4 convs, no normalisation) and the study's
with GroupNorm of 8 channels per group rather than 1 at the most imbalanced variant, and the
study's 2 convs without GroupNorm along the whole imbalance axis. Its folder gets the imbalance
axis of each head design, not the study's Table 1, curves and Figure 4.
Every run records the share of its class subnet's last hidden features that are zero at the
objects' anchors (``dead_features``).

``--trunk FILE`` starts every run's trunk from the weights an earlier run saved, as the paper
starts its ResNet from ImageNet; the FPN and the subnets start fresh. Such runs go to their own
``--out``.

Runs go ``--workers`` at a time, each in its own process on one thread (small convolutions use
two single-threaded processes better than one with two threads, and one thread makes a run's
numbers independent of the core count). Each finished run is appended to ``runs.json``; a study
that is stopped continues where it was. ``summary.json`` and the figures are rewritten from all
the runs there at the end of every invocation.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from retina_edu.anchors import anchors_for_config
from retina_edu.boxes import box_iou
from retina_edu.config import RetinaNetConfig, anchor_sizes_per_level
from retina_edu.data import CocoDetection, collate, ensure_synthetic_dataset, synthetic
from retina_edu.evaluate import evaluate_model
from retina_edu.losses import sigmoid_focal_loss
from retina_edu.matching import BACKGROUND, IGNORED, match_anchors
from retina_edu.model import RetinaNet
from retina_edu.train import TrainConfig, train

STEPS = 800  # training steps of 16 images per run, the same for every setting and variant
EVAL_POINTS = 4  # AP on the validation split after every quarter of the schedule
EVAL_SCORE_THRESH = 0.0  # keep the 100 best detections per image, however low their scores
BASE_SIZES = (16, 32, 64, 128, 256)  # the CPU preset's anchor sizes on P3..P7
FIGURE4_GAMMAS = (0.0, 0.5, 1.0, 2.0)


# ------------------------------------------------------------------------------- the data
@dataclass(frozen=True)
class Variant:
    """A synthetic data set: ``objects`` per image on an ``image_size`` canvas."""

    name: str
    image_size: int
    min_objects: int
    max_objects: int
    train_images: int = 2000
    val_images: int = 300

    def root(self, base: Path) -> Path:
        """Where its files go: the default data set is ``dense`` itself; the others beside it."""
        return base if self.name == "dense" else base / "variants" / self.name

    def datasets(self, base: Path) -> tuple[CocoDetection, CocoDetection]:
        """The train and val splits, made on first use (a few seconds)."""
        paths = ensure_synthetic_dataset(
            self.root(base),
            self.train_images,
            self.val_images,
            image_size=self.image_size,
            min_objects=self.min_objects,
            max_objects=self.max_objects,
        )
        return (
            CocoDetection(paths["train"], paths["root"] / "train"),
            CocoDetection(paths["val"], paths["root"] / "val"),
        )


VARIANTS = {
    v.name: v
    for v in (Variant("dense", 128, 2, 8), Variant("sparse", 128, 1, 1), Variant("sparse192", 192, 1, 1))
}
HIGH = "sparse192"  # the most imbalanced variant: Table 1 and the prior are measured there


def study_config(variant: Variant, num_classes: int = 5, **changes) -> RetinaNetConfig:
    """The model every run trains: the CPU preset with a 32-channel FPN, sized to the canvas."""
    base = RetinaNetConfig.cpu(num_classes=num_classes).replace(
        fpn_channels=32,
        min_size=variant.image_size,
        max_size=variant.image_size,
        score_thresh=EVAL_SCORE_THRESH,
    )
    return base.replace(**changes)


def measure_imbalance(dataset: CocoDetection, config: RetinaNetConfig, images: int = 200) -> dict:
    """Foreground, background and ignored anchors summed over the first ``images`` images, as the
    matcher assigns them for ``config``'s anchors, and the ratio background : foreground."""
    counts = {"foreground": 0, "background": 0, "ignored": 0}
    for i in range(min(images, len(dataset))):
        image, target = dataset[i]
        size = tuple(image.shape[-2:])
        anchors = anchors_for_config(config, size)
        matches = match_anchors(box_iou(target["boxes"], anchors), config.fg_iou_thresh, config.bg_iou_thresh)
        counts["foreground"] += int((matches >= 0).sum())
        counts["background"] += int((matches == BACKGROUND).sum())
        counts["ignored"] += int((matches == IGNORED).sum())
    counts["images"] = min(images, len(dataset))
    counts["anchors_per_image"] = len(anchors)
    counts["ratio"] = round(counts["background"] / max(1, counts["foreground"]), 1)
    return counts


# ------------------------------------------------------------------------------- the settings
@dataclass(frozen=True)
class Setting:
    """One row of a table: the variant, what changes from ``study_config``, the training changes
    and the paper's (AP, AP50, AP75) for that row, ×100 (Table 1, ResNet-50, 600 px, minival).
    ``design``: the heads follow-up's head design (a key of ``HEAD_DESIGNS``); None for the
    study's own heads."""

    group: str
    name: str
    variant: str = HIGH
    changes: dict = field(default_factory=dict)
    train_changes: dict = field(default_factory=dict)
    paper: tuple[float, float, float] | None = None
    design: str | None = None


def anchors(scales: int, ratios: int) -> dict:
    """Table 1c's anchors: ``scales`` per octave (2^(i/scales)), 1 (1:1) or 3 aspect ratios."""
    return {
        "anchor_sizes": anchor_sizes_per_level(BASE_SIZES, tuple(2 ** (i / scales) for i in range(scales))),
        "aspect_ratios": (1.0,) if ratios == 1 else (0.5, 1.0, 2.0),
    }


def ce(alpha: float) -> dict:
    """α-balanced cross-entropy: the focal loss with γ = 0."""
    return {"focal_gamma": 0.0, "focal_alpha": alpha}


def fl(gamma: float, alpha: float) -> dict:
    return {"focal_gamma": gamma, "focal_alpha": alpha}


AXIS_ALPHAS = (0.5, 0.75, 0.99)  # CE's α on the imbalance axis; Table 1a adds .25 and .9
AXIS_LOSSES = {**{f"CE alpha={a}": ce(a) for a in AXIS_ALPHAS}, "FL gamma=2.0 alpha=0.25": fl(2.0, 0.25)}
# §4.1 as the paper trains: SGD, lr 0.01, momentum 0.9, no warm-up, no gradient clipping, the
# paper's heads (4 convs, no normalisation). π = 0.5 is bias 0.
PAPER_SGD = {"optimizer": "sgd", "lr": 0.01, "warmup_steps": 0, "grad_clip": None, "schedule": "step"}
PAPER_HEADS = {"head_convs": 4, "head_norm": "none"}
# The heads follow-up: CE and FL with other subnets than the study's (2 convs, GroupNorm of 32
# groups on 32 channels, so each channel is normalised alone), trained as every other row (AdamW).
# Not part of the default study.
HEAD_DESIGNS = {
    "paper heads": PAPER_HEADS,
    "no head norm": {"head_norm": "none"},
    "8 channels per group": {"head_norm_groups": 4},  # GroupNorm as its paper sets it (32 of 256)
}

SETTINGS = [
    # The imbalance axis, in the order the study runs it: it is what the paper is about.
    *[
        Setting("imbalance", f"CE alpha={a}", v, ce(a))
        for v in VARIANTS
        for a in AXIS_ALPHAS
    ],
    *[Setting("imbalance", "FL gamma=2.0 alpha=0.25", v, fl(2.0, 0.25)) for v in VARIANTS],
    *[
        Setting("1a", f"CE alpha={a}", HIGH, ce(a), paper=ap)
        for a, ap in [
            (0.25, (10.8, 16.0, 11.7)), (0.5, (30.2, 46.7, 32.8)), (0.75, (31.1, 49.4, 33.0)),
            (0.9, (30.8, 49.7, 32.3)), (0.99, (28.7, 47.4, 29.9)),
        ]
    ],
    *[
        Setting("prior", f"{loss} {prior}", HIGH, {**PAPER_HEADS, **changes, "prior_prob": pi}, PAPER_SGD)
        for loss, changes in [("CE", ce(0.75)), ("FL", fl(2.0, 0.25))]
        for prior, pi in [("pi=0.01", 0.01), ("bias 0", 0.5)]
    ],
    *[
        Setting("1b", f"FL gamma={g} alpha={a}", HIGH, fl(g, a), paper=ap)
        for g, a, ap in [
            (0.0, 0.75, (31.1, 49.4, 33.0)), (0.1, 0.75, (31.4, 49.9, 33.1)), (0.2, 0.75, (31.9, 50.7, 33.4)),
            (0.5, 0.5, (32.9, 51.7, 35.2)), (1.0, 0.25, (33.7, 52.0, 36.2)), (2.0, 0.25, (34.0, 52.5, 36.5)),
            (5.0, 0.25, (32.2, 49.6, 34.8)),
        ]
    ],
    *[
        Setting("1c", f"{s} scale(s) x {r} ratio(s)", HIGH, anchors(s, r), paper=ap)
        for s, r, ap in [
            (1, 1, (30.3, 49.0, 31.8)), (2, 1, (31.9, 50.0, 34.0)), (3, 1, (31.8, 49.4, 33.7)),
            (1, 3, (32.4, 52.3, 33.9)), (2, 3, (34.2, 53.1, 36.5)), (3, 3, (34.0, 52.5, 36.5)),
            (4, 3, (33.8, 52.1, 36.2)),
        ]
    ],
    # the heads follow-up: the paper's heads and GroupNorm of 8-channel groups at the most
    # imbalanced variant, and 2 convs without GroupNorm along the whole imbalance axis
    *[
        Setting("heads", f"{loss} {design}", v, {**HEAD_DESIGNS[design], **AXIS_LOSSES[loss]}, design=design)
        for design, variants, losses in [
            ("paper heads", [HIGH], ["CE alpha=0.75", "CE alpha=0.99", "FL gamma=2.0 alpha=0.25"]),
            ("8 channels per group", [HIGH], ["CE alpha=0.75", "FL gamma=2.0 alpha=0.25"]),
            ("no head norm", list(VARIANTS), list(AXIS_LOSSES)),
        ]
        for v in variants
        for loss in losses
    ],
]  # fmt: skip
GROUPS = tuple(dict.fromkeys(s.group for s in SETTINGS))
FOLLOW_UPS = ("heads",)  # groups run only when named: the default study is the rest


def high_setting(name: str) -> Setting:
    """The setting called ``name`` at the most imbalanced variant (Table 1's rows are there)."""
    return next(s for s in SETTINGS if s.variant == HIGH and s.name == name)


def run_key(setting: Setting) -> str:
    """A key shared by the settings that train the very same model: the variant, the config
    fields that differ from ``study_config`` and the training changes (Table 1a's α = .75 is
    Table 1b's γ = 0 row; Table 1b's γ = 2 row is Table 1c's 3 × 3 and the axis's FL point)."""
    variant = VARIANTS[setting.variant]
    base, config = study_config(variant), study_config(variant, **setting.changes)
    diff = {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if getattr(config, f.name) != getattr(base, f.name)
    }
    return json.dumps(
        {"variant": setting.variant, "model": diff, "train": setting.train_changes}, sort_keys=True
    )


# ------------------------------------------------------------------------------- a trained trunk
def load_trunk(path: Path) -> dict[str, torch.Tensor]:
    """The trunk's weights from a model file a study run saved (a state dict, read with
    ``weights_only=True``), keyed as ``RetinaNet.trunk`` names them. ``ValueError`` naming the
    file when it is missing, unreadable or holds no trunk."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - whatever failed, the file is unreadable
        raise ValueError(f"{path}: not a readable model file ({type(error).__name__})") from None
    prefix = "trunk."
    items = state.items() if isinstance(state, dict) else []
    trunk = {k[len(prefix) :]: v for k, v in items if isinstance(k, str) and k.startswith(prefix)}
    if not trunk:
        raise ValueError(f"{path}: holds no trunk weights (no 'trunk.' entries)")
    return trunk


def file_sha1(path: Path) -> str:
    """The first 12 hex digits of a file's SHA-1: which weights a run started from."""
    return hashlib.sha1(path.read_bytes()).hexdigest()[:12]


def check_trunk(path: Path) -> None:
    """Load ``path``'s trunk into the study's model, or ``ValueError`` naming what does not fit."""
    trunk = load_trunk(path)
    model = RetinaNet(study_config(VARIANTS[HIGH]))
    try:
        model.trunk.load_state_dict(trunk)
    except RuntimeError as error:  # torch lists the missing, unexpected and misshapen entries
        detail = " ".join(str(error).split("\n", 1)[-1].split())
        raise ValueError(f"{path}: its trunk does not fit the study's model: {detail}") from None


# ------------------------------------------------------------------------------- one run
def build_model(
    setting: Setting, variant: Variant, num_classes: int, seed: int, trunk: Path | None = None
) -> RetinaNet:
    """The model a run starts from: initialised from ``seed``, then, given a ``trunk`` file, its
    trunk replaced by the file's (the FPN and the subnets keep the seed's initialisation)."""
    torch.manual_seed(seed)
    model = RetinaNet(study_config(variant, num_classes, **setting.changes))
    if trunk is not None:
        model.trunk.load_state_dict(load_trunk(trunk))
    return model


def run_one(
    setting: Setting,
    variant: Variant,
    seed: int,
    steps: int,
    data_root: Path,
    models: Path | None,
    trunk: Path | None = None,
) -> dict:
    """Train one setting with one seed: the loss at step 0, whether it diverged (a non-finite
    loss), the AP after every quarter of the schedule and at the end. Saves the final weights in
    ``models`` when given and the seed is 0 (Figure 4 reads them). ``trunk``: a model file whose
    trunk the run starts from; the FPN and the subnets keep the seed's fresh initialisation."""
    torch.set_num_threads(1)
    train_set, val_set = variant.datasets(data_root)
    model = build_model(setting, variant, train_set.num_classes, seed, trunk)
    train_changes = {"warmup_steps": steps // 10, **setting.train_changes}
    cfg = TrainConfig(steps=steps, seed=seed, **train_changes)
    eval_at = {round(steps * (q + 1) / EVAL_POINTS) for q in range(EVAL_POINTS)}
    curve: list[tuple[int, float]] = []
    dead: list[tuple[int, float, float]] = []  # (step, zero share at foreground, at background)
    history: list[dict] = []  # kept here too: a run that diverges raises out of train()

    def measure_dead(step: int) -> None:
        shares = dead_features(model, val_set)
        dead.append((step, shares["foreground"], shares["background"]))

    def evaluate_now(step: int, record: dict) -> None:
        history.append(record)
        if step + 1 in eval_at and step + 1 < steps:
            curve.append(
                (step + 1, evaluate_model(model, val_set, progress=False, verbose=False).stats["AP"])
            )
            measure_dead(step + 1)
            model.train()

    start = time.perf_counter()
    try:
        train(model, train_set, cfg, progress=False, on_step=evaluate_now)
        diverged = False
    except FloatingPointError:
        diverged = True
    record = {"key": run_key(setting), "variant": setting.variant, "seed": seed, "steps": steps}
    if trunk is not None:
        record["trunk"] = {"file": trunk.name, "sha1": file_sha1(trunk)}
    record["diverged"] = diverged
    if diverged:  # the loss of step len(history) was not finite; the steps before it were
        record["diverged_at_step"] = len(history)
        record["max_loss_before"] = max((r["loss"] for r in history), default=None)
    if history:
        record["loss_step0"] = history[0]["loss"]
        record["classification_step0"] = history[0]["classification"]
        record["final_loss"] = statistics.mean(r["loss"] for r in history[-20:])
    if diverged:
        record.update(AP=0.0, AP50=0.0, AP75=0.0, detections_per_image=0.0)
    else:
        result = evaluate_model(model, val_set, progress=False, verbose=False)
        record.update({k: result.stats[k] for k in ("AP", "AP50", "AP75")})
        record["detections_per_image"] = len(result.results) / len(val_set)
        curve.append((steps, result.stats["AP"]))
        measure_dead(steps)
        if models is not None and seed == 0:
            torch.save(model.state_dict(), models / f"{model_file_stem(setting, seed)}.pt")
    record["curve"] = curve
    record["dead_features"] = dead
    record["seconds"] = round(time.perf_counter() - start, 1)
    return record


def model_file_stem(setting: Setting, seed: int) -> str:
    """A file name for a run's weights: a hash of its key and the seed."""
    return f"{hashlib.sha1(run_key(setting).encode()).hexdigest()[:12]}-seed{seed}"


# ------------------------------------------------------------------------------- Figure 4
def matched_outputs(
    model: RetinaNet, dataset: CocoDetection, images: int
) -> tuple[torch.Tensor, torch.Tensor, list[dict], list[torch.Tensor]]:
    """The model (in eval mode, without gradients) on the first ``images`` images of ``dataset``:
    their class logits ``(B, N, K)``, their decoded boxes before NMS ``(B, N, 4)`` xyxy, their
    targets after ``preprocess`` and, per image, each anchor's match ``(N,)``: the index of its
    ground-truth box, ``BACKGROUND`` or ``IGNORED``."""
    model.eval()
    batch, targets = collate([dataset[i] for i in range(min(images, len(dataset)))])
    with torch.no_grad():
        x, _, targets = model.preprocess(batch, targets)
        logits, deltas, anchor_boxes, _ = model.dense_outputs(x)  # (B, N, K), (B, N, 4), anchors (N, 4)
        boxes = model.box_coder.decode(deltas, anchor_boxes.expand_as(deltas))
    matched = [match_anchors(box_iou(t["boxes"], anchor_boxes)) for t in targets]
    if not any(bool((m >= 0).any()) for m in matched):  # the measures at the objects would be NaN
        raise ValueError(f"no anchor matches an object in the first {len(matched)} images of the data set")
    return logits, boxes, targets, matched


def figure4(model: RetinaNet, dataset: CocoDetection, gammas=FIGURE4_GAMMAS, images: int = 100) -> dict:
    """Figure 4: the cumulative distribution of the normalised loss over positive and over
    negative (anchor, class) pairs, for several γ, on a trained model's predictions (the paper
    uses its converged γ = 2 model and evaluates FL at each γ on it).

    Returns, per γ and kind, the share of the kind's total loss carried by the lowest-loss
    fraction x of its samples, at 101 points x = 0, 0.01, …, 1; the sample counts; and the model
    as its own loss sees it (``own``): the positives' and the negatives' loss at the model's α and
    γ per positive sample (how training normalises it), and the mean and median probability the
    model gives its positive and its negative samples.
    """
    logits, _, targets, matched = matched_outputs(model, dataset, images)
    logit, target = [], []
    for b, (t, matches) in enumerate(zip(targets, matched, strict=True)):
        onehot = torch.zeros_like(logits[b])  # (N, K)
        fg = matches >= 0
        onehot[fg, t["labels"][matches[fg]]] = 1
        logit.append(logits[b][matches != IGNORED])
        target.append(onehot[matches != IGNORED])
    logit, target = torch.cat(logit).flatten(), torch.cat(target).flatten()
    grid = torch.linspace(0, 1, 101)
    out: dict = {"fraction": [round(v, 2) for v in grid.tolist()]}
    for gamma in gammas:
        loss = sigmoid_focal_loss(logit, target, alpha=None, gamma=gamma)
        for kind, mask in (("positive", target == 1), ("negative", target == 0)):
            values = loss[mask].sort().values
            cumulative = values.cumsum(0) / values.sum()
            index = (grid * (len(values) - 1)).round().long()
            out[f"gamma={gamma} {kind}"] = [round(v, 5) for v in cumulative[index].tolist()]
    n_positive = int((target == 1).sum())
    out["counts"] = {"positive": n_positive, "negative": len(target) - n_positive}
    c = model.config
    own = sigmoid_focal_loss(logit, target, alpha=c.focal_alpha, gamma=c.focal_gamma)
    p = logit.sigmoid()
    out["own"] = {"alpha": c.focal_alpha, "gamma": c.focal_gamma}
    for kind, mask in (("positive", target == 1), ("negative", target == 0)):
        out["own"][f"{kind} loss per positive"] = round(own[mask].sum().item() / max(1, n_positive), 5)
        out["own"][f"{kind} p mean"] = round(p[mask].mean().item(), 5)
        out["own"][f"{kind} p median"] = round(p[mask].median().item(), 5)
    return out


def box_precision(model: RetinaNet, dataset: CocoDetection, images: int = 100) -> dict:
    """How tight the boxes are. ``AP_by_iou``: COCO's AP on ``dataset`` at each IoU threshold
    .50, .55, … .95 (their mean is the AP). Before NMS, on the first ``images`` images, over the
    anchors the matcher makes foreground for each object: the IoU of their decoded boxes with the
    object, averaged over them (``candidates_mean``), their best (``candidates_best``) and the one
    the model scores highest for the object's class (``top_scored``), each a mean over the objects
    (``objects`` of them)."""
    logits, boxes, targets, matched = matched_outputs(model, dataset, images)  # refuses no objects
    precision = evaluate_model(model, dataset, progress=False, verbose=False).coco_eval.eval["precision"]
    by_iou = precision[:, :, :, 0, -1]  # (IoU thresholds, recall points, classes) at all areas, 100 dets
    ap = [float(p[p > -1].mean()) for p in by_iou]
    mean, best, top = [], [], []
    for b, (t, matches) in enumerate(zip(targets, matched, strict=True)):
        for j, (truth, label) in enumerate(zip(t["boxes"], t["labels"], strict=True)):
            mine = matches == j
            if not mine.any():
                continue
            iou = box_iou(truth[None], boxes[b][mine])[0]
            mean.append(iou.mean().item())
            best.append(iou.max().item())
            top.append(iou[logits[b][mine, label].argmax()].item())
    return {
        "iou_thresholds": [round(0.5 + 0.05 * i, 2) for i in range(len(ap))],
        "AP_by_iou": [round(v, 5) for v in ap],
        "objects": len(mean),
        **{
            k: round(statistics.mean(v), 5)
            for k, v in (("candidates_mean", mean), ("candidates_best", best), ("top_scored", top))
        },
    }


def at_anchors(levels: list[torch.Tensor], anchors_per_location: int) -> torch.Tensor:
    """Each level's features ``(B, C, H, W)`` at every anchor: ``(B, N, C)``, in the order of the
    head's outputs (level, row, column, anchor), so that index n is anchor n's position."""
    a = anchors_per_location
    return torch.cat(
        [h.permute(0, 2, 3, 1).repeat_interleave(a, 2).reshape(h.shape[0], -1, h.shape[1]) for h in levels], 1
    )


def inputs_at_anchors(
    model: RetinaNet, module: torch.nn.Module, dataset: CocoDetection, images: int
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The input of ``module``, a layer of the head, at every anchor of the first ``images`` images
    ``(B, N, C)``, and each anchor's match per image (``matched_outputs``)."""
    levels: list[torch.Tensor] = []  # one per pyramid level; a ReLU works in place: keep a copy
    hook = module.register_forward_pre_hook(lambda m, i: levels.append(i[0].clone()))
    try:
        _, _, _, matched = matched_outputs(model, dataset, images)
    finally:
        hook.remove()
    return at_anchors(levels, model.config.num_anchors_per_location), matched


def dead_features(model: RetinaNet, dataset: CocoDetection, images: int = 100) -> dict[str, float]:
    """The share of the class subnet's last hidden features (the predictor's input, after its
    ReLU) that are exactly zero at the positions of the foreground anchors and of the background
    anchors of ``images`` images. A ReLU passes no gradient where it outputs zero. Where every
    feature at and around an object is zero, the object's class logits are the predictor's bias
    alone, the same for every class, and its loss reaches only that bias, which every background
    anchor shares."""
    per_anchor, matched = inputs_at_anchors(model, model.head.class_subnet.predictor, dataset, images)
    zero = {"foreground": [], "background": []}
    for b, matches in enumerate(matched):
        zero["foreground"].append(per_anchor[b, matches >= 0] == 0)
        zero["background"].append(per_anchor[b, matches == BACKGROUND] == 0)
    return {kind: round(torch.cat(z).float().mean().item(), 4) for kind, z in zero.items()}


def class_channels(model: RetinaNet, dataset: CocoDetection, images: int = 100) -> dict[str, list[float]]:
    """What each channel of the class subnet's last hidden layer responds to, and what it does to
    the class logits. Per channel (C of them): its mean pre-activation (the input of the subnet's
    last ReLU) at the positions of the foreground anchors (``objects``) and of the background
    anchors (``background``) of ``images`` images, and ``push``: the sum of the predictor's weights
    on it, over every class logit of every anchor and the 3×3 kernel. A channel with ``objects``
    below ``background`` fires on the background; with a negative ``push`` it lowers the class
    logits where it fires. ``objects_on`` and ``background_on``: the share of those anchors where
    the channel is on (its pre-activation above 0, so the ReLU passes it and its gradient)."""
    relu = [m for m in model.head.class_subnet.convs if isinstance(m, torch.nn.ReLU)][-1]
    per_anchor, matched = inputs_at_anchors(model, relu, dataset, images)  # (B, N, C)
    objects = torch.cat([per_anchor[b, m >= 0] for b, m in enumerate(matched)])  # (foreground, C)
    background = torch.cat([per_anchor[b, m == BACKGROUND] for b, m in enumerate(matched)])
    sides = {
        "objects": objects.mean(0),
        "background": background.mean(0),
        "push": model.head.class_subnet.predictor.weight.detach().sum((0, 2, 3)),
        "objects_on": (objects > 0).float().mean(0),
        "background_on": (background > 0).float().mean(0),
    }
    return {name: [round(v, 4) for v in values.tolist()] for name, values in sides.items()}


def hardest_share(curves: dict, gamma: float, kind: str, fraction: float) -> float:
    """The share of the loss carried by the hardest ``fraction`` of the samples of ``kind``:
    1 minus the cumulative curve at x = 1 − fraction."""
    return 1.0 - float(np.interp(1.0 - fraction, curves["fraction"], curves[f"gamma={float(gamma)} {kind}"]))


# ------------------------------------------------------------------------------- summaries
def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(runs: list[dict], settings: list[Setting] = SETTINGS) -> list[dict]:
    """One row per setting: AP mean ± std over seeds, AP50, AP75, diverged runs (and the step at
    which each diverged, by seed), the classification loss at step 0, the AP rise over the last
    quarter, and the paper's AP."""
    rows = []
    for s in settings:
        mine = sorted((r for r in runs if r["key"] == run_key(s)), key=lambda r: r["seed"])
        ap_mean, ap_std = _mean_std([r["AP"] for r in mine])
        rises = [r["curve"][-1][1] - r["curve"][-2][1] for r in mine if len(r["curve"]) >= 2]
        loss0 = [r["classification_step0"] for r in mine if "classification_step0" in r]
        rows.append(
            {
                "group": s.group,
                "setting": s.name,
                "variant": s.variant,
                "design": s.design,
                "seeds": len(mine),
                "AP_mean": _round(ap_mean),
                "AP_std": _round(ap_std),
                "AP50_mean": _round(_mean_std([r["AP50"] for r in mine])[0]),
                "AP75_mean": _round(_mean_std([r["AP75"] for r in mine])[0]),
                "AP_by_seed": {r["seed"]: round(r["AP"], 4) for r in mine},
                "last_quarter_rise": _round(_mean_std(rises)[0]),
                "diverged": sum(r["diverged"] for r in mine),
                "diverged_at_step": {r["seed"]: r.get("diverged_at_step") for r in mine if r["diverged"]},
                "cls_loss_step0": _round(_mean_std(loss0)[0]),
                "paper": s.paper,
            }
        )
    return rows


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def paired_by_seed(a: dict, b: dict) -> list[float]:
    """``a`` − ``b`` for each seed both have (each maps a seed to an AP), in ``a``'s order."""
    return [a[s] - b[s] for s in a if s in b]


def imbalance_axis(rows: list[dict], imbalance: dict[str, dict], design: str | None = None) -> list[dict]:
    """Per variant: its measured background : foreground ratio, the best α-balanced CE (the α
    with the highest mean AP), FL γ = 2, and their difference, paired by seed (mean ± std).
    ``design``: one of ``HEAD_DESIGNS``, to read the heads follow-up's rows of that design rather
    than the study's."""
    groups = ("heads",) if design else ("imbalance", "1a")
    out = []
    for name in VARIANTS:
        axis = [
            r
            for r in rows
            if r["variant"] == name and r["group"] in groups and r["design"] == design and r["seeds"]
        ]
        # Table 1a repeats the axis rows at the most imbalanced variant: each alpha once
        ces = list({r["setting"]: r for r in axis if r["setting"].startswith("CE")}.values())
        fls = [r for r in axis if r["setting"].startswith("FL gamma=2.0 alpha=0.25")]
        if not ces or not fls:
            continue
        best, focal = max(ces, key=lambda r: r["AP_mean"]), fls[0]
        paired = paired_by_seed(focal["AP_by_seed"], best["AP_by_seed"])
        diff_mean, diff_std = _mean_std(paired)
        out.append(
            {
                "variant": name,
                "ratio": imbalance[name]["ratio"],
                "best_CE": best["setting"],
                "best_CE_AP": best["AP_mean"],
                "best_CE_std": best["AP_std"],
                "CE_alphas_tried": len(ces),
                "FL_AP": focal["AP_mean"],
                "FL_std": focal["AP_std"],
                "delta_AP": _round(diff_mean),
                "delta_std": _round(diff_std),
                "seeds": len(paired),
            }
        )
    return out


# ------------------------------------------------------------------------------- figures
def mean_curve(runs: list[dict]) -> tuple[list[int], list[float]]:
    """The steps at which ``runs`` (the seeds of one setting and budget) were evaluated, and their
    mean validation AP at each."""
    steps = [point[0] for point in runs[0]["curve"]]
    return steps, [statistics.mean(r["curve"][i][1] for r in runs) for i in range(len(steps))]


def plot_imbalance(axes: dict[str, list[dict]]) -> Figure:
    """The paper's thesis in one picture: FL − best CE against the measured imbalance (left),
    and the two APs themselves (right), mean ± std over seeds. ``axes`` maps a label (``"800
    steps"``) to an imbalance axis (``imbalance_axis``); the first is drawn solid, the others
    dashed or dotted and fainter, and the variants are named on the first."""
    fig = Figure(figsize=(9, 3.4 + 0.55 * len(axes)), layout="constrained")  # room for the legends
    left, right = fig.subplots(1, 2)
    left.axhline(0, color="gray", lw=1)
    for rank, (label, axis) in enumerate(axes.items()):
        ratios = [a["ratio"] for a in axis]
        style = {"fmt": ("o-", "s--", "^:")[rank % 3], "alpha": 1.0 if rank == 0 else 0.6, "capsize": 4}
        for ax, key, std, name, colour in (
            (left, "delta_AP", "delta_std", "FL − best CE", "tab:purple"),
            (right, "best_CE_AP", "best_CE_std", "best α-balanced CE", "tab:blue"),
            (right, "FL_AP", "FL_std", "FL γ=2, α=.25", "tab:orange"),
        ):
            ax.errorbar(
                ratios,
                [a[key] for a in axis],
                yerr=[a[std] for a in axis],
                color=colour,
                label=f"{name}, {label}",
                **style,
            )
    for a in next(iter(axes.values())):
        left.annotate(
            a["variant"], (a["ratio"], a["delta_AP"]), textcoords="offset points", xytext=(6, -12), fontsize=8
        )
    left.set(
        xscale="log", xlabel="background : foreground anchors per image", ylabel="AP(FL γ=2) − AP(best CE)"
    )
    left.set_title("FL's lead over the best CE")
    right.set(xscale="log", xlabel="background : foreground anchors per image", ylabel="COCO AP[.5:.95]")
    right.set_title("AP of each loss")
    for ax in (left, right):  # below the panels: the points use every corner of them
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    return fig


def plot_table1(rows: list[dict]) -> Figure:
    """Table 1a–c at the most imbalanced variant, ours (bars, mean ± std over seeds) beside the
    paper's (dots), each as a fraction of its table's best row: the two are on different scales
    (a toy data set, COCO), so what can be compared is the shape of each table."""
    groups = [g for g in ("1a", "1b", "1c") if any(r["group"] == g for r in rows)]
    fig = Figure(figsize=(11, 3.4), layout="constrained")
    titles = {"1a": "Table 1a: α for CE (γ = 0)", "1b": "Table 1b: γ for FL", "1c": "Table 1c: anchors"}
    for ax, group in zip(fig.subplots(1, len(groups), squeeze=False)[0], groups, strict=True):
        mine = [r for r in rows if r["group"] == group]
        pos = list(range(len(mine)))[::-1]
        best = max((r["AP_mean"] for r in mine if r["seeds"]), default=None) or 1.0
        paper_best = max(r["paper"][0] for r in mine)
        ours = [r["AP_mean"] / best if r["seeds"] else 0.0 for r in mine]
        spread = [(r["AP_std"] or 0.0) / best for r in mine]
        ax.barh(pos, ours, xerr=spread, color="tab:blue", alpha=0.8, label="ours")
        ax.plot([r["paper"][0] / paper_best for r in mine], pos, "o", color="tab:red", label="paper")
        for p, r in zip(pos, mine, strict=True):
            if not r["seeds"]:
                ax.text(0.02, p, "not run yet", va="center", fontsize=7, color="gray")
        ax.set_yticks(
            pos, [r["setting"].replace("alpha", "α").replace("gamma", "γ") for r in mine], fontsize=7
        )
        ax.set(xlim=(0, 1.15), xlabel="AP / the table's best AP")
        ax.set_title(titles[group], fontsize=9)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=8)
    return fig


def plot_seeds(ax, runs: list[dict], colour: str, style: str, label: str, seeds: bool = True) -> None:
    """The validation curves of ``runs`` (one setting's seeds) on ``ax``: each seed faint when
    ``seeds``, their mean in ``style``."""
    if seeds:
        for r in runs:
            ax.plot(*zip(*r["curve"], strict=True), color=colour, alpha=0.3, lw=1)
    ax.plot(*mean_curve(runs), style, color=colour, label=label)


def plot_curves(runs: list[dict], axis: list[dict]) -> Figure:
    """Validation AP against training step for the best CE and FL on each variant (mean over
    seeds, each seed faint): the curves that say whether the budget reached a plateau."""
    fig = Figure(figsize=(11, 3.2), layout="constrained")
    panels = fig.subplots(1, len(axis), squeeze=False)[0]
    for ax, a in zip(panels, axis, strict=True):
        for name, colour in ((a["best_CE"], "tab:blue"), ("FL gamma=2.0 alpha=0.25", "tab:orange")):
            setting = next(s for s in SETTINGS if s.variant == a["variant"] and s.name == name)
            mine = [r for r in runs if r["key"] == run_key(setting)]
            plot_seeds(ax, mine, colour, "o-", name.replace("alpha", "α").replace("gamma", "γ"))
        ax.set(xlabel="training step", ylabel="val AP", title=f"{a['variant']} ({a['ratio']:.0f} : 1)")
        ax.legend(fontsize=7)
    return fig


# Longer budgets: the best CE of Table 1a, the paper's best CE and FL γ = 2 at the most imbalanced
# variant, rerun with --steps 1600 and 3200 into results/steps1600 and steps3200 (the README's commands)
BUDGET_SETTINGS = ("CE alpha=0.99", "CE alpha=0.75", "FL gamma=2.0 alpha=0.25")


def compare_budgets(
    short: list[dict], long: list[dict], names: tuple[str, ...] = BUDGET_SETTINGS
) -> list[dict]:
    """The settings ``names`` of Table 1a/1b (the most imbalanced variant) trained for two budgets:
    ``short`` and ``long`` are the run records (runs.json) of each. Per setting: the short runs'
    final AP (mean ± std over seeds), the long runs' AP after every quarter (mean over seeds), its
    final AP ± std, its last-quarter rise and whether that rise is below its seed spread."""
    out = []
    for name in names:
        key = run_key(high_setting(name))
        mine_short = [r for r in short if r["key"] == key]
        mine_long = sorted((r for r in long if r["key"] == key), key=lambda r: r["seed"])
        if not mine_short or not mine_long:
            continue
        short_mean, short_std = _mean_std([r["AP"] for r in mine_short])
        long_mean, long_std = _mean_std([r["AP"] for r in mine_long])
        points, curve = mean_curve(mine_long)
        rise = curve[-1] - curve[-2]
        out.append(
            {
                "setting": name,
                "short_steps": mine_short[0]["steps"],
                "short_AP": _round(short_mean),
                "short_std": _round(short_std),
                "short_seeds": len(mine_short),
                "long_steps": mine_long[0]["steps"],
                "long_curve": [[step, _round(ap)] for step, ap in zip(points, curve, strict=True)],
                "long_AP": _round(long_mean),
                "long_std": _round(long_std),
                "long_seeds": len(mine_long),
                "long_AP_by_seed": {r["seed"]: round(r["AP"], 4) for r in mine_long},
                "last_quarter_rise": _round(rise),
                "plateau": rise < long_std,
            }
        )
    return out


def plateau(row: dict) -> bool:
    """The study's plateau test on a row of ``summarise``: over the last quarter of training its
    mean AP rose by less than its spread over seeds."""
    return row["last_quarter_rise"] < row["AP_std"]


def compare_axes(short: dict, long: dict) -> list[dict]:
    """The imbalance axis at two budgets, from their summaries (summary.json): per variant in both,
    the measured ratio, each budget's axis row (``imbalance_axis``: the best CE of the α tried at
    that budget, FL γ = 2 and FL − best CE), and for the long runs of both losses their
    last-quarter rise and whether it is below their seed spread (the plateau test)."""
    rows = {(r["variant"], r["setting"]): r for r in long["rows"] if r["seeds"]}
    out = []
    for a in long["axis"]:
        b = next((b for b in short["axis"] if b["variant"] == a["variant"]), None)
        if b is None:
            continue
        row = {"variant": a["variant"], "ratio": a["ratio"], "short": b, "long": a}
        for loss, name in (("CE", a["best_CE"]), ("FL", "FL gamma=2.0 alpha=0.25")):
            r = rows[a["variant"], name]
            row[f"{loss}_rise"] = r["last_quarter_rise"]
            row[f"{loss}_plateau"] = plateau(r)
        out.append(row)
    return out


def plot_budgets(
    budgets: list[list[dict]],
    names: tuple[str, ...] = BUDGET_SETTINGS,
    colours: tuple[str, ...] = ("tab:blue", "tab:green", "tab:orange"),
) -> Figure:
    """Validation AP against step for each setting of ``names`` (one colour each, in order) at
    several budgets, each given as its runs (runs.json): the longest solid (each seed faint, the
    mean bold), the others' means dashed or dotted in the same colour."""
    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = fig.subplots()
    budgets = sorted(budgets, key=lambda runs: -max(r["steps"] for r in runs))
    styles = ("o-", "s--", "^:")
    for name, colour in zip(names, colours, strict=False):
        key = run_key(high_setting(name))
        label = name.replace("alpha", "α").replace("gamma", "γ")
        for rank, runs in enumerate(budgets):
            mine = [r for r in runs if r["key"] == key]
            if not mine:
                continue
            plot_seeds(ax, mine, colour, styles[rank % 3], f"{label}, {mine[0]['steps']} steps", rank == 0)
    ax.set(xlabel="training step", ylabel="val AP", title=f"{HIGH}: each budget's own cosine schedule")
    ax.legend(fontsize=7)
    return fig


def plot_figure4(fig4: dict) -> Figure:
    """Figure 4 for each trained model: cumulative normalised loss of positives and negatives."""
    models = list(fig4)
    fig = Figure(figsize=(9, 3.2 * len(models)), layout="constrained")
    for row, name in zip(fig.subplots(len(models), 2, squeeze=False), models, strict=True):
        curves = fig4[name]
        for ax, kind in zip(row, ("positive", "negative"), strict=True):
            for gamma in FIGURE4_GAMMAS:
                ax.plot(curves["fraction"], curves[f"gamma={gamma} {kind}"], label=f"γ = {gamma:g}")
            ax.plot([0, 1], [0, 1], ":", color="gray", lw=1)
            ax.set(
                xlabel=f"fraction of {kind} samples (lowest loss first)", ylabel="cumulative normalised loss"
            )
            ax.set_title(f"{name}: {kind} samples", fontsize=9)
            ax.legend(fontsize=7)
    return fig


# ------------------------------------------------------------------------------- the study
def smoke_variants() -> dict[str, Variant]:
    """The variants with a few images each: the machinery end to end in about a minute."""
    return {k: dataclasses.replace(v, train_images=24, val_images=8) for k, v in VARIANTS.items()}


SMOKE_SETTINGS = (
    "CE alpha=0.75",
    "FL gamma=2.0 alpha=0.25",
    "FL bias 0",
    "1 scale(s) x 1 ratio(s)",
    "CE alpha=0.75 paper heads",
)


def plan(
    groups: list[str],
    seeds: int,
    smoke: bool,
    names: list[str] | None = None,
    variants: list[str] | None = None,
) -> list[tuple[Setting, int]]:
    """The runs to make, each distinct model once, seed-major within each group so that an
    interrupted study has every setting at some seeds rather than some settings at all seeds.
    ``names``, ``variants``: only the settings of these names, on these variants (within
    ``groups``)."""
    chosen = [
        s
        for s in SETTINGS
        if s.group in groups
        and (not smoke or s.name in SMOKE_SETTINGS)
        and (names is None or s.name in names)
        and (variants is None or s.variant in variants)
    ]
    todo: dict[tuple[str, int], tuple[Setting, int]] = {}
    for group in groups:
        for seed in range(seeds):
            for s in chosen:
                if s.group == group:
                    todo.setdefault((run_key(s), seed), (s, seed))
    return list(todo.values())


def hardware() -> str:
    """The GPU's name, or the CPU's model (Linux names it in /proc/cpuinfo) and its core count:
    two CPUs of one architecture round differently, and over 800 steps a run's AP drifts apart."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    return f"{model or platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, no GPU"


def git_revision() -> str:
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                cwd=Path(__file__).parent,
                capture_output=True,
                text=True,
            ).stdout.strip()
            or "unknown"
        )
    except OSError:
        return "unknown"


def measure_saved(
    file: Path, settings: list[Setting], variant: Variant, val_set: CocoDetection, models: Path, measure
) -> dict:
    """``measure(model, val_set)`` on seed 0's trained model of each of ``settings`` (by name; all
    on ``variant``), from the weights in ``models``; where they are not at hand (a clone: the
    weights are not committed), the value ``file`` held before. Written to ``file`` and returned."""
    earlier = json.loads(file.read_text()) if file.is_file() else {}
    measured = {}
    for setting in settings:
        weights = models / f"{model_file_stem(setting, 0)}.pt"
        if weights.is_file():
            model = RetinaNet(study_config(variant, val_set.num_classes, **setting.changes))
            model.load_state_dict(torch.load(weights, weights_only=True))
            measured[setting.name] = measure(model, val_set)
        elif setting.name in earlier:
            measured[setting.name] = earlier[setting.name]
    file.write_text(json.dumps(measured))
    return measured


def write_results(
    out: Path,
    runs: list[dict],
    variants: dict[str, Variant],
    data_root: Path,
    models: Path,
    meta: dict,
    groups: tuple[str, ...] = GROUPS,
) -> dict:
    """The summary of the settings of ``groups`` and of every other setting ``runs`` hold, and the
    imbalance axis of each head design that has one. Where ``groups`` holds a part of the study (not
    only follow-ups): Table 1, the curves and Figure 4 for the FL and best-CE models of the most
    imbalanced variant as well. A follow-up's folder so gets its own figures, not the study's. With
    the heads follow-up: the class channels (``channels.json``) and Figure 4's curves of seed 0's
    model of each head design and loss at the most imbalanced variant, and how tight its boxes
    are (``boxes.json``)."""
    imbalance = {}
    for name, variant in variants.items():
        train_set, _ = variant.datasets(data_root)
        imbalance[name] = measure_imbalance(train_set, study_config(variant, train_set.num_classes))
    keys = {r["key"] for r in runs}
    rows = summarise(runs, [s for s in SETTINGS if s.group in groups or run_key(s) in keys])
    axis = imbalance_axis(rows, imbalance)
    study = any(g not in FOLLOW_UPS for g in groups)
    _, val_set = variants[HIGH].datasets(data_root)
    measured: dict[str, Setting] = {}  # Figure 4's models, by name, all at the most imbalanced variant
    if study:  # FL, the best CE and the paper's best CE (α = .75)
        high = [a["best_CE"] for a in axis if a["variant"] == HIGH]
        names = ("FL gamma=2.0 alpha=0.25", *high, "CE alpha=0.75") if high else ()
        measured.update((n, high_setting(n)) for n in names)
    if "heads" in groups:  # each head design's class subnet with each loss
        heads = {
            s.name: s for s in SETTINGS if s.variant == HIGH and (s.group == "heads" or s.name in AXIS_LOSSES)
        }
        for file, measure in (("channels.json", class_channels), ("boxes.json", box_precision)):
            measure_saved(out / file, list(heads.values()), variants[HIGH], val_set, models, measure)
        measured.update(heads)
    fig4 = measure_saved(
        out / "figure4.json", list(measured.values()), variants[HIGH], val_set, models, figure4
    )
    heads_axis = {design: imbalance_axis(rows, imbalance, design) for design in HEAD_DESIGNS}
    summary = {"meta": {**meta, "imbalance": imbalance}, "axis": axis, "heads_axis": heads_axis, "rows": rows}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    figures = {}
    if study:
        if any(r["group"] in ("1a", "1b", "1c") for r in rows):
            figures["table1"] = plot_table1(rows)
        if axis:
            figures["curves"] = plot_curves(runs, axis)
        if fig4:
            figures["figure4"] = plot_figure4(fig4)
    axes = {"the study's heads": axis, **heads_axis}  # a heads follow-up's folder has its designs' axes
    drawn = {f"{name}, {meta['steps']} steps": a for name, a in axes.items() if a}
    if drawn:
        figures["imbalance"] = plot_imbalance(drawn)
    for name, figure in figures.items():
        figure.savefig(out / f"{name}.png", dpi=90, bbox_inches="tight")  # legends may hang below
    return summary


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m retina_edu.ablations",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--steps", type=positive_int, default=STEPS, help="training steps per run (default: %(default)s)"
    )
    parser.add_argument(
        "--seeds", type=positive_int, default=3, help="seeds per setting (default: %(default)s)"
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=2,
        help="runs at a time, one thread each (default: %(default)s)",
    )
    parser.add_argument(
        "--groups",
        nargs="+",
        choices=GROUPS,
        default=[g for g in GROUPS if g not in FOLLOW_UPS],
        help=f"which parts to run (default: all but the follow-ups {', '.join(FOLLOW_UPS)})",
    )
    parser.add_argument(
        "--settings",
        nargs="+",
        choices=sorted({s.name for s in SETTINGS}),
        metavar="NAME",
        help="only the settings of these names, e.g. 'CE alpha=0.75' (default: every one of --groups)",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=list(VARIANTS),
        help=f"only the settings on these data variants (default: all; Table 1 is on {HIGH})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=synthetic.DEFAULT_ROOT.parent / "results",
        help="results folder (default: %(default)s)",
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        help="where the data variants go (default: beside the synthetic data set; --smoke: OUT/data)",
    )
    parser.add_argument(
        "--models", type=Path, help="where seed 0's weights go (default: OUT/models, not committed)"
    )
    parser.add_argument(
        "--trunk",
        type=Path,
        help="a model file a study run saved: every run starts its trunk from it (default: fresh)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="a few images, 4 steps, one seed, a few settings"
    )
    parser.add_argument(
        "--report", action="store_true", help="only rewrite the summary and figures from runs.json"
    )
    return parser


def check_folders(parser: argparse.ArgumentParser, folders: dict[str, Path]) -> None:
    """Create the output folders, or stop with one line naming the flag that cannot be used."""
    for flag, folder in folders.items():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            parser.error(f"{flag} {folder}: cannot create it ({error.strerror})")
        if not os.access(folder, os.W_OK):
            parser.error(f"{flag} {folder}: not writable")


def run_all(todo, variants, steps, data_root, models, trunk, workers, runs, runs_file) -> None:
    """Make the runs ``todo``, ``workers`` at a time, appending each to ``runs_file`` as it ends."""
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {
            pool.submit(run_one, s, variants[s.variant], seed, steps, data_root, models, trunk): s
            for s, seed in todo
        }
        for future in as_completed(futures):
            record, setting = future.result(), futures[future]
            runs.append(record)
            runs_file.write_text(json.dumps(runs, indent=1))
            print(
                f"{setting.variant:9} {setting.name:28} seed {record['seed']}: AP {record['AP']:.4f} "
                f"({record['seconds']:.0f} s)",
                flush=True,
            )


def main(argv: list[str] | None = None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.smoke:
        args.steps, args.seeds = min(args.steps, 4), 1
    variants = smoke_variants() if args.smoke else VARIANTS
    data_root = args.data_root or (args.out / "data" if args.smoke else synthetic.DEFAULT_ROOT)
    models = args.models or args.out / "models"
    check_folders(parser, {"--out": args.out, "--models": models, "--data-root": data_root})

    revision, begun = git_revision(), time.perf_counter()
    runs_file = args.out / "runs.json"
    runs = json.loads(runs_file.read_text()) if runs_file.is_file() else []
    other_steps = sorted({r["steps"] for r in runs} - {args.steps})
    if other_steps:  # one folder, one schedule: the summary compares like with like
        parser.error(
            f"--out {args.out}: its runs.json holds runs of {other_steps[0]} steps; "
            f"give --steps {args.steps} another --out"
        )
    trunk_sha1 = None
    if args.trunk is not None:
        try:
            check_trunk(args.trunk)
        except (OSError, ValueError) as error:
            parser.error(f"--trunk {error}")
        trunk_sha1 = file_sha1(args.trunk)
    other_trunks = {(r.get("trunk") or {}).get("sha1") for r in runs} - {trunk_sha1}
    if other_trunks:  # one folder, one starting point: the summary compares like with like
        sha1 = other_trunks.pop()
        started = f"the trunk of SHA-1 {sha1}" if sha1 else "fresh weights"
        parser.error(f"--out {args.out}: its runs.json holds runs started from {started}; give another --out")
    planned = plan(args.groups, args.seeds, args.smoke, args.settings, args.variants)
    done = {(r["key"], r["seed"]) for r in runs}
    todo = [] if args.report else [(s, seed) for s, seed in planned if (run_key(s), seed) not in done]
    for variant in variants.values():  # make the data once, before the workers need it
        variant.datasets(data_root)
    print(f"{len(todo)} runs to make, {len(done)} already in {runs_file}", flush=True)
    run_all(todo, variants, args.steps, data_root, models, args.trunk, args.workers, runs, runs_file)
    done = {(r["key"], r["seed"]) for r in runs}
    meta = {
        "command": "python -m retina_edu.ablations " + " ".join(argv if argv is not None else sys.argv[1:]),
        "git_revision": revision,
        "hardware": hardware(),
        "steps": args.steps,
        **({"trunk": {"file": str(args.trunk), "sha1": trunk_sha1}} if args.trunk else {}),
        "batch_size": TrainConfig().batch_size,
        "eval_score_thresh": EVAL_SCORE_THRESH,
        "runs_planned": len(planned),
        "runs_done": sum((run_key(s), seed) in done for s, seed in planned),
        "this_invocation_seconds": round(time.perf_counter() - begun),
        "total_run_seconds": round(sum(r["seconds"] for r in runs)),
    }
    summary = write_results(args.out, runs, variants, data_root, models, meta, tuple(args.groups))
    for a in [*summary["axis"], *(a for axis in summary["heads_axis"].values() for a in axis)]:
        print(
            f"{a['variant']:9} {a['ratio']:6.0f}:1  best CE ({a['best_CE']}) {a['best_CE_AP']:.3f}  "
            f"FL {a['FL_AP']:.3f}  FL - CE {a['delta_AP']:+.3f} ± {a['delta_std']:.3f} ({a['seeds']} seeds)"
        )
    return summary


if __name__ == "__main__":
    main()
