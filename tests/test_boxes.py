import pytest
import torch
from torchvision.models.detection._utils import BoxCoder as TorchvisionBoxCoder
from torchvision.ops import box_area as tv_box_area
from torchvision.ops import box_convert
from torchvision.ops import box_iou as tv_box_iou

from retina_edu.boxes import (
    BBOX_XFORM_CLIP,
    BoxCoder,
    box_area,
    box_iou,
    check_boxes,
    cxcywh_to_xyxy,
    xywh_to_xyxy,
    xyxy_to_cxcywh,
    xyxy_to_xywh,
)

from .conftest import random_boxes


def test_iou_by_hand():
    # two 2x2 squares overlapping in a 1x2 strip: 2 / (4 + 4 - 2) = 1/3
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 0.0, 3.0, 2.0], [5.0, 5.0, 6.0, 6.0], [0.0, 0.0, 2.0, 2.0]])
    torch.testing.assert_close(box_iou(a, b), torch.tensor([[1 / 3, 0.0, 1.0]]))


@pytest.mark.parametrize("n,m", [(1, 1), (7, 13), (50, 300)])
def test_iou_and_area_equal_torchvision(gen, n, m):
    a, b = random_boxes(n, 200, 300, gen), random_boxes(m, 200, 300, gen)
    torch.testing.assert_close(box_iou(a, b), tv_box_iou(a, b))
    torch.testing.assert_close(box_area(a), tv_box_area(a))


def test_iou_batched_equals_per_image(gen):
    a = torch.stack([random_boxes(5, 100, 100, gen) for _ in range(3)])  # (3, 5, 4)
    anchors = random_boxes(40, 100, 100, gen)
    batched = box_iou(a, anchors)  # (3, 5, 40)
    for i in range(3):
        torch.testing.assert_close(batched[i], tv_box_iou(a[i], anchors))


def test_formats_equal_torchvision_and_round_trip(gen):
    boxes = random_boxes(20, 50, 80, gen)
    torch.testing.assert_close(xyxy_to_xywh(boxes), box_convert(boxes, "xyxy", "xywh"))
    torch.testing.assert_close(xyxy_to_cxcywh(boxes), box_convert(boxes, "xyxy", "cxcywh"))
    torch.testing.assert_close(xywh_to_xyxy(xyxy_to_xywh(boxes)), boxes)
    torch.testing.assert_close(cxcywh_to_xyxy(xyxy_to_cxcywh(boxes)), boxes)


def test_box_coder_equals_torchvision(gen):
    anchors, boxes = random_boxes(100, 400, 600, gen), random_boxes(100, 400, 600, gen)
    ours, theirs = BoxCoder(), TorchvisionBoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
    deltas = ours.encode(boxes, anchors)
    torch.testing.assert_close(deltas, theirs.encode_single(boxes, anchors))
    wild = torch.randn(100, 4, generator=gen) * 6  # many dw, dh beyond the clamp
    assert (wild[:, 2:] > BBOX_XFORM_CLIP).any()
    torch.testing.assert_close(ours.decode(wild, anchors), theirs.decode_single(wild, anchors))


def test_box_coder_weighted_equals_torchvision(gen):
    anchors, boxes = random_boxes(30, 100, 100, gen), random_boxes(30, 100, 100, gen)
    w = (10.0, 10.0, 5.0, 5.0)
    torch.testing.assert_close(
        BoxCoder(w).encode(boxes, anchors), TorchvisionBoxCoder(w).encode_single(boxes, anchors)
    )


def test_decode_encode_round_trip(gen):
    anchors, boxes = random_boxes(200, 300, 300, gen), random_boxes(200, 300, 300, gen)
    coder = BoxCoder()
    torch.testing.assert_close(
        coder.decode(coder.encode(boxes, anchors), anchors), boxes, rtol=1e-5, atol=1e-3
    )


def test_decode_clamps_growth():
    anchor = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    box = BoxCoder().decode(torch.tensor([[0.0, 0.0, 1e4, 1e4]]), anchor)
    assert torch.isfinite(box).all()
    torch.testing.assert_close(box[0, 2] - box[0, 0], torch.tensor(10 * 1000 / 16))


@pytest.mark.parametrize(
    "boxes,message",
    [
        (torch.zeros(3, 5), r"\(N, 4\), got \(3, 5\)"),
        (torch.zeros(3, 4, dtype=torch.int64), "float"),
        (torch.tensor([[0.0, 0.0, 0.0, 5.0]]), r"boxes\[0\].*zero or negative size"),
        (torch.tensor([[1.0, 1.0, 2.0, 2.0], [5.0, 5.0, 4.0, 9.0]]), r"boxes\[1\]"),
        (torch.tensor([[0.0, 0.0, float("nan"), 1.0]]), "NaN"),
    ],
)
def test_check_boxes_names_the_problem(boxes, message):
    with pytest.raises(ValueError, match=message):
        check_boxes(boxes)
