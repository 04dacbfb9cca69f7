"""Training RetinaNet (§4.1 "Optimization"), on a laptop CPU or, unchanged, on GPUs.

Reproducible by construction: the images of step s come from a permutation seeded by
(seed, epoch) and their flips from a generator seeded by (seed, s), so a run resumed from a
checkpoint sees exactly the batches the uninterrupted run would have seen, and ends with the
same weights. Under ``torchrun`` every process takes its share of each batch
(DistributedDataParallel), nothing else changes.

A ``DataLoader`` decodes the images: item ``s`` of ``StepBatches`` is step s's whole batch, so
``--workers N`` processes prepare the next steps while the model trains, and the batches do not
depend on N. ``--amp bf16`` or ``fp16`` runs the forward under ``torch.autocast`` (the loss is
reduced in float32 all the same; fp16 scales the loss with a ``GradScaler``).

    python -m retina_edu.train --preset cpu --steps 1200 --out runs/cpu
    python -m retina_edu.train --preset paper --ann-file ... --workers 8 --amp bf16   # on a GPU
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
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
from retina_edu.device import prepare_device
from retina_edu.model import RetinaNet

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "step", "constant")
# Mixed precision: the dtype autocast runs the network in (None: float32 throughout).
AMP_DTYPES: dict[str, torch.dtype | None] = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# TrainConfig fields added after checkpoints were first written, with the value older runs had.
ADDED_FIELDS = {"amp": "none"}


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
    amp: str = "none"  # "none" (float32) | "bf16" | "fp16" (with a GradScaler): autocast's dtype

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.amp not in AMP_DTYPES:
            raise ValueError(f"amp must be one of {tuple(AMP_DTYPES)}, got {self.amp!r}")
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
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[list[dict[str, float]], int]:
    """Load the checkpoint at ``path`` into the model, optimizer, scheduler and fp16 loss
    ``scaler``, after checking it was made with the same model config and ``cfg``. Returns its
    history and the next step."""
    state = load_checkpoint(path, map_location=next(model.parameters()).device)
    check_train_config(path, state, cfg)
    check_config(path, state, model.config)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and "scaler" in state:
        scaler.load_state_dict(state["scaler"])
    return state["history"], state["step"]


Batch = tuple[list[Tensor], list[dict]]  # images [(3, H, W) float in [0, 1]], targets [{boxes, labels, ...}]


def step_batch(dataset: CocoDetection, step: int, cfg: TrainConfig, rank: int = 0, world: int = 1) -> Batch:
    """This process's share of step ``step``'s batch, flipped, on the CPU: the indices of
    ``batch_indices``, every ``world``-th from ``rank``; the flips seeded by (seed, step).
    Only (seed, step) decide it, so any process may build it, in any order."""
    indices = batch_indices(step, len(dataset), cfg)[rank::world]
    flip = RandomHorizontalFlip(
        cfg.hflip_prob, generator=torch.Generator().manual_seed(cfg.seed * 100_003 + step)
    )
    return collate([flip(*dataset[i]) for i in indices])


def to_device(batch: Batch, device: torch.device) -> Batch:
    """``batch`` on ``device``; from pinned memory the copies overlap the computation on CUDA."""
    images, targets = batch
    images = [im.to(device, non_blocking=True) for im in images]
    targets = [
        {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in t.items()}
        for t in targets
    ]
    return images, targets


def load_batch(
    dataset: CocoDetection, step: int, cfg: TrainConfig, rank: int, world: int, device: torch.device
) -> Batch:
    """``step_batch`` on ``device``, in this process (``StepBatches`` does it in workers)."""
    return to_device(step_batch(dataset, step, cfg, rank, world), device)


class StepBatches(Dataset):
    """A map-style data set whose item ``step`` is this process's share of that step's batch
    (``step_batch``). A ``DataLoader`` with ``batch_size=None`` over the steps still to run
    gives the same batches with any number of workers, and a resumed run the same batches as
    an uninterrupted one."""

    def __init__(self, dataset: CocoDetection, cfg: TrainConfig, rank: int = 0, world: int = 1) -> None:
        self.dataset, self.cfg, self.rank, self.world = dataset, cfg, rank, world

    def __len__(self) -> int:
        return self.cfg.steps

    def __getitem__(self, step: int) -> Batch:
        return step_batch(self.dataset, step, self.cfg, self.rank, self.world)


def batch_loader(
    dataset: CocoDetection,
    cfg: TrainConfig,
    start: int = 0,
    workers: int = 0,
    rank: int = 0,
    world: int = 1,
    pin_memory: bool = False,
) -> DataLoader:
    """The batches of steps ``start .. cfg.steps - 1`` in order, decoded by ``workers`` processes
    (0: in this one), in pinned memory if ``pin_memory`` (for CUDA). Each worker prepares whole
    steps, up to two ahead of the model."""
    return DataLoader(
        StepBatches(dataset, cfg, rank, world),
        batch_size=None,  # an item is already a batch
        sampler=range(start, cfg.steps),
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
    )


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` in ``amp``'s dtype on ``device``; for ``"none"`` a context that does
    nothing (float32 exactly as without it)."""
    dtype = AMP_DTYPES[amp]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@contextlib.contextmanager
