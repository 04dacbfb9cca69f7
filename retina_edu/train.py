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
from torch import Tensor, nn
from tqdm.auto import tqdm

from retina_edu import cli
from retina_edu.checkpoint import (
    CheckpointError,
    check_config,
    check_labels,
    load_checkpoint,
    save_checkpoint,
)
from retina_edu.config import RetinaNetConfig
from retina_edu.data import CocoDetection, RandomHorizontalFlip, collate, ensure_synthetic_dataset
from retina_edu.data.coco import CocoFormatError, ImageFileError
from retina_edu.model import RetinaNet

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "step", "constant")


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
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch_size must be >= 1, got {self.steps} and {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            # 0 would zero every gradient and a negative norm reverses them; None turns clipping off
            raise ValueError(f"grad_clip must be > 0 or None (no clipping), got {self.grad_clip}")
        if self.weight_decay < 0 or not 0 <= self.momentum < 1 or not 0 <= self.hflip_prob <= 1:
            raise ValueError(
                f"need weight_decay >= 0, 0 <= momentum < 1 and 0 <= hflip_prob <= 1, got "
                f"{self.weight_decay}, {self.momentum} and {self.hflip_prob}"
            )
        if self.warmup_steps < 0 or self.checkpoint_every < 0:
            raise ValueError(
                f"warmup_steps and checkpoint_every must be >= 0, got {self.warmup_steps} and "
                f"{self.checkpoint_every}"
            )


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


def resume_from(
    path: str | Path,
    model: RetinaNet,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    cfg: TrainConfig,
) -> tuple[list[dict[str, float]], int]:
    """Load the checkpoint at ``path`` into the model, optimizer and scheduler, after checking it
    was made with the same model config and ``cfg``. Returns its history and the next step."""
    state = load_checkpoint(path, map_location=next(model.parameters()).device)
    check_train_config(path, state, cfg)
    check_config(path, state, model.config)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return state["history"], state["step"]


def load_batch(
    dataset: CocoDetection, step: int, cfg: TrainConfig, rank: int, world: int, device: torch.device
) -> tuple[list[Tensor], list[dict]]:
    """This process's share of step ``step``'s batch, flipped and on ``device``: the indices of
    ``batch_indices``, every ``world``-th from ``rank``; the flips seeded by (seed, step)."""
    indices = batch_indices(step, len(dataset), cfg)[rank::world]
    flip = RandomHorizontalFlip(
        cfg.hflip_prob, generator=torch.Generator().manual_seed(cfg.seed * 100_003 + step)
    )
    images, targets = collate([flip(*dataset[i]) for i in indices])
    images = [im.to(device) for im in images]
    targets = [{k: v.to(device) if torch.is_tensor(v) else v for k, v in t.items()} for t in targets]
    return images, targets


def train_step(
    wrapped: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    images: list[Tensor],
    targets: list[dict],
    cfg: TrainConfig,
    step: int,
) -> dict[str, float]:
    """One optimisation step of ``wrapped`` (the model, or its DistributedDataParallel wrapper).
    Raises ``FloatingPointError`` on a non-finite loss, before any weight changes. Returns the
    step's record: step, loss, lr and each loss term."""
    losses = wrapped(images, targets)
    loss = sum(losses.values())
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss is {loss.item()} at step {step}: lower the learning rate")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip is not None:
        nn.utils.clip_grad_norm_(wrapped.parameters(), cfg.grad_clip)
    record = {"step": step, "loss": loss.item(), "lr": optimizer.param_groups[0]["lr"]}
    record.update({k: v.item() for k, v in losses.items()})
    optimizer.step()
    scheduler.step()
    return record


def save_training_state(
    path: Path,
    model: RetinaNet,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    history: list[dict[str, float]],
    cfg: TrainConfig,
    dataset: CocoDetection,
) -> Path:
    """A checkpoint from which ``train(resume=path)`` continues exactly after ``len(history)`` steps."""
    return save_checkpoint(
        path,
        model,
        optimizer=optimizer.state_dict(),
        scheduler=scheduler.state_dict(),
        step=history[-1]["step"] + 1,
        history=history,
        train_config=dataclasses.asdict(cfg),
        class_names=list(getattr(dataset, "class_names", [])),
        label_to_category_id=list(getattr(dataset, "label_to_category_id", [])),
    )


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
    and at the end. ``resume``: a checkpoint to continue from, exactly; it must have been made
    with the same model config and ``cfg``. ``on_step(step, record)`` is called after every step
    (the notebooks draw live curves with it). A ``CocoDetection``'s image files are checked
    (``check_files``) before the first step.
    """
    if isinstance(dataset, CocoDetection):
        dataset.check_files()
    device = next(model.parameters()).device
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    wrapped = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optimizer = make_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
    history, start = resume_from(resume, model, optimizer, scheduler, cfg) if resume is not None else ([], 0)

    checkpoint = None
    model.train()
    began = time.perf_counter()
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, disable=not progress or rank != 0)
    for step in bar:
        images, targets = load_batch(dataset, step, cfg, rank, world, device)
        history.append(train_step(wrapped, optimizer, scheduler, images, targets, cfg, step))
        bar.set_postfix(loss=f"{history[-1]['loss']:.3f}")
        if on_step is not None:
            on_step(step, history[-1])
        done = step + 1
        out_of_time = time_limit_s is not None and time.perf_counter() - began >= time_limit_s
        due = cfg.checkpoint_every and done % cfg.checkpoint_every == 0
        if out_dir is not None and rank == 0 and (due or done == cfg.steps or out_of_time):
            checkpoint = save_training_state(
                Path(out_dir) / "last.pt", model, optimizer, scheduler, history, cfg, dataset
            )
        if out_of_time:
            break
    bar.close()
    model.eval()
    return TrainResult(model, history, checkpoint, time.perf_counter() - began)


def check_train_config(path: str | Path, state: dict, cfg: TrainConfig) -> None:
    """Raise ``CheckpointError`` naming the settings in which the checkpoint ``state`` (from
    ``path``) differs from ``cfg``: only a run with the same settings can be continued exactly."""
    saved, wanted = state.get("train_config") or {}, dataclasses.asdict(cfg)
    differ = [
        f"{k} {saved.get(k)!r} in the checkpoint, {wanted[k]!r} here"
        for k in wanted
        if saved.get(k) != wanted[k]
    ]
    if differ:
        raise CheckpointError(f"{path} was made with other training settings: {'; '.join(differ)}")


# The command line's check of each TrainConfig field (argparse ``type=``), and its help.
FIELD_ARGUMENTS: dict[str, tuple[Callable[[str], object], str]] = {
    "steps": (cli.integer_at_least(1), "optimisation steps"),
    "batch_size": (cli.integer_at_least(1), "images per step, over all processes"),
    "optimizer": (str, "adamw or sgd"),
    "lr": (cli.positive_number, "base learning rate"),
    "weight_decay": (cli.number_in(0, 1), "weight decay of the weights (not biases, norms)"),
    "momentum": (cli.number_in(0, 0.999), "SGD momentum"),
    "warmup_steps": (cli.integer_at_least(0), "linear warm-up steps from lr / 1000"),
    "schedule": (str, "cosine, step (÷10 at 2/3 and 8/9) or constant"),
    "grad_clip": (cli.positive_number_or_none, "max global gradient norm, or 'none'"),
    "hflip_prob": (cli.number_in(0, 1), "probability of a horizontal flip"),
    "seed": (cli.integer_at_least(0), "seed of the weights, batches and flips"),
    "checkpoint_every": (cli.integer_at_least(0), "save every this many steps (0: at the end)"),
}
CHOICES = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES}


def build_parser() -> argparse.ArgumentParser:
    """The command line; every argument is checked by argparse before any work starts."""
    parser = argparse.ArgumentParser(
        prog="python -m retina_edu.train",
        description="Train RetinaNet on a COCO-format data set (by default the generated synthetic one).",
    )
    parser.add_argument("--preset", choices=["cpu", "paper", "torchvision"], default="cpu")
    parser.add_argument(
        "--ann-file", type=cli.existing_file, help="COCO json (default: the synthetic train split)"
    )
    parser.add_argument(
        "--image-dir",
        type=cli.existing_folder,
        help="folder of the images the json names (default: its folder)",
    )
    parser.add_argument(
        "--out", type=cli.writable_folder, default="runs/cpu", help="where last.pt is written"
    )
    parser.add_argument("--resume", type=cli.existing_file, help="continue exactly from this checkpoint")
    parser.add_argument(
        "--time-limit", type=cli.positive_number, help="stop after this many seconds of training"
    )
    parser.add_argument("--device", type=cli.device, default="cuda" if torch.cuda.is_available() else "cpu")
    defaults = TrainConfig()
    for field in dataclasses.fields(TrainConfig):
        kind, help_text = FIELD_ARGUMENTS[field.name]
        default = getattr(defaults, field.name)
        parser.add_argument(
            f"--{field.name.replace('_', '-')}",
            type=kind,
            default=default,
            choices=CHOICES.get(field.name),
            help=f"{help_text} (default: {'none' if default is None else default})",
        )
    return parser


def main(argv: list[str] | None = None) -> TrainResult | None:
    """Command line: check the arguments, then the files they name, then train.

    Bad arguments and bad files end with one line on stderr and exit status 2 before any work;
    resuming a run that already did all its steps says so and returns ``None``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    state = None
    if args.resume is not None:
        try:
            state = load_checkpoint(args.resume)
            check_train_config(args.resume, state, cfg)
        except CheckpointError as error:
            cli.fail(parser, str(error))
    if args.ann_file is None:
        paths = ensure_synthetic_dataset()
        args.ann_file, args.image_dir = paths["train"], paths["root"] / "train"
    try:
        dataset = CocoDetection(args.ann_file, args.image_dir or args.ann_file.parent)
        dataset.check_files()
        config = getattr(RetinaNetConfig, args.preset)(num_classes=dataset.num_classes)
        if state is not None:
            check_config(args.resume, state, config)
            check_labels(args.resume, state, dataset.label_to_category_id, dataset.class_names, args.ann_file)
    except (CocoFormatError, CheckpointError, FileNotFoundError, ImageFileError) as error:
        cli.fail(parser, str(error))
    if state is not None and state["step"] >= cfg.steps:
        print(f"{args.resume} is already finished: it did all {cfg.steps} steps, nothing to do")
        return None
    del state  # train() reads the checkpoint again; do not hold two copies of its tensors
    if "LOCAL_RANK" in os.environ:  # started by torchrun
        dist.init_process_group("nccl" if args.device.startswith("cuda") else "gloo")
        if args.device.startswith("cuda"):
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    torch.manual_seed(cfg.seed)
    model = RetinaNet(config).to(args.device)
    try:
        result = train(model, dataset, cfg, args.out, args.resume, args.time_limit)
    except (CocoFormatError, ImageFileError) as error:  # an image that cannot be decoded
        cli.fail(parser, str(error))
    if dist.is_initialized():
        dist.destroy_process_group()
    if result.checkpoint is not None:  # the process that saved (rank 0 under torchrun)
        last = result.history[-1]
        print(f"{len(result.history)} steps in {result.seconds:.0f} s, last loss {last['loss']:.4f}")
        print(f"saved {result.checkpoint}")
    return result


if __name__ == "__main__":
    main()
