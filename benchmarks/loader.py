"""The data pipeline beside the training step: images per second that ``--workers`` processes
decode and batch (``retina_edu.train.batch_loader``), and images per second the training step
consumes, in one run. The loader keeps up when its rate is above the step's; the issue's target
on a GPU is twice the step's rate with 8 workers.

    python benchmarks/loader.py                                   # CPU preset, synthetic split
    python benchmarks/loader.py --workers 0 2 8 --device cuda --amp bf16 --preset paper \\
        --ann-file coco/annotations/instances_train2017.json --image-dir coco/train2017

The loader is timed alone (no model running beside it) after its first batch, so the workers'
start-up is not counted; the step is timed on a batch already on the device (forward under
``--amp``'s autocast, loss, backward, optimizer step), median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from retina_edu import RetinaNet, RetinaNetConfig, cli
from retina_edu.data import CocoDetection, load_split
from retina_edu.device import prepare_device
from retina_edu.train import (
    AMP_DTYPES,
    TrainConfig,
    batch_loader,
    make_optimizer,
    make_scaler,
    to_device,
    train_step,
)


def build_parser() -> argparse.ArgumentParser:
    """The command line; bad values get one line and exit status 2 (argparse)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=["tiny", "cpu", "paper"], default="cpu")
    parser.add_argument(
        "--ann-file", type=cli.existing_file, help="COCO json (default: the synthetic train split)"
    )
    parser.add_argument(
        "--image-dir", type=cli.existing_folder, help="its images (default: the json's folder)"
    )
    parser.add_argument("--workers", type=cli.integer_at_least(0), nargs="+", default=[0, 2])
    parser.add_argument("--batch-size", type=cli.integer_at_least(1), default=16)
    parser.add_argument("--steps", type=cli.integer_at_least(2), default=10, help="batches timed per loader")
    parser.add_argument("--repeats", type=cli.integer_at_least(1), default=5, help="training steps timed")
    cli.add_device_argument(parser)
    parser.add_argument("--amp", choices=tuple(AMP_DTYPES), default="none")
    return parser


def loader_images_per_second(dataset: CocoDetection, cfg: TrainConfig, workers: int, pin: bool) -> float:
    """Images per second of ``batch_loader`` with ``workers`` processes, after its first batch."""
    loader = iter(batch_loader(dataset, cfg, workers=workers, pin_memory=pin))
    next(loader)  # the workers start and fill their queues
    start = time.perf_counter()
    images = sum(len(batch[0]) for batch in loader)  # steps 1 .. cfg.steps - 1
    return images / (time.perf_counter() - start)


def step_images_per_second(dataset: CocoDetection, cfg: TrainConfig, preset: str, device: str) -> float:
    """Images per second of the training step of ``preset`` on ``device`` (median of ``cfg.steps``
    steps after 2 warm-ups, on one batch already there)."""
    config = getattr(RetinaNetConfig, preset)(num_classes=dataset.num_classes)
    model = RetinaNet(config).to(device).train()
    optimizer = make_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    scaler = make_scaler(torch.device(device), cfg.amp)
    images, targets = to_device(next(iter(batch_loader(dataset, cfg))), torch.device(device))
    times = []
    for step in range(2 + cfg.steps):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        train_step(model, optimizer, scheduler, images, targets, cfg, step, scaler)  # .item() syncs
        times.append(time.perf_counter() - start)
    return len(images) / statistics.median(times[2:])


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.ann_file is None:
        dataset = load_split("train")
    else:
        dataset = CocoDetection(args.ann_file, args.image_dir or args.ann_file.parent)
    if len(dataset) < args.batch_size:
        cli.fail(parser, f"{len(dataset)} images in the data set, fewer than one batch of {args.batch_size}")
    prepare_device(args.device)
    print(f"{args.preset} preset, batch {args.batch_size}, {len(dataset)} images, {args.device}, {args.amp}")
    step_cfg = TrainConfig(steps=args.repeats, batch_size=args.batch_size, warmup_steps=0, amp=args.amp)
    step = step_images_per_second(dataset, step_cfg, args.preset, args.device)
    print(f"{'training step':>18}: {step:8.1f} images/s")
    cfg = dataclasses.replace(step_cfg, steps=args.steps)
    for workers in args.workers:
        rate = loader_images_per_second(dataset, cfg, workers, pin=args.device.startswith("cuda"))
        print(f"{f'loader, {workers} workers':>18}: {rate:8.1f} images/s  ({rate / step:.2f}x the step's)")


if __name__ == "__main__":
    main()