def bf16_cpu_workaround(device: torch.device, amp: str) -> Iterator[None]:
    """Around a whole training step (forward and backward). In bf16 on the CPU, oneDNN's weight
    gradient of a stride-2 convolution whose input is one pixel wide (P7 of a 64-px image, or of
    a tall narrow one) reads memory it never wrote and comes back NaN at random (torch 2.14.1;
    ``tests/test_amp.py`` has the four-line case). Such a step runs on PyTorch's own
    convolution kernels instead; every other precision and device is left as it is."""
    if device.type != "cpu" or amp != "bf16":
        yield
        return
    enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = enabled


def make_scaler(device: torch.device, amp: str) -> torch.amp.GradScaler | None:
    """fp16 needs its loss scaled so that small gradients do not flush to zero; bf16 (float32's
    exponent range) and float32 do not: ``None``."""
    return torch.amp.GradScaler(device.type) if amp == "fp16" else None


def train_step(
    wrapped: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    images: list[Tensor],
    targets: list[dict],
    cfg: TrainConfig,
    step: int,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, float]:
    """One optimisation step of ``wrapped`` (the model, or its DistributedDataParallel wrapper).
    The forward runs under autocast in ``cfg.amp``'s dtype; with ``scaler`` (fp16) the loss is
    scaled for the backward and the gradients unscaled before clipping, and a step whose
    gradients overflowed is skipped. Raises ``FloatingPointError`` on a non-finite loss, before
    any weight changes. Returns the step's record: step, loss, lr and each loss term."""
    device = next(wrapped.parameters()).device
    with bf16_cpu_workaround(device, cfg.amp):
        with autocast(device, cfg.amp):
            losses = wrapped(images, targets)  # float32 scalars whatever the autocast dtype
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {step}: lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        (loss if scaler is None else scaler.scale(loss)).backward()
    if scaler is not None:
        scaler.unscale_(optimizer)  # the true gradients, for clipping
    if cfg.grad_clip is not None:
        nn.utils.clip_grad_norm_(wrapped.parameters(), cfg.grad_clip)
    record = {"step": step, "loss": loss.item(), "lr": optimizer.param_groups[0]["lr"]}
    record.update({k: v.item() for k, v in losses.items()})
    if scaler is None:
        optimizer.step()
    else:
        scaler.step(optimizer)  # skipped if a gradient is inf or NaN
        scaler.update()
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
    scaler: torch.amp.GradScaler | None = None,
) -> Path:
    """A checkpoint from which ``train(resume=path)`` continues exactly after ``len(history)``
    steps; with fp16, the loss scaler's state too."""
    extra = {} if scaler is None else {"scaler": scaler.state_dict()}
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
        **extra,
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
    workers: int = 0,
) -> TrainResult:
    """Train ``model`` on ``dataset`` for ``cfg.steps`` steps (fewer if ``time_limit_s`` runs out).

    ``out_dir``: checkpoints go to ``out_dir/last.pt`` every ``cfg.checkpoint_every`` steps
    and at the end. ``resume``: a checkpoint to continue from, exactly; it must have been made
    with the same model config and ``cfg``. ``on_step(step, record)`` is called after every step
    (the notebooks draw live curves with it). ``workers``: processes that decode the batches
    ahead of the model (0: this process); the batches, and so the run, do not depend on it.
    A ``CocoDetection``'s image files are checked (``check_files``) before the first step.
    """
    if isinstance(dataset, CocoDetection):
        dataset.check_files()
    device = next(model.parameters()).device
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    wrapped = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optimizer = make_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
    scaler = make_scaler(device, cfg.amp)
    history, start = (
        resume_from(resume, model, optimizer, scheduler, cfg, scaler) if resume is not None else ([], 0)
    )
    loader = batch_loader(dataset, cfg, start, workers, rank, world, pin_memory=device.type == "cuda")

    checkpoint = None
    model.train()
    began = time.perf_counter()
    bar = tqdm(total=cfg.steps, initial=start, disable=not progress or rank != 0)
    for step, batch in enumerate(loader, start):
        images, targets = to_device(batch, device)
        history.append(train_step(wrapped, optimizer, scheduler, images, targets, cfg, step, scaler))
        bar.update()
        bar.set_postfix(loss=f"{history[-1]['loss']:.3f}")
        if on_step is not None:
            on_step(step, history[-1])
        done = step + 1
        out_of_time = time_limit_s is not None and time.perf_counter() - began >= time_limit_s
        due = cfg.checkpoint_every and done % cfg.checkpoint_every == 0
        if out_dir is not None and rank == 0 and (due or done == cfg.steps or out_of_time):
            checkpoint = save_training_state(
                Path(out_dir) / "last.pt", model, optimizer, scheduler, history, cfg, dataset, scaler
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
    if saved:  # a checkpoint from before a field existed was made with its old behaviour
        saved = ADDED_FIELDS | saved
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
    "amp": (str, "mixed precision: none (float32), bf16 or fp16 (with loss scaling)"),
}
CHOICES = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "amp": tuple(AMP_DTYPES)}


