"""The paper's ablations (Table 1a–c, the prior init of §4.1, Figure 4) at small scale.

    python benchmarks/ablations.py                 # the whole study, under 1 hour on 2 CPU cores
    python benchmarks/ablations.py --steps 20 --seeds 1 --out runs/ablations-smoke   # a smoke run

Runs go two at a time, each in its own process with one thread (``--workers``): small
convolutions use two single-threaded processes better than one process with two threads, and
one thread per run makes each run's numbers independent of the machine's core count.
Every setting trains the CPU preset on the synthetic data for the same number of steps, with
several seeds, and is evaluated with pycocotools on the validation split. Runs are appended to
``runs.json`` as they finish, so an interrupted study continues where it stopped. At the end
the script writes ``summary.csv`` / ``summary.json`` (mean ± std per setting, next to the paper's
number), ``figure4.json`` and the plots.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import torch

from retina_edu import RetinaNet, RetinaNetConfig
from retina_edu.boxes import box_iou
from retina_edu.checkpoint import load_model
from retina_edu.config import anchor_sizes_per_level
from retina_edu.data import CocoDetection, collate, ensure_synthetic_dataset
from retina_edu.evaluate import evaluate_model
from retina_edu.losses import sigmoid_focal_loss
from retina_edu.matching import match_anchors
from retina_edu.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
BASE_SIZES = (16, 32, 64, 128, 256)  # the CPU preset's anchor sizes on P3..P7
SHIPPED = ROOT / "data" / "checkpoints" / "retinanet_cpu.pt"


@dataclass(frozen=True)
class Setting:
    """One row of a table: what changes from the CPU preset, and the paper's AP for that row."""

    group: str
    name: str
    changes: dict = field(default_factory=dict)
    paper_ap: float | None = None
    train_changes: dict = field(default_factory=dict)


def anchors(scales: int, ratios: int) -> dict:
    """Table 1c's anchor settings: ``scales`` per octave, 1 (1:1) or 3 aspect ratios."""
    scale_values = tuple(2 ** (i / scales) for i in range(scales))
    return {
        "anchor_sizes": anchor_sizes_per_level(BASE_SIZES, scale_values),
        "aspect_ratios": (1.0,) if ratios == 1 else (0.5, 1.0, 2.0),
    }


PAPER_SGD = {"optimizer": "sgd", "lr": 0.01, "grad_clip": None, "schedule": "step"}

# The paper's Table 1 (ResNet-50, 600 px, COCO minival AP). γ per α as Table 1b pairs them.
SETTINGS = [
    *[
        Setting("a: alpha for CE", f"CE alpha={a}", {"focal_gamma": 0.0, "focal_alpha": a}, ap)
        for a, ap in [(0.25, 10.8), (0.5, 30.2), (0.75, 31.1), (0.9, 30.8), (0.99, 28.7)]
    ],
    *[
        Setting("b: gamma for FL", f"FL gamma={g} alpha={a}", {"focal_gamma": g, "focal_alpha": a}, ap)
        for g, a, ap in [
            (0.0, 0.75, 31.1),
            (0.5, 0.5, 32.9),
            (1.0, 0.25, 33.7),
            (2.0, 0.25, 34.0),
            (5.0, 0.25, 32.2),
        ]
    ],
    *[
        Setting("c: anchors", f"{s} scale(s) x {r} ratio(s)", anchors(s, r), ap)
        for s, r, ap in [(1, 1, 30.3), (2, 1, 31.9), (3, 1, 31.8), (1, 3, 32.4), (2, 3, 34.2), (3, 3, 34.0)]
    ],
    # §4.1: without the prior, "the large number of background anchors ... creates a large,
    # destabilizing loss value in the first iteration of training". π = 0.5 gives bias 0.
    # Trained as the paper does: SGD, lr 0.01, momentum 0.9, no gradient clipping.
    *[
        Setting("d: prior init (SGD)", f"{loss} {prior}", {"prior_prob": pi, **extra}, None, PAPER_SGD)
        for loss, extra in [("CE", {"focal_gamma": 0.0, "focal_alpha": 0.75}), ("FL", {})]
        for prior, pi in [("pi=0.01", 0.01), ("bias 0", 0.5)]
    ],
]


