"""The whole model against torchvision's RetinaNet holding the same weights, and bad input."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from torchvision.models.detection import retinanet_resnet50_fpn
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from retina_edu import RetinaNet, RetinaNetConfig
from retina_edu.compat import (
    from_torchvision_state_dict,
    load_torchvision_weights,
    to_torchvision_state_dict,
    torchvision_retinanet,
)
from retina_edu.config import IMAGENET_MEAN, IMAGENET_STD, QUICK_ENV, quick_mode

from .conftest import random_boxes

K = 6
SIZE = {"min_size": 192, "max_size": 320}  # small images keep ResNet-50 fast on the CPU


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    theirs = retinanet_resnet50_fpn(weights=None, weights_backbone=None, num_classes=K, **SIZE)
    # spread the head's outputs so that eval mode finds hundreds of detections to compare
    state = theirs.state_dict()
    g = torch.Generator().manual_seed(1)
    state["head.classification_head.cls_logits.bias"] = torch.randn(9 * K, generator=g)
    state["head.classification_head.cls_logits.weight"] *= 30
    state["head.regression_head.bbox_reg.weight"] *= 30
    theirs.load_state_dict(state)
    ours = RetinaNet(RetinaNetConfig.torchvision(num_classes=K).replace(**SIZE))
    ours.load_state_dict(from_torchvision_state_dict(state))
    # In float64: retina_edu runs its trunk channels-last, torchvision channels-first, so in
    # float32 the two round differently in the last bits, which the ×30 weights above magnify
    # to ~1e-3. In float64 rounding stays far below the 1e-4 tolerance and any real
    # difference still shows. (test_cpu_preset_matches_torchvision_in_float32 covers float32.)
    return ours.double(), theirs.double()


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(2)
    sizes = [(200, 260), (150, 301), (192, 192)]  # non-square, not multiples of 32 or 128
    images = [torch.rand(3, h, w, generator=g, dtype=torch.float64) for h, w in sizes]
    targets = [
        {
            "boxes": random_boxes(n, h, w, g, min_size=8).double(),
            "labels": torch.randint(0, K, (n,), generator=g),
        }
        for n, (h, w) in zip([4, 1, 0], sizes, strict=True)
    ]
    return images, targets


def in_canonical_order(d):
    """Detections sorted by score, then box, then label: tied scores may come in either order."""
    score = (d["scores"] * 1000).round()[:, None]  # ties within float noise sort by box
    keys = torch.cat([-score, d["boxes"].round(decimals=2), d["labels"][:, None].float()], dim=1).numpy()
    order = torch.from_numpy(np.lexsort(keys.T[::-1].copy()))
    return {k: v[order] for k, v in d.items()}


def assert_same_detections(a, b):
    for da, db in zip(a, b, strict=True):
        assert len(da["scores"]) > 50
        da, db = in_canonical_order(da), in_canonical_order(db)
        torch.testing.assert_close(da["scores"], db["scores"], atol=1e-4, rtol=0)
        torch.testing.assert_close(da["boxes"], db["boxes"], atol=1e-4, rtol=0)
        assert torch.equal(da["labels"], db["labels"])


def test_same_losses_as_torchvision(pair, batch):
    ours, theirs = pair
    ours.train(), theirs.train()
    a, b = ours(*batch), theirs(*batch)
    torch.testing.assert_close(a["classification"], b["classification"], atol=1e-4, rtol=0)
    torch.testing.assert_close(a["box_regression"], b["bbox_regression"], atol=1e-4, rtol=0)


def test_same_gradients_as_torchvision(pair, batch):
    ours, theirs = pair
    ours.train(), theirs.train()
    ours.zero_grad(), theirs.zero_grad()
    sum(ours(*batch).values()).backward()
    sum(theirs(*batch).values()).backward()
    g_ours = ours.head.class_subnet.predictor.weight.grad
    g_theirs = theirs.head.classification_head.cls_logits.weight.grad
    torch.testing.assert_close(g_ours, g_theirs, atol=1e-5, rtol=1e-3)


def test_same_detections_as_torchvision(pair, batch):
    ours, theirs = pair
    ours.eval(), theirs.eval()
    with torch.no_grad():
        assert_same_detections(ours(batch[0]), theirs(batch[0]))


def test_back_to_torchvision(pair, batch):
    ours, _ = pair
    ours.eval()
    fresh = retinanet_resnet50_fpn(weights=None, weights_backbone=None, num_classes=K, **SIZE)
    fresh = fresh.double().eval()
    fresh.load_state_dict(to_torchvision_state_dict(ours.state_dict()))
    with torch.no_grad():
        assert_same_detections(fresh(batch[0]), ours(batch[0]))


def test_cpu_preset_matches_torchvision_in_float32(gen):
    """The model as users train it: float32, channels-last trunk (torchvision: channels-first).
    Sums over thousands of anchors taken in another order agree to float32 rounding."""
    torch.manual_seed(0)
    config = RetinaNetConfig.cpu(num_classes=K).replace(smooth_l1_beta=1.0)
    ours = RetinaNet(config).train()
    theirs = torchvision_retinanet(config).train()
    theirs.load_state_dict(to_torchvision_state_dict(ours.state_dict(), config.head_norm))
    images = [torch.rand(3, 128, 128, generator=gen) for _ in range(4)]
    targets = [
        {
            "boxes": random_boxes(n, 128, 128, gen, min_size=12),
            "labels": torch.randint(0, K, (n,), generator=gen),
        }
        for n in (1, 3, 0, 6)
    ]
    a, b = ours(images, targets), theirs(images, targets)
    torch.testing.assert_close(a["classification"], b["classification"], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(a["box_regression"], b["bbox_regression"], atol=1e-6, rtol=1e-5)
    sum(a.values()).backward(), sum(b.values()).backward()
    # (The trunk's gradients pass through training-mode batch norm, whose float32 rounding noise
    # is ~1e-3 in either implementation; the float64 tests above compare those.)
    g_ours = ours.head.class_subnet.predictor.weight.grad
    g_theirs = theirs.head.classification_head.cls_logits.weight.grad
    assert (g_ours - g_theirs).norm() <= 1e-4 * g_theirs.norm()


def test_round_trip_of_names_is_exact(pair):
    ours, theirs = pair
    state = theirs.state_dict()
    back = to_torchvision_state_dict(from_torchvision_state_dict(state))
    assert back.keys() == state.keys()
    assert all(back[k] is state[k] for k in state)


def test_group_norm_groups_must_divide_the_channels():
    config = RetinaNetConfig.cpu().replace(fpn_channels=32)
    assert RetinaNet(config.replace(head_norm_groups=4)).config.head_norm_groups == 4
    for groups in (0, 3, 64):
        with pytest.raises(
            ValueError, match=f"head_norm_groups must divide fpn_channels \\(32\\), got {groups}"
        ):
            config.replace(head_norm_groups=groups)
    assert config.replace(head_norm="none", head_norm_groups=3).head_norm_groups == 3  # no GroupNorm: unused


def test_group_norm_heads_convert_both_ways():
    config = RetinaNetConfig.cpu()
    model = RetinaNet(config)
    state = model.state_dict()
    theirs = to_torchvision_state_dict(state, "group")
    assert theirs.keys() == torchvision_retinanet(config.replace(smooth_l1_beta=1.0)).state_dict().keys()
    converted = from_torchvision_state_dict(theirs, "group")
    assert converted.keys() == state.keys()
    assert all(torch.equal(converted[k], state[k]) for k in state)


def test_load_torchvision_weights_file(pair, batch, tmp_path):
    ours, theirs = pair
    path = tmp_path / "retinanet.pth"
    torch.save(theirs.state_dict(), path)
    loaded = load_torchvision_weights(path, ours.config).double().eval()
    ours.eval(), theirs.eval()
    with torch.no_grad():
        assert_same_detections(loaded(batch[0]), theirs(batch[0]))


def test_load_torchvision_weights_rejects_corrupt_file(tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read torchvision weights"):
        load_torchvision_weights(path)


@pytest.fixture(scope="module")
def cpu_model():
    torch.manual_seed(0)
    return RetinaNet(RetinaNetConfig.cpu(num_classes=3))


def test_cpu_preset_train_and_eval(cpu_model):
    images = [torch.rand(3, 128, 128) for _ in range(2)]
    targets = [
        {"boxes": torch.tensor([[10.0, 10.0, 50.0, 40.0]]), "labels": torch.tensor([2])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},  # no objects
    ]
    cpu_model.train()
    losses = cpu_model(images, targets)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert all(torch.isfinite(p.grad).all() for p in cpu_model.parameters() if p.grad is not None)
    cpu_model.eval()
    with torch.no_grad():
        out = cpu_model(torch.stack(images))
    assert len(out) == 2 and out[0]["boxes"].shape[1] == 4


def test_only_negatives_when_no_objects():
    """With no objects the classification loss is the focal loss over all anchors, normalised by 1."""
    model = RetinaNet(RetinaNetConfig.cpu(num_classes=3)).train()
    torch.nn.init.zeros_(model.head.class_subnet.predictor.weight)  # every logit is the prior bias
    image = torch.rand(3, 128, 128)
    losses = model([image], [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}])
    # at initialisation every anchor scores π = 0.01 for each class: FL = (1-α) π^γ (-log(1-π))
    anchors = 9 * (16 * 16 + 8 * 8 + 4 * 4 + 2 * 2 + 1)  # 3069 anchors × 3 classes
    per_anchor_class = 0.75 * 0.01**2 * -torch.log(torch.tensor(0.99))
    torch.testing.assert_close(losses["classification"], anchors * 3 * per_anchor_class)
    assert losses["box_regression"].item() == 0


GOOD_BOX = {"boxes": torch.tensor([[1.0, 1.0, 20.0, 20.0]]), "labels": torch.tensor([0])}


@pytest.mark.parametrize(
    "images,targets,message",
    [
        ([], [], "empty batch"),
        ([torch.rand(3, 0, 64)], [GOOD_BOX], "empty"),
        ([torch.rand(1, 64, 64)], [GOOD_BOX], r"\(3, H, W\)"),
        ([torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)], [GOOD_BOX], "float"),
        ([torch.full((3, 64, 64), float("nan"))], [GOOD_BOX], "NaN"),
        ([torch.rand(3, 64, 64)], [GOOD_BOX, GOOD_BOX], "1 images but 2 targets"),
        (
            [torch.rand(3, 64, 64)],
            [{"boxes": torch.tensor([[5.0, 5.0, 5.0, 9.0]]), "labels": torch.tensor([0])}],
            "zero or negative size",
        ),
        (
            [torch.rand(3, 64, 64)],
            [{"boxes": torch.tensor([[9.0, 5.0, 2.0, 9.0]]), "labels": torch.tensor([0])}],
            "zero or negative size",
        ),
        (
            [torch.rand(3, 64, 64)],
            [{"boxes": torch.tensor([[10.0, 10.0, 90.0, 30.0]]), "labels": torch.tensor([0])}],
            "outside its 64x64 image",
        ),
        (
            [torch.rand(3, 64, 64)],
            [{"boxes": torch.tensor([[1.0, 1.0, 9.0]]), "labels": torch.tensor([0])}],
            r"\(N, 4\)",
        ),
        (
            [torch.rand(3, 64, 64)],
            [{"boxes": torch.tensor([[1.0, 1.0, 9.0, 9.0]]), "labels": torch.tensor([3])}],
            r"0\.\.2",
        ),
        (
            [torch.rand(3, 64, 64)],
            [{"boxes": torch.tensor([[1.0, 1.0, 9.0, 9.0]]), "labels": torch.tensor([0.0])}],
            "int64",
        ),
        ([torch.rand(3, 64, 64)], None, "needs targets"),
    ],
)
def test_bad_input_names_the_problem(cpu_model, images, targets, message):
    cpu_model.train()
    with pytest.raises(ValueError, match=message):
        cpu_model(images, targets)


def test_config_rejects_unknown_choices():
    with pytest.raises(ValueError, match="p6_input"):
        RetinaNetConfig.paper().replace(p6_input="C4")
    with pytest.raises(ValueError, match="num_classes"):
        RetinaNetConfig.paper(num_classes=0)


@pytest.mark.parametrize("channels,size", [((16, 32, 64, 128), 128), ((24, 48, 96, 192), 192)])
def test_narrow_small_trunk_trains(channels, size):
    # Each of these crashed the process (segfault in backward) while the trunk ran channels-last.
    # Runs in a subprocess so that a crash fails this test instead of ending the session.
    code = f"""