def build_parser() -> argparse.ArgumentParser:
    """The command line; every argument is checked by argparse before any work starts."""
    parser = argparse.ArgumentParser(
        prog="python -m retina_edu.train",
        description="Train RetinaNet on a COCO-format data set (by default the generated synthetic one).",
    )
    parser.add_argument(
        "--preset",
        choices=["cpu", "paper", "torchvision", "tiny"],
        default="cpu",
        help="the model (tiny: the CPU preset for 64-px images, for tests; default: cpu)",
    )
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
    cli.add_device_argument(parser)
    parser.add_argument(
        "--workers",
        type=cli.integer_at_least(0),
        default=0,
        help="processes decoding the batches ahead of the model (0: the training process)",
    )
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
    world = int(os.environ.get("WORLD_SIZE", "1")) if "LOCAL_RANK" in os.environ else 1  # torchrun's
    if cfg.batch_size % world:  # DDP averages the processes' gradients: their shares must be equal
        cli.fail(
            parser, f"--batch-size {cfg.batch_size}: not a multiple of the {world} processes torchrun started"
        )
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
    prepare_device(args.device)
    torch.manual_seed(cfg.seed)
    model = RetinaNet(config).to(args.device)
    try:
        result = train(model, dataset, cfg, args.out, args.resume, args.time_limit, workers=args.workers)
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
