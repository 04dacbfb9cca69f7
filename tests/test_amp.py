"""Mixed precision on the CPU: a bf16 autocast training step of the tiny and CPU presets agrees with
float32, the fp16 path scales its loss and skips a step whose gradients overflow, and
detections are float32 whatever precision the network ran in."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from torch import nn

from retina_edu import RetinaNet, RetinaNetConfig
from retina_edu.data import collate
from retina_edu.train import (
    TrainConfig,
    autocast,
    bf16_cpu_workaround,
    main,
    make_optimizer,
    make_scaler,
    train_step,
)

from .conftest import TINY

CPU = torch.device("cpu")
# bfloat16 keeps 8 bits of mantissa (about 2 decimal digits) in the network's convolutions; the
# loss itself is reduced in float32. Measured on these four images: the losses differ from
# float32's by 1e-4 to 1.1e-3 relative (tiny preset, on two machines) and 9e-4 (CPU preset), and
# the flattened weight gradients have a cosine similarity of 0.978-0.983 (tiny) and 0.963 (CPU)
# with float32's. The tolerances leave room for other seeds without hiding a wrong reduction or a
# gradient that points elsewhere.
BF16_RTOL = 0.01
BF16_GRAD_COSINE = 0.95


@pytest.fixture(scope="module")
def batch(data):
    return collate([data[i] for i in range(len(data))])


def model_copy(seed: int = 0, preset: str = "tiny") -> RetinaNet:
    torch.manual_seed(seed)
    config = TINY if preset == "tiny" else RetinaNetConfig.cpu(num_classes=TINY.num_classes)
    return RetinaNet(config).train()


def losses_and_grads(model: RetinaNet, batch, amp: str) -> tuple[dict[str, float], list[torch.Tensor]]:
    """The losses of one forward under ``amp``'s autocast, and the weights' gradients."""
    model.zero_grad(set_to_none=True)
    with bf16_cpu_workaround(CPU, amp):  # as train_step runs it
        with autocast(CPU, amp):
            losses = model(*batch)
        sum(losses.values()).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    return {k: v for k, v in losses.items()}, grads


# the CPU preset runs its trunk and FPN channels-last (the tiny preset's narrow stem keeps them
# channels-first): the path a course's laptop takes
@pytest.mark.parametrize("preset", ["tiny", "cpu"])
def test_bf16_training_step_is_close_to_float32(batch, preset):
    model = model_copy(preset=preset)
    full, full_grads = losses_and_grads(model, batch, "none")
    low, low_grads = losses_and_grads(model, batch, "bf16")
    for name in full:
        assert low[name].dtype == torch.float32, name  # reduced in float32
        assert torch.isfinite(low[name]), name
        torch.testing.assert_close(low[name], full[name], rtol=BF16_RTOL, atol=0.0)
    assert len(low_grads) == len(full_grads)
    assert all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in low_grads)
    # the gradient points the same way: cosine similarity of the flattened gradients
    a, b = torch.cat([g.flatten() for g in full_grads]), torch.cat([g.flatten() for g in low_grads])
    assert torch.nn.functional.cosine_similarity(a, b, dim=0) > BF16_GRAD_COSINE


def one_pixel_wide_weight_gradient(x: torch.Tensor, conv: nn.Conv2d, amp: str) -> torch.Tensor:
    """The weight gradient of ``conv`` for input ``x`` under ``amp``, as train_step runs a step,
    after filling memory that the allocator will hand out again with NaN."""
    for dtype in (torch.float32, torch.bfloat16):
        torch.full((4 * 32 * 9 * 8,), float("nan"), dtype=dtype)  # freed at once, its memory reused
    conv.zero_grad(set_to_none=True)
    with bf16_cpu_workaround(CPU, amp):
        with autocast(CPU, amp):
            y = conv(x)
        y.float().sum().backward()
    return conv.weight.grad


def test_bf16_weight_gradient_of_a_one_pixel_wide_map_is_right():
    # P7 of a 64-px image: a stride-2 convolution of a 1x1 map. Without the workaround oneDNN's
    # bf16 kernel returned NaN in the weight gradient in 14 to 50 of 60 tries at one thread.
    torch.manual_seed(0)
    conv = nn.Conv2d(32, 32, 3, stride=2, padding=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for shape in [(4, 32, 1, 1), (4, 32, 3, 1)]:
            x = torch.randn(shape)
            expected = one_pixel_wide_weight_gradient(x, conv, "none").clone()
            for _ in range(20):
                low = one_pixel_wide_weight_gradient(x, conv, "bf16")
                torch.testing.assert_close(low, expected, rtol=0.02, atol=0.02)
    finally:
        torch.set_num_threads(threads)
    assert torch.backends.mkldnn.enabled  # the workaround gave oneDNN back


def test_the_workaround_touches_only_cpu_bf16():
    for device, amp in [(CPU, "none"), (CPU, "fp16"), (torch.device("cuda"), "bf16")]:
        with bf16_cpu_workaround(device, amp):
            assert torch.backends.mkldnn.enabled, (device, amp)
    with bf16_cpu_workaround(CPU, "bf16"):
        assert not torch.backends.mkldnn.enabled


# torch warns when the scheduler steps after a skipped optimizer step, as the scaler intends
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before:UserWarning")
def test_fp16_step_scales_and_skips_an_overflowing_step(batch):
    cfg = TrainConfig(steps=2, warmup_steps=0, amp="fp16")
    model = model_copy()
    optimizer = make_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    scaler = make_scaler(CPU, cfg.amp)
    assert isinstance(scaler, torch.amp.GradScaler) and make_scaler(CPU, "bf16") is None
    # a scale of 2^40 overflows float16 (max 65504) in the backward: the step must be skipped
    scaler.load_state_dict({**scaler.state_dict(), "scale": 2.0**40})
    before = copy.deepcopy(dict(model.named_parameters()))  # not batch norm's running statistics
    record = train_step(model, optimizer, scheduler, *batch, cfg, 0, scaler)
    assert torch.isfinite(torch.tensor(record["loss"]))
    assert scaler.get_scale() == 2.0**39  # halved (backoff_factor 0.5)
    assert all(torch.equal(before[k], p) for k, p in model.named_parameters())
    # at the default scale the gradients fit: the weights change, and are finite
    scaler = make_scaler(CPU, cfg.amp)
    train_step(model, optimizer, scheduler, *batch, cfg, 1, scaler)
    assert scaler.get_scale() == 2.0**16
    assert any(not torch.equal(before[k], p) for k, p in model.named_parameters())
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_detections_under_autocast_are_float32(batch, amp):
    torch.manual_seed(0)
    model = RetinaNet(TINY.replace(score_thresh=0.0)).eval()  # every candidate kept: 0.01 priors
    with torch.inference_mode(), autocast(CPU, amp):
        detections = model(batch[0])
    for det in detections:
        assert len(det["boxes"]) > 0
        assert det["boxes"].dtype == torch.float32 and det["scores"].dtype == torch.float32
        assert det["labels"].dtype == torch.int64


def test_fp16_run_saves_its_scaler_and_resumes(data, tmp_path):
    cfg = TrainConfig(steps=2, batch_size=2, warmup_steps=1, amp="fp16")
    out = tmp_path / "run"
    main([
        "--ann-file", str(data.ann_file), "--image-dir", str(data.image_dir), "--out", str(out),
        "--preset", "tiny", "--device", "cpu", "--amp", "fp16",
        *[f"--{k.replace('_', '-')}={v}" for k, v in dataclasses.asdict(cfg).items() if k != "amp"],
    ])  # fmt: skip
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["train_config"]["amp"] == "fp16" and state["scaler"]["scale"] > 0
