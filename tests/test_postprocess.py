import pytest
import torch
from torchvision.ops import batched_nms
from torchvision.ops import nms as tv_nms

from retina_edu.boxes import BoxCoder
from retina_edu.postprocess import nms, postprocess_detections

from .conftest import random_boxes


@pytest.mark.parametrize("n,thresh", [(1, 0.5), (50, 0.5), (300, 0.3), (300, 0.7)])
def test_hand_written_nms_equals_torchvision(gen, n, thresh):
    boxes = random_boxes(n, 100, 100, gen)
    scores = torch.rand(n, generator=gen)
    assert torch.equal(nms(boxes, scores, thresh), tv_nms(boxes, scores, thresh))


def test_nms_by_hand():
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]])
    scores = torch.tensor([0.8, 0.9, 0.5])
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]  # box 0 overlaps box 1 with IoU 0.68


def test_postprocess_equals_per_image_reference(gen):
    """The batched version against a straightforward per-image, per-level loop (torchvision's)."""
    batch, classes, levels = 3, 4, [300, 75, 20]
    anchors = random_boxes(sum(levels), 64, 64, gen)
    logits = torch.randn(batch, sum(levels), classes, generator=gen) * 2
    deltas = torch.randn(batch, sum(levels), 4, generator=gen) * 0.2
    sizes = [(64, 64), (60, 50), (64, 40)]
    coder = BoxCoder()
    got = postprocess_detections(
        logits, deltas, anchors, levels, sizes,
        box_coder=coder, score_thresh=0.05, topk_candidates=50, nms_thresh=0.5, detections_per_img=30,
    )  # fmt: skip
    for b in range(batch):
        boxes_all, scores_all, labels_all, start = [], [], [], 0
        for count in levels:
            scores = logits[b, start : start + count].sigmoid().flatten()
            keep = torch.where(scores > 0.05)[0]
            top, idx = scores[keep].topk(min(50, len(keep)))
            flat = keep[idx]
            anchor, label = flat // classes + start, flat % classes
            boxes = coder.decode(deltas[b, anchor], anchors[anchor])
            h, w = sizes[b]
            boxes = torch.stack(
                [
                    boxes[:, 0].clamp(0, w),
                    boxes[:, 1].clamp(0, h),
                    boxes[:, 2].clamp(0, w),
                    boxes[:, 3].clamp(0, h),
                ],
                1,
            )
            boxes_all.append(boxes), scores_all.append(top), labels_all.append(label)
            start += count
        boxes, scores, labels = torch.cat(boxes_all), torch.cat(scores_all), torch.cat(labels_all)
        keep = batched_nms(boxes, scores, labels, 0.5)[:30]
        torch.testing.assert_close(got[b]["scores"], scores[keep])
        torch.testing.assert_close(got[b]["boxes"], boxes[keep])
        assert torch.equal(got[b]["labels"], labels[keep])


def test_postprocess_no_detections():
    out = postprocess_detections(
        torch.full((2, 10, 3), -10.0),
        torch.zeros(2, 10, 4),
        torch.rand(10, 4) + torch.tensor([0, 0, 1, 1.0]),
        [10],
        [(8, 8), (8, 8)],
        box_coder=BoxCoder(),
    )
    assert all(d["boxes"].shape == (0, 4) and d["labels"].dtype == torch.int64 for d in out)