def same_run(setting: Setting) -> str:
    """A key for the settings that train the very same model (Table 1b's γ=2 row is Table 1c's 3x3)."""
    return repr(RetinaNetConfig.cpu().replace(**setting.changes)) + repr(
        sorted(setting.train_changes.items())
    )


def run_one(setting: Setting, seed: int, steps: int, train_set, val_set) -> dict:
    """Train one setting with one seed; the loss at step 0, whether it diverged, and the AP."""
    torch.set_num_threads(1)
    config = RetinaNetConfig.cpu(num_classes=train_set.num_classes).replace(**setting.changes)
    torch.manual_seed(seed)
    model = RetinaNet(config)
    cfg = TrainConfig(steps=steps, seed=seed, warmup_steps=min(100, steps // 10), **setting.train_changes)
    start = time.perf_counter()
    try:
        result = train(model, train_set, cfg, progress=False)
        history, diverged = result.history, False
    except FloatingPointError:
        history, diverged = [], True
    record = {"key": same_run(setting), "seed": seed, "steps": steps, "diverged": diverged}
    if history:
        record["loss_step0"] = history[0]["loss"]
        record["classification_step0"] = history[0]["classification"]
        record["final_loss"] = statistics.mean(r["loss"] for r in history[-20:])
    record["AP"] = (
        0.0 if diverged else evaluate_model(model, val_set, progress=False, verbose=False).stats["AP"]
    )
    record["seconds"] = round(time.perf_counter() - start, 1)
    return record


def figure4(model: RetinaNet, dataset, gammas=(0.0, 0.5, 1.0, 2.0), images: int = 64) -> dict:
    """Figure 4: cumulative distribution of the normalised loss over positive and over negative
    anchors, for several γ, on a converged model's predictions (the paper uses its γ=2 model).

    Returns, per γ and per kind, the fraction of the total loss carried by the lowest-loss
    fraction x of the samples, at 101 points x = 0, 0.01, …, 1.
    """
    model.eval()
    batch, targets = collate([dataset[i] for i in range(images)])
    with torch.no_grad():
        x, sizes, targets = model.preprocess(batch, targets)
        features = model.fpn(model.trunk(x))
        logits, _ = model.head(features)
        anchor_boxes = model.anchors(tuple(x.shape[-2:]), features)
    per_image = []
    for b, t in enumerate(targets):
        matches = match_anchors(box_iou(t["boxes"], anchor_boxes))
        onehot = torch.zeros_like(logits[b])
        fg = matches >= 0
        onehot[fg, t["labels"][matches[fg]]] = 1
        per_image.append((logits[b][matches != -2], onehot[matches != -2]))
    logit = torch.cat([p[0] for p in per_image]).flatten()
    target = torch.cat([p[1] for p in per_image]).flatten()
    grid = torch.linspace(0, 1, 101)
    out = {}
    for gamma in gammas:
        loss = sigmoid_focal_loss(logit, target, alpha=None, gamma=gamma)
        for kind, mask in (("positive", target == 1), ("negative", target == 0)):
            values = loss[mask].sort().values
            cumulative = values.cumsum(0) / values.sum()
            index = (grid * (len(values) - 1)).round().long()
            out[f"gamma={gamma} {kind}"] = [round(v, 5) for v in cumulative[index].tolist()]
    out["fraction"] = grid.tolist()
    out["counts"] = {"positive": int((target == 1).sum()), "negative": int((target == 0).sum())}
    return out


def summarise(runs: list[dict]) -> list[dict]:
    rows = []
    for s in SETTINGS:
        mine = [r for r in runs if r["key"] == same_run(s)]
        aps = [r["AP"] for r in mine]
        loss0 = [r["classification_step0"] for r in mine if "classification_step0" in r]
        rows.append(
            {
                "group": s.group,
                "setting": s.name,
                "seeds": len(mine),
                "AP_mean": round(statistics.mean(aps), 4) if aps else None,
                "AP_std": round(statistics.stdev(aps), 4) if len(aps) > 1 else 0.0,
                "diverged": sum(r["diverged"] for r in mine),
                "cls_loss_step0": round(statistics.mean(loss0), 4) if loss0 else None,
                "paper_AP": s.paper_ap,
            }
        )
    return rows


def plot(rows: list[dict], fig4: dict | None, out: Path) -> None:
    groups = list(dict.fromkeys(r["group"] for r in rows))
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.8))
    for ax, group in zip(axes, groups, strict=True):
        mine = [r for r in rows if r["group"] == group and r["AP_mean"] is not None]
        pos = range(len(mine))
        ax.bar(
            pos,
            [r["AP_mean"] for r in mine],
            yerr=[r["AP_std"] for r in mine],
            color="tab:blue",
            label="ours (AP)",
        )
        paper = [
            (i, r["paper_AP"] / 100) for i, r in zip(pos, mine, strict=True) if r["paper_AP"] is not None
        ]
        if paper:
            ax.scatter(*zip(*paper, strict=True), color="tab:red", zorder=3, label="paper (AP / 100)")
        ax.set_xticks(list(pos), [r["setting"].replace(" ", "\n", 1) for r in mine], fontsize=7)
        ax.set_ylabel("COCO AP[.5:.95]")
        ax.set_title(group)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "ablations.png", dpi=90)
    if fig4:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        for ax, kind in zip(axes, ("positive", "negative"), strict=True):
            for key, values in fig4.items():
                if key.endswith(kind):
                    ax.plot(fig4["fraction"], values, label=key.split()[0])
            ax.set_xlabel(f"fraction of {kind} samples")
            ax.set_ylabel("cumulative normalised loss")
            ax.set_title(f"Figure 4: {kind} anchors")
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "figure4.png", dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=250, help="training steps per run (batch 16)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="runs at a time, one thread each")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "results")
    args = parser.parse_args()
    matplotlib.use("Agg")  # files only; importing this module (notebook 10 does) leaves plots alone
    args.out.mkdir(parents=True, exist_ok=True)
    paths = ensure_synthetic_dataset()
    train_set = CocoDetection(paths["train"], paths["root"] / "train")
    val_set = CocoDetection(paths["val"], paths["root"] / "val")

    runs_file = args.out / "runs.json"
    runs = json.loads(runs_file.read_text()) if runs_file.exists() else []
    runs = [r for r in runs if r["steps"] == args.steps]
    begun = time.perf_counter()
    todo = list(dict.fromkeys((same_run(s), seed) for s in SETTINGS for seed in range(args.seeds)))
    todo = [(key, seed) for key, seed in todo if not any(r["key"] == key and r["seed"] == seed for r in runs)]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = {}
        for key, seed in todo:
            setting = next(s for s in SETTINGS if same_run(s) == key)
            futures[pool.submit(run_one, setting, seed, args.steps, train_set, val_set)] = setting
        for future in as_completed(futures):
            runs.append(future.result())
            name, r = futures[future].name, runs[-1]
            print(f"{name:32} seed {r['seed']}: AP {r['AP']:.4f}  ({r['seconds']:.0f} s)", flush=True)
            runs_file.write_text(json.dumps(runs, indent=1))

    rows = summarise(runs)
    fig4 = None
    if SHIPPED.exists():
        model, _ = load_model(SHIPPED)
        fig4 = figure4(model, val_set)
        (args.out / "figure4.json").write_text(json.dumps(fig4))
    revision = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    meta = {
        "command": "python benchmarks/ablations.py "
        f"--steps {args.steps} --seeds {args.seeds} --workers {args.workers}",
        "git_revision": revision.strip(),
        "this_invocation_seconds": round(time.perf_counter() - begun),
        "total_run_seconds": round(sum(r["seconds"] for r in runs)),
    }
    (args.out / "summary.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    with open(args.out / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, fig4, args.out)
    for r in rows:
        ap = "n/a" if r["AP_mean"] is None else f"{r['AP_mean']:.3f} ± {r['AP_std']:.3f}"
        paper = "" if r["paper_AP"] is None else f"(paper {r['paper_AP']})"
        print(f"{r['group']:18} {r['setting']:30} AP {ap} {paper} diverged {r['diverged']}")
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