import torch
from retina_edu import RetinaNet, RetinaNetConfig
torch.set_num_threads(1)
config = RetinaNetConfig.cpu().replace(
    small_trunk_channels={channels}, fpn_channels=32, min_size={size}, max_size={size}
)
model = RetinaNet(config)
images = [torch.rand(3, {size}, {size}) for _ in range(16)]
targets = [{{"boxes": torch.tensor([[10.0, 10.0, 50.0, 60.0]]), "labels": torch.tensor([1])}} for _ in images]
sum(model(images, targets).values()).backward()
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_tiny_preset_is_the_cpu_preset_for_64_pixels():
    tiny, cpu = RetinaNetConfig.tiny(num_classes=3), RetinaNetConfig.cpu(num_classes=3)
    changed = {f for f in cpu.__dataclass_fields__ if getattr(tiny, f) != getattr(cpu, f)}
    assert changed == {"small_trunk_channels", "fpn_channels", "min_size", "max_size"}
    assert (tiny.min_size, tiny.max_size) == (64, 64)


@pytest.mark.parametrize("value,quick", [(None, False), ("0", False), ("1", True)])
def test_quick_mode_reads_the_environment(monkeypatch, value, quick):
    if value is None:
        monkeypatch.delenv(QUICK_ENV, raising=False)
    else:
        monkeypatch.setenv(QUICK_ENV, value)
    assert quick_mode() is quick


def test_double_model_normalises_in_float64():
    # The mean and std are made in the image's dtype, as torchvision does, not float32 constants
    # widened to float64 (which differ from 0.485 etc. by up to 1.2e-8 relative).
    model = RetinaNet(RetinaNetConfig.cpu()).double()
    image = torch.rand(3, 128, 128, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    batch = model.preprocess([image], None)[0]
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64)[:, None, None]
    assert batch.dtype == torch.float64
    assert torch.equal(batch[0], (image - mean) / std)
    torchvision_transform = GeneralizedRCNNTransform(128, 128, list(IMAGENET_MEAN), list(IMAGENET_STD))
    assert torch.equal(batch, torchvision_transform([image])[0].tensors)
