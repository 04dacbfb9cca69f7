"""Checks for the exercises of ``07_training``: the RetinaNet loss of a batch, epochs of the CPU
preset, the paper's learning-rate schedule, one training step.

Each check returns a ``Verdict`` (see ``retina_edu.exercises``): the reference is computed with the
package first, outside the guard, then the learner's answer on the same cases."""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from retina_edu.anchors import anchors_for_config
from retina_edu.config import RetinaNetConfig
from retina_edu.data.synthetic import TRAIN_IMAGES
from retina_edu.exercises import Verdict, judge, number_problem, tensor_problem, values_problem
from retina_edu.model import RetinaNet
from retina_edu.train import TrainConfig, lr_factor

# The paper's optimisation (§4.1): SGD, lr 0.01 for 16 images, ÷10 at 60k and 80k of 90k steps.
PAPER_TRAIN = TrainConfig(
    steps=90_000, batch_size=16, optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=1e-4,
    warmup_steps=0, schedule="step",
)  # fmt: skip
PAPER_STEPS_TO_CHECK = (0, 1_000, 59_999, 60_000, 70_000, 79_999, 80_000, 89_999)


def default_epochs() -> float:
    """Epochs that the default ``TrainConfig()`` makes over the synthetic training split."""
    cfg = TrainConfig()
    return cfg.steps / (TRAIN_IMAGES // cfg.batch_size)  # an epoch drops the last partial batch


def check_epochs(answer: float | None) -> Verdict:
    """Exercise 1: how many epochs the default CPU training run makes."""
    return judge(
        "epochs",
        answer,
        default_epochs,
        float,
        lambda got, expected: number_problem(got, expected, rel_tol=1e-3),
        "an epoch is len(train_set) // batch_size steps (batch_indices drops the last partial batch)",
    )


def check_paper_lr(fn: Callable | None) -> Verdict:
    """Exercise 2: ``fn(step)`` is the paper's learning rate at ``step``."""
    return judge(
        "paper_lr",
        fn,
        lambda: [PAPER_TRAIN.lr * lr_factor(step, PAPER_TRAIN) for step in PAPER_STEPS_TO_CHECK],
        lambda fn: [fn(step) for step in PAPER_STEPS_TO_CHECK],
        lambda got, expected: values_problem(
            got, expected, [f"step {step:,}" for step in PAPER_STEPS_TO_CHECK], rel_tol=1e-6
        ),
        "0.01 until step 60,000, then 0.001 until step 80,000, then 0.0001 (no warm-up)",
    )


TINY = RetinaNetConfig.tiny(num_classes=3)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread inside the block: a tiny model gains nothing from more, and on a busy
    machine several threads per process can make it a hundred times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _tiny_batch():
    gen = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 64, 64, generator=gen) for _ in range(2)]
    targets = [
        {"boxes": torch.tensor([[4.0, 6.0, 30.0, 40.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.tensor([[10.0, 10.0, 50.0, 30.0], [30.0, 35.0, 60.0, 62.0]]),
         "labels": torch.tensor([0, 2])},
    ]  # fmt: skip
    return images, targets


def reference_train_step(model, optimizer, images, targets, max_norm: float) -> float:
    """One step of §4.1's loop: the summed loss, backward, clip the global gradient norm, step."""
    losses = model(images, targets)
    loss = sum(losses.values())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return float(loss.item())


TRAIN_STEPS = 2  # two steps: gradients must not pile up from one step to the next


def _sgd(model: RetinaNet) -> torch.optim.Optimizer:
    # SGD, not Adam: Adam's step hardly depends on the gradient's scale, so clipping would not show.
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


def _run_steps(step: Callable, model: RetinaNet) -> tuple[list[float], list[Tensor]]:
    """``TRAIN_STEPS`` calls of ``step`` on ``model`` with SGD: the losses returned, the weights after."""
    optimizer = _sgd(model)
    images, targets = _tiny_batch()
    with one_thread():
        losses = [float(step(model, optimizer, images, targets, 0.5)) for _ in range(TRAIN_STEPS)]
    return losses, [p.detach() for p in model.parameters()]


def check_train_step(fn: Callable | None) -> Verdict:
    """Exercise 3: ``fn(model, optimizer, images, targets, max_norm) -> loss`` does one full step:
    two steps of ``fn`` and of ``reference_train_step`` on copies of a tiny model give the same
    losses and the same weights."""
    start: dict[str, RetinaNet] = {}

    def reference():
        with torch.random.fork_rng(devices=[]):  # a new model draws weights: keep the caller's RNG
            torch.manual_seed(0)
            model = RetinaNet(TINY).train()
        start["model"] = copy.deepcopy(model)  # the learner's steps start from the same weights
        return _run_steps(reference_train_step, model)

    def compare(result, expected):
        (losses, weights), (want_losses, want_weights) = result, expected
        for i, (got, want) in enumerate(zip(losses, want_losses, strict=True), start=1):
            if not math.isclose(got, want, rel_tol=1e-5):
                return f"step {i} returned loss {got:.6g}, expected {want:.6g}"
        names = [name for name, _ in start["model"].named_parameters()]
        for name, got, want in zip(names, weights, want_weights, strict=True):
            if not torch.allclose(got, want, rtol=1e-5, atol=1e-7):
                return (
                    f"after {TRAIN_STEPS} steps the weights differ from the reference's (largest difference "
                    f"{(got - want).abs().max().item():.3g} in {name})"
                )
        return None

    return judge(
        "train_step",
        fn,
        reference,
        lambda fn: _run_steps(fn, start["model"]),
        compare,
        "loss = sum(model(images, targets).values()); zero the gradients, backward, "
        "clip_grad_norm_(model.parameters(), max_norm), optimizer.step(); return loss.item()",
    )


# (α, γ) of the loss: the paper's focal loss, and α-balanced cross-entropy (Table 1a's best α)
LOSS_SETTINGS = [(0.25, 2.0), (0.75, 0.0)]


def _loss_case() -> tuple[Tensor, Tensor, Tensor, list[dict]]:
    """Random outputs of TINY's 64-pixel anchors for 3 images: one object, three objects (one so small
    that only the low-quality rule matches it), and no object at all."""
    anchors = anchors_for_config(TINY, (64, 64))  # (N, 4) xyxy
    gen = torch.Generator().manual_seed(0)
    class_logits = torch.randn(3, len(anchors), TINY.num_classes, generator=gen) * 2 - 3  # (B, N, K)
    box_deltas = torch.randn(3, len(anchors), 4, generator=gen) * 0.2  # (B, N, 4)
    targets = [
        {"boxes": torch.tensor([[4.0, 6.0, 30.0, 40.0]]), "labels": torch.tensor([1])},
        {
            "boxes": torch.tensor(
                [[10.0, 10.0, 50.0, 30.0], [30.0, 35.0, 60.0, 62.0], [40.0, 2.0, 45.0, 6.0]]
            ),
            "labels": torch.tensor([0, 2, 2]),
        },
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
    ]
    return class_logits, box_deltas, anchors, targets


def check_retinanet_loss_batch(retinanet_loss_batch: Callable | None) -> Verdict:
    """The core: ``retinanet_loss_batch(class_logits (B, N, K), box_deltas (B, N, 4), anchors (N, 4),
    targets, alpha, gamma) -> {"classification": (), "box_regression": ()}``, equal to
    ``RetinaNet.loss`` (matching, ignored anchors, smooth L1 with β = 0.1, ÷ foreground anchors)."""
    class_logits, box_deltas, anchors, targets = _loss_case()

    def reference():
        with torch.random.fork_rng():  # a new model draws weights: keep the caller's RNG
            models = [RetinaNet(TINY.replace(focal_alpha=a, focal_gamma=g)) for a, g in LOSS_SETTINGS]
        return [model.loss(class_logits, box_deltas, anchors, targets) for model in models]

    def attempt(fn):
        copies = [{k: v.clone() for k, v in t.items()} for t in targets]
        return [
            fn(class_logits.clone(), box_deltas.clone(), anchors.clone(), copies, a, g)
            for a, g in LOSS_SETTINGS
        ]

    def compare(results, expected):
        for (a, g), got, want in zip(LOSS_SETTINGS, results, expected, strict=True):
            for name, value in want.items():
                if not isinstance(got, dict) or name not in got:
                    return f"return a dict with the keys {sorted(want)}"
                problem = tensor_problem(
                    torch.as_tensor(got[name]), value, f"with alpha={a}, gamma={g}, {name}", rtol=1e-4
                )
                if problem is not None:
                    return problem
        return None

    return judge(
        "retinanet_loss_batch",
        retinanet_loss_batch,
        reference,
        attempt,
        compare,
        "per image: match_anchors(box_iou(boxes, anchors)); one-hot targets on foreground anchors, "
        "zeros on background, ignored anchors left out; focal loss summed; smooth L1 (beta 0.1) between "
        "the deltas and the encoded matched boxes on foreground anchors; both ÷ max(1, foreground "
        "anchors); mean over images",
    )
