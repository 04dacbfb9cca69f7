from functools import partial

import pytest
import torch
from torchvision.models.detection.retinanet import RetinaNetHead as TorchvisionHead
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from retina_edu.backbone import build_trunk
from retina_edu.fpn import FPN
from retina_edu.heads import RetinaNetHead, prior_bias


@pytest.mark.parametrize("p6_input", ["C5", "P5"])
def test_fpn_equals_torchvision(gen, p6_input):
    in_channels, channels = (16, 32, 64), 24
    ours = FPN(in_channels, channels, p6_input)
    extra = LastLevelP6P7(in_channels[-1] if p6_input == "C5" else channels, channels)
    theirs = FeaturePyramidNetwork(list(in_channels), channels, extra_blocks=extra)
    for i in range(3):  # copy the weights over
        theirs.inner_blocks[i][0].load_state_dict(ours.lateral[i].state_dict())
        theirs.layer_blocks[i][0].load_state_dict(ours.output[i].state_dict())
    extra.p6.load_state_dict(ours.p6.state_dict())
    extra.p7.load_state_dict(ours.p7.state_dict())
    # an odd-sized input: C4, C5 are rounded up, the top-down path must resize to fit
    c3 = torch.randn(2, 16, 25, 19, generator=gen)
    c4 = torch.randn(2, 32, 13, 10, generator=gen)
    c5 = torch.randn(2, 64, 7, 5, generator=gen)
    expected = list(theirs({"c3": c3, "c4": c4, "c5": c5}).values())
    got = ours((c3, c4, c5))
    assert [tuple(p.shape[-2:]) for p in got] == [(25, 19), (13, 10), (7, 5), (4, 3), (2, 2)]
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("backbone", ["small", "resnet18"])
def test_trunk_strides(backbone):
    trunk = build_trunk(backbone).eval()
    c3, c4, c5 = trunk(torch.zeros(1, 3, 128, 96))
    assert [tuple(c.shape[-2:]) for c in (c3, c4, c5)] == [(16, 12), (8, 6), (4, 3)]
    assert (c3.shape[1], c4.shape[1], c5.shape[1]) == trunk.out_channels


@pytest.mark.parametrize("groups", [None, 32, 4])  # no norm (the paper), GroupNorm: 1 or 8 channels a group
def test_head_equals_torchvision(gen, groups):
    channels, anchors, classes = 32, 9, 4
    if groups is None:
        ours = RetinaNetHead(channels, anchors, classes, num_convs=4)
        theirs = TorchvisionHead(channels, anchors, classes)
    else:
        ours = RetinaNetHead(channels, anchors, classes, num_convs=4, norm="group", norm_groups=groups)
        theirs = TorchvisionHead(channels, anchors, classes, norm_layer=partial(torch.nn.GroupNorm, groups))
    for subnet, tv_head, last in [
        (ours.class_subnet, theirs.classification_head, "cls_logits"),
        (ours.box_subnet, theirs.regression_head, "bbox_reg"),
    ]:
        convs = [m for m in subnet.convs if isinstance(m, torch.nn.Conv2d)]
        for i, conv in enumerate(convs):
            tv_head.conv[i][0].load_state_dict(conv.state_dict())
        getattr(tv_head, last).load_state_dict(subnet.predictor.state_dict())
    features = [torch.randn(2, channels, s, s, generator=gen) for s in (8, 4, 2)]
    cls, box = ours(features)
    expected = theirs(features)
    assert cls.shape == (2, 9 * (64 + 16 + 4), classes) and box.shape == (2, 9 * 84, 4)
    torch.testing.assert_close(cls, expected["cls_logits"])
    torch.testing.assert_close(box, expected["bbox_regression"])


def test_prior_init_gives_probability_pi():
    head = RetinaNetHead(32, 9, 3, prior_prob=0.01)
    assert abs(prior_bias(0.01) - (-4.59512)) < 1e-4
    cls, _ = head([torch.zeros(1, 32, 4, 4)])  # zero input: the logit is the bias
    torch.testing.assert_close(cls.sigmoid(), torch.full_like(cls, 0.01))
    # the box subnet starts at zero deltas: every anchor predicts itself
    _, box = head([torch.zeros(1, 32, 4, 4)])
    assert box.abs().max() == 0


def test_group_norm_head_shapes():
    head = RetinaNetHead(64, 9, 5, num_convs=2, norm="group")
    assert sum(isinstance(m, torch.nn.GroupNorm) for m in head.modules()) == 4
    cls, box = head([torch.randn(2, 64, 4, 4)])
    assert cls.shape == (2, 144, 5) and box.shape == (2, 144, 4)
    eight = RetinaNetHead(64, 9, 5, num_convs=2, norm="group", norm_groups=8)
    assert {m.num_groups for m in eight.modules() if isinstance(m, torch.nn.GroupNorm)} == {8}
