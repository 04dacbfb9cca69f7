"""retina_edu against torchvision's RetinaNet: the same architecture, weights and inputs, timed
side by side in one run.

    python benchmarks/speed.py                      # the CPU preset, 16 synthetic 128-px images
    python benchmarks/speed.py --preset paper --batch-size 2 --image-size 512

A training step is forward + loss + backward; an inference pass is forward + postprocessing in
eval mode. Each is run alternately for both models and the median is reported.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from retina_edu import RetinaNet, RetinaNetConfig
from retina_edu.checkpoint import load_model
from retina_edu.compat import to_torchvision_state_dict, torchvision_retinanet
from retina_edu.data import CocoDetection, collate, ensure_synthetic_dataset

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "checkpoints" / "retinanet_cpu.pt"


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=["cpu", "paper"], default="cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--image-size", type=int, default=128, help="images are resized to this (paper preset)"
    )
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    torch.manual_seed(0)
    paths = ensure_synthetic_dataset()
    dataset = CocoDetection(paths["train"], paths["root"] / "train")
    images, targets = collate([dataset[i] for i in range(args.batch_size)])
    if args.preset == "cpu" and SHIPPED.exists():  # trained weights: realistic postprocessing work
        trained, _ = load_model(SHIPPED)
        config = trained.config.replace(smooth_l1_beta=1.0)  # torchvision's smooth L1 has β = 1
        ours = RetinaNet(config)
        ours.load_state_dict(trained.state_dict())
        weights = "the shipped trained checkpoint"
    else:
        base = RetinaNetConfig.cpu() if args.preset == "cpu" else RetinaNetConfig.paper()
        config = base.replace(
            num_classes=dataset.num_classes,
            smooth_l1_beta=1.0,
            min_size=args.image_size,
            max_size=args.image_size,
        )
        ours = RetinaNet(config)
        weights = "random initial weights"
    theirs = torchvision_retinanet(config)
    theirs.load_state_dict(to_torchvision_state_dict(ours.state_dict(), config.head_norm))

    def train_step(model):
        def step():
            model.zero_grad(set_to_none=True)
            sum(model(images, targets).values()).backward()

        return step

    def inference(model):
        def run():
            with torch.inference_mode():
                model(images)

        return run

    print(
        f"{args.preset} preset, {args.batch_size} images of {tuple(images[0].shape)}, {weights}, "
        f"{torch.get_num_threads()} threads, median of {args.repeats}"
    )
    ours.train(), theirs.train()
    with torch.no_grad():
        la, lb = ours(images, targets), theirs(images, targets)
    print(
        f"same losses: classification {la['classification']:.5f} vs {lb['classification']:.5f}, "
        f"box {la['box_regression']:.5f} vs {lb['bbox_regression']:.5f}"
    )
    rows = []
    for name, make, mode in [("training step", train_step, "train"), ("inference", inference, "eval")]:
        getattr(ours, mode)(), getattr(theirs, mode)()
        for _ in range(3):  # warm-up
            make(ours)(), make(theirs)()
        t_ours, t_theirs = [], []
        for _ in range(args.repeats):  # alternate, so that drifts in machine load hit both
            t_ours.append(seconds(make(ours)))
            t_theirs.append(seconds(make(theirs)))
        a, b = statistics.median(t_ours), statistics.median(t_theirs)
        rows.append((name, a, b))
    print(f"{'':16}{'retina_edu':>12}{'torchvision':>13}{'speed-up':>10}")
    for name, a, b in rows:
        print(f"{name:16}{a * 1000:>10.1f}ms{b * 1000:>11.1f}ms{b / a:>9.2f}x")


if __name__ == "__main__":
    main()
