"""Training RetinaNet (§4.1 "Optimization"), on a laptop CPU or, unchanged, on GPUs.

Reproducible by construction: the images of step s come from a permutation seeded by
(seed, epoch) and their flips from a generator seeded by (seed, s), so a run resumed from a
checkpoint sees exactly the batches the uninterrupted run would have seen, and ends with the
same weights. Under ``torchrun`` every process takes its share of each batch
(DistributedDataParallel), nothing else changes.

    python -m retina_edu.train --preset cpu --steps 1200 --out runs/cpu
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from retina_edu.checkpoint import load_checkpoint, save_checkpoint
from retina_edu.config import RetinaNetConfig
from retina_edu.data import CocoDetection, RandomHorizontalFlip, collate, ensure_synthetic_dataset
from retina_edu.model import RetinaNet


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation settings. The paper: SGD, lr 0.01 for 16 images, momentum 0.9, weight
    decay 1e-4, 90k steps with lr ÷10 at 60k and 80k; the CPU preset trains with AdamW."""

    steps: int = 1000
    batch_size: int = 16
    optimizer: str = "adamw"  # "adamw" | "sgd"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9  # SGD only
    warmup_steps: int = 100  # linear warm-up from lr / 1000
    schedule: str = "cosine"  # "cosine" | "step" (÷10 at 2/3 and 8/9 of the steps) | "constant"
    grad_clip: float | None = 10.0  # max global gradient norm; None: no clipping
    hflip_prob: float = 0.5
    seed: int = 0
    checkpoint_every: int = 0  # steps; 0: only at the end

    def __post_init__(self) -> None:
        if self.optimizer not in ("adamw", "sgd"):
            raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {self.optimizer!r}")
        if self.schedule not in ("cosine", "step", "constant"):
            raise ValueError(f"schedule must be 'cosine', 'step' or 'constant', got {self.schedule!r}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be >= 1")


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of the base learning rate at ``step``: warm-up, then the schedule."""
    if step < cfg.warmup_steps:
        return 1e-3 + (1 - 1e-3) * step / cfg.warmup_steps
    if cfg.schedule == "cosine":
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * progress))
    if cfg.schedule == "step":
        return 0.1 ** sum(step >= m for m in (cfg.steps * 2 // 3, cfg.steps * 8 // 9))
    return 1.0


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW or SGD; no weight decay on biases and norm parameters."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def batch_indices(step: int, num_images: int, cfg: TrainConfig) -> list[int]:
    """The data set indices of step ``step``: consecutive slices of a per-epoch permutation.

    Epochs are ``num_images // batch_size`` steps long (the last partial batch is dropped).
    """
    steps_per_epoch = max(1, num_images // cfg.batch_size)
    epoch, position = divmod(step, steps_per_epoch)
    order = torch.randperm(num_images, generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch))
    return order[position * cfg.batch_size : (position + 1) * cfg.batch_size].tolist()


@dataclass
class TrainResult:
    """What a run did: the model, its per-step history and where the last checkpoint went."""

    model: RetinaNet
    history: list[dict[str, float]]
    checkpoint: Path | None
    seconds: float


def train(
    model: RetinaNet,
    dataset: CocoDetection,
    cfg: TrainConfig,
    out_dir: str | Path | None = None,
    resume: str | Path | None = None,
    time_limit_s: float | None = None,
    progress: bool = True,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train ``model`` on ``dataset`` for ``cfg.steps`` steps (fewer if ``time_limit_s`` runs out).

    ``out_dir``: checkpoints go to ``out_dir/last.pt`` every ``cfg.checkpoint_every`` steps
    and at the end. ``resume``: a checkpoint to continue from, exactly. ``on_step(step, record)``
    is called after every step (the notebooks draw live curves with it).
    """
    device = next(model.parameters()).device
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    wrapped = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optimizer = make_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
    history: list[dict[str, float]] = []
    start = 0
    if resume is not None:
        state = load_checkpoint(resume, map_location=device)
        if state.get("train_config") != dataclasses.asdict(cfg):
            raise ValueError(f"{resume} was made with other training settings: {state.get('train_config')}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, start = state["history"], state["step"]

    out = Path(out_dir) if out_dir is not None else None
    checkpoint = None
    model.train()
    began = time.perf_counter()
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, disable=not progress or rank != 0)
    for step in bar:
        indices = batch_indices(step, len(dataset), cfg)[rank::world]
        flip = RandomHorizontalFlip(
            cfg.hflip_prob, generator=torch.Generator().manual_seed(cfg.seed * 100_003 + step)
        )
        images, targets = collate([flip(*dataset[i]) for i in indices])
        images = [im.to(device) for im in images]
        targets = [{k: v.to(device) if torch.is_tensor(v) else v for k, v in t.items()} for t in targets]

        losses = wrapped(images, targets)
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {step}: lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        record = {"step": step, "loss": loss.item(), "lr": optimizer.param_groups[0]["lr"]}
        record.update({k: v.item() for k, v in losses.items()})
        optimizer.step()
        scheduler.step()
        history.append(record)
        bar.set_postfix(loss=f"{record['loss']:.3f}")
        if on_step is not None:
            on_step(step, record)

        done = step + 1
        out_of_time = time_limit_s is not None and time.perf_counter() - began >= time_limit_s
        due = cfg.checkpoint_every and done % cfg.checkpoint_every == 0
        if out is not None and rank == 0 and (due or done == cfg.steps or out_of_time):
            checkpoint = save_checkpoint(
                out / "last.pt",
                model,
                optimizer=optimizer.state_dict(),
                scheduler=scheduler.state_dict(),
                step=done,
                history=history,
                train_config=dataclasses.asdict(cfg),
                class_names=list(getattr(dataset, "class_names", [])),
                label_to_category_id=list(getattr(dataset, "label_to_category_id", [])),
            )
        if out_of_time:
            break
    bar.close()
    model.eval()
    return TrainResult(model, history, checkpoint, time.perf_counter() - began)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m retina_edu.train",
        description="Train RetinaNet on a COCO-format data set (by default the generated synthetic one).",
    )
    parser.add_argument("--preset", choices=["cpu", "paper", "torchvision"], default="cpu")
    parser.add_argument("--ann-file", type=Path, help="COCO json (default: the synthetic train split)")
    parser.add_argument("--image-dir", type=Path, help="folder of the images the json names")
    parser.add_argument("--out", type=Path, default=Path("runs/cpu"), help="where last.pt is written")
    parser.add_argument("--resume", type=Path, help="continue exactly from this checkpoint")
    parser.add_argument("--time-limit", type=float, help="stop after this many seconds of training")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    defaults = TrainConfig()
    for field in dataclasses.fields(TrainConfig):
        value = getattr(defaults, field.name)
        kind = float if field.name in ("grad_clip",) else type(value)
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=kind, default=value)
    return parser


def main(argv: list[str] | None = None) -> TrainResult:
    args = build_parser().parse_args(argv)
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    if "LOCAL_RANK" in os.environ:  # started by torchrun
        dist.init_process_group("nccl" if args.device == "cuda" else "gloo")
        if args.device == "cuda":
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    if args.ann_file is None:
        paths = ensure_synthetic_dataset()
        args.ann_file, args.image_dir = paths["train"], paths["root"] / "train"
    dataset = CocoDetection(args.ann_file, args.image_dir or args.ann_file.parent)
    torch.manual_seed(cfg.seed)
    config = getattr(RetinaNetConfig, args.preset)(num_classes=dataset.num_classes)
    model = RetinaNet(config).to(args.device)
    result = train(model, dataset, cfg, args.out, args.resume, args.time_limit)
    if dist.is_initialized():
        dist.destroy_process_group()
    if result.checkpoint is not None:  # the process that saved (rank 0 under torchrun)
        last = result.history[-1]
        print(f"{len(result.history)} steps in {result.seconds:.0f} s, last loss {last['loss']:.4f}")
        print(f"saved {result.checkpoint}")
    return result


if __name__ == "__main__":
    main()
