"""COCO AP after a fixed training time: retina_edu's CPU preset against torchvision's RetinaNet
assembled to the same architecture (small trunk, 64-channel FPN, GroupNorm heads), both trained
by the same loop (AdamW, warm-up, cosine), on the same synthetic data, for the same wall time.

    python benchmarks/train_ap.py                   # 240 s each, then pycocotools on the val split

Run it on an otherwise idle machine: the figure is wall-clock time.
"""

from __future__ import annotations

import argparse

import torch

from retina_edu import RetinaNet, RetinaNetConfig
from retina_edu.compat import torchvision_retinanet
from retina_edu.data import load_split
from retina_edu.evaluate import evaluate_model
from retina_edu.train import TrainConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=240.0, help="training time for each model")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    train_set, val_set = load_split("train"), load_split("val")
    cfg = TrainConfig(seed=args.seed)
    # torchvision's smooth L1 has β = 1; give both models that loss so only the implementation differs
    config = RetinaNetConfig.cpu(num_classes=train_set.num_classes).replace(smooth_l1_beta=1.0)

    results = {}
    for name, build in [("retina_edu", RetinaNet), ("torchvision", torchvision_retinanet)]:
        torch.manual_seed(args.seed)
        model = build(config)
        run = train(model, train_set, cfg, time_limit_s=args.seconds, progress=False)
        evaluation = evaluate_model(model, val_set, progress=False, verbose=False)
        results[name] = (len(run.history), run.seconds, evaluation.stats)
        print(
            f"{name}: {len(run.history)} steps in {run.seconds:.0f} s, AP {evaluation.stats['AP']:.3f}",
            flush=True,
        )

    print(f"\n{'':13}{'steps':>7}{'seconds':>9}{'AP':>7}{'AP50':>7}{'AP75':>7}{'APs':>7}{'APm':>7}")
    for name, (steps, seconds, s) in results.items():
        print(
            f"{name:13}{steps:>7}{seconds:>9.0f}{s['AP']:>7.3f}{s['AP50']:>7.3f}{s['AP75']:>7.3f}"
            f"{s['APs']:>7.3f}{s['APm']:>7.3f}"
        )


if __name__ == "__main__":
    main()
