"""retina_edu against torchvision's RetinaNet: the same architecture, weights and inputs, timed
side by side in one run.

    python benchmarks/speed.py                      # the CPU preset, 16 synthetic 128-px images
    python benchmarks/speed.py --preset paper --batch-size 2 --image-size 512
    python benchmarks/speed.py --preset paper --batch-size 16 --image-size 800 --device cuda --amp bf16

A training step is forward + loss + backward; an inference pass is forward + postprocessing in
eval mode. Each is run alternately for both models and the median is reported.

The training step is also split in two: the network alone (trunk, FPN and subnets, forward and
backward on the same normalised batch: the same convolutions, which retina_edu runs with its
trunk and FPN channels-last) and everything else (image checks and transform, anchors,
matching, the loss and its backward). The split shows how far batching the matching and the
loss can carry the whole step: a line below the table gives the speed-up retina_edu would have
if everything but its network took no time at all. The last line counts the network's
floating-point operations and compares its rate with that of a large matrix product, roughly
the most the device can do.

``--amp bf16`` or ``fp16`` runs both models' forward under ``torch.autocast`` in that dtype
(torchvision in the same precision as retina_edu); the matrix product stays float32.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from retina_edu import RetinaNet, RetinaNetConfig, cli
from retina_edu.checkpoint import load_shipped_model
from retina_edu.compat import to_torchvision_state_dict, torchvision_retinanet
from retina_edu.data import collate, load_split
from retina_edu.device import prepare_device
from retina_edu.train import AMP_DTYPES, autocast, bf16_cpu_workaround, to_device

MATMUL_SIZE = 2048


def synchronize() -> None:
    """Wait for the GPU's queued work (CUDA runs asynchronously); nothing on the CPU."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def seconds(fn) -> float:
    synchronize()
    start = time.perf_counter()
    fn()
    synchronize()
    return time.perf_counter() - start


def matmul_gflops(device: str, repeats: int = 10) -> float:
    """The speed of one large float32 matrix product: about the most ``device`` can do."""
    a = torch.randn(MATMUL_SIZE, MATMUL_SIZE, device=device)
    b = torch.randn(MATMUL_SIZE, MATMUL_SIZE, device=device)
    a @ b  # warm-up
    best = min(seconds(lambda: a @ b) for _ in range(repeats))
    return 2 * MATMUL_SIZE**3 / best / 1e9


def medians(runs: dict[str, tuple], repeats: int) -> dict[str, tuple[float, float]]:
    """Median seconds of each ``name: (ours, theirs)`` pair of callables, all run in turn
    ``repeats`` times (after 3 warm-up rounds), so that drifts in machine load hit every one."""
    times = {name: ([], []) for name in runs}
    for round_ in range(3 + repeats):
        for name, pair in runs.items():
            for fn, out in zip(pair, times[name], strict=True):
                elapsed = seconds(fn)
                if round_ >= 3:
                    out.append(elapsed)
    return {name: (statistics.median(a), statistics.median(b)) for name, (a, b) in times.items()}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=["cpu", "paper"], default="cpu")
    parser.add_argument("--batch-size", type=cli.integer_at_least(1), default=16)
    parser.add_argument(
        "--image-size",
        type=cli.integer_at_least(32),
        default=128,
        help="images are resized to this (paper preset)",
    )
    parser.add_argument("--repeats", type=cli.integer_at_least(1), default=20)
    cli.add_device_argument(parser)
    parser.add_argument(
        "--amp", choices=tuple(AMP_DTYPES), default="none", help="autocast dtype of both models' forward"
    )
    return parser.parse_args(argv)


def build_models(preset: str, num_classes: int, image_size: int) -> tuple[RetinaNet, nn.Module, str]:
    """retina_edu's model and torchvision's with the same weights, and which weights they are.

    The CPU preset uses the shipped trained checkpoint (realistic postprocessing work), the paper
    preset random initial weights. Both use smooth L1 with β = 1, torchvision's."""
    if preset == "cpu":
        trained, _ = load_shipped_model()
        config = trained.config.replace(smooth_l1_beta=1.0)
        ours = RetinaNet(config)
        ours.load_state_dict(trained.state_dict())
        weights = "the shipped trained checkpoint"
    else:
        config = RetinaNetConfig.paper(num_classes).replace(
            smooth_l1_beta=1.0, min_size=image_size, max_size=image_size
        )
        ours = RetinaNet(config)
        weights = "random initial weights"
    theirs = torchvision_retinanet(config)
    theirs.load_state_dict(to_torchvision_state_dict(ours.state_dict(), config.head_norm))
    return ours, theirs, weights


def training_step(
    model: nn.Module, images: list[Tensor], targets: list[dict], amp: str = "none"
) -> Callable[[], None]:
    """Forward (under ``amp``'s autocast), loss and backward of ``model`` in train mode on one batch."""
    device = next(model.parameters()).device

    def step() -> None:
        model.zero_grad(set_to_none=True)
        with bf16_cpu_workaround(device, amp):
            with autocast(device, amp):
                loss = sum(model(images, targets).values())
            loss.backward()

    return step


def inference(model: nn.Module, images: list[Tensor], amp: str = "none") -> Callable[[], None]:
    """Forward and postprocessing of ``model`` in eval mode on one batch, under ``amp``'s autocast."""
    device = next(model.parameters()).device

    def run() -> None:
        with torch.inference_mode(), autocast(device, amp):
            model(images)

    return run


def network_steps(
    ours: RetinaNet, theirs: nn.Module, images: list[Tensor], amp: str = "none"
) -> tuple[Callable, Callable]:
    """Forward (under ``amp``'s autocast) and backward of each network alone (trunk, FPN,
    subnets) on the same normalised batch, torchvision's in the default channels-first layout,
    with the same dense output gradients, as a loss would give."""
    batch = ours.preprocess(images, None)[0]
    batch_theirs = batch.contiguous()
    device = batch.device

    def forward_ours() -> list[Tensor]:
        with autocast(device, amp):
            return list(ours.head(ours.fpn(ours.trunk(batch))))

    def forward_theirs() -> list[Tensor]:
        with autocast(device, amp):
            return list(theirs.head(list(theirs.backbone(batch_theirs).values())).values())

    outputs = {"ours": forward_ours, "theirs": forward_theirs}
    with torch.no_grad():
        output_grads = [torch.randn_like(o) for o in outputs["ours"]()]

    def step(model: nn.Module, side: str) -> Callable[[], None]:
        def run() -> None:
            model.zero_grad(set_to_none=True)
            with bf16_cpu_workaround(device, amp):
                torch.autograd.backward(outputs[side](), output_grads)

        return run

    return step(ours, "ours"), step(theirs, "theirs")


def report(rows: dict[str, tuple[float, float]]) -> None:
    """The table of medians, and what the step would be were everything but the network free."""
    (step_a, step_b), (net_a, net_b) = rows["training step"], rows["  network only"]
    rows["  everything else"] = step_a - net_a, step_b - net_b
    print(f"{'':20}{'retina_edu':>12}{'torchvision':>13}{'speed-up':>10}")
    for name in ["training step", "  network only", "  everything else", "inference"]:
        a, b = rows[name]
        print(f"{name:20}{a * 1000:>10.1f}ms{b * 1000:>11.1f}ms{b / a:>9.2f}x")
    print(
        f"the network is {net_a / step_a:.0%} of retina_edu's training step; were everything else "
        f"free, the step would be {step_b / net_a:.2f}x torchvision's"
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    prepare_device(args.device)
    torch.manual_seed(0)
    dataset = load_split("train")
    device = torch.device(args.device)
    images, targets = to_device(collate([dataset[i] for i in range(args.batch_size)]), device)
    ours, theirs, weights = build_models(args.preset, dataset.num_classes, args.image_size)
    ours.to(device), theirs.to(device)
    where = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    )
    print(
        f"{args.preset} preset, {args.batch_size} images of {tuple(images[0].shape)}, {weights}, "
        f"{args.device} ({where}), precision {args.amp}, median of {args.repeats}"
    )
    ours.train(), theirs.train()
    with torch.no_grad(), autocast(device, args.amp):
        la, lb = ours(images, targets), theirs(images, targets)
    print(
        f"same losses: classification {la['classification']:.5f} vs {lb['classification']:.5f}, "
        f"box {la['box_regression']:.5f} vs {lb['bbox_regression']:.5f}"
    )
    our_network, their_network = network_steps(ours, theirs, images, args.amp)
    runs = {
        "training step": tuple(training_step(m, images, targets, args.amp) for m in (ours, theirs)),
        "  network only": (our_network, their_network),
    }
    rows = medians(runs, args.repeats)
    ours.eval(), theirs.eval()
    rows |= medians(
        {"inference": tuple(inference(m, images, args.amp) for m in (ours, theirs))}, args.repeats
    )
    report(rows)
    ours.train()
    with FlopCounterMode(display=False) as counter:
        our_network()
    flops, net_seconds = counter.get_total_flops(), rows["  network only"][0]
    print(
        f"the network does {flops / 1e9:.1f} GFLOP per training step (forward and backward), "
        f"{flops / net_seconds / 1e9:.0f} GFLOP/s in retina_edu; "
        f"a {MATMUL_SIZE}x{MATMUL_SIZE} float32 matrix product runs at "
        f"{matmul_gflops(args.device):.0f} GFLOP/s here"
    )


if __name__ == "__main__":
    main()
