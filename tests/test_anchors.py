import pytest
import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList

from retina_edu.anchors import anchors_for_grid, anchors_for_image, best_anchor_iou, cell_anchors
from retina_edu.config import RetinaNetConfig


def torchvision_anchors(image_size, grid_sizes, sizes, ratios):
    generator = AnchorGenerator(tuple(tuple(s) for s in sizes), (tuple(ratios),) * len(sizes))
    images = ImageList(torch.zeros(1, 3, *image_size), [image_size])
    features = [torch.zeros(1, 1, *g) for g in grid_sizes]
    return generator(images, features)[0]


def grids_for(image_size, strides=(8, 16, 32, 64, 128)):
    # the FPN's sizes: each stride-2 conv rounds up, as ceil(H / stride)
    return [(-(-image_size[0] // s), -(-image_size[1] // s)) for s in strides]


@pytest.mark.parametrize("image_size", [(256, 256), (800, 800), (800, 1216), (333, 517), (100, 60)])
@pytest.mark.parametrize("preset", ["paper", "torchvision", "cpu"])
def test_anchors_equal_torchvision(image_size, preset):
    config = getattr(RetinaNetConfig, preset)()
    grids = grids_for(image_size)
    ours = anchors_for_image(image_size, grids, config.anchor_sizes, config.aspect_ratios)
    theirs = torchvision_anchors(image_size, grids, config.anchor_sizes, config.aspect_ratios)
    torch.testing.assert_close(ours, theirs)


def test_anchor_count_for_800_pixels():
    # 9 anchors × (100² + 50² + 25² + 13² + 7²) positions = 9 × 13343 = 120087
    config = RetinaNetConfig.paper()
    anchors = anchors_for_image((800, 800), grids_for((800, 800)), config.anchor_sizes, config.aspect_ratios)
    assert anchors.shape == (120087, 4)


def test_cell_anchors_by_hand():
    # size 32, ratio h/w = 1 → 32×32 centred on 0; ratio 2 → h = 32·√2 ≈ 45, w ≈ 23 (rounded ends)
    cell = cell_anchors([32], [1.0, 2.0])
    torch.testing.assert_close(cell[0], torch.tensor([-16.0, -16.0, 16.0, 16.0]))
    w, h = cell[1, 2] - cell[1, 0], cell[1, 3] - cell[1, 1]
    assert h > w and abs(float(h * w) - 32 * 32) < 40


def test_grid_order_is_row_column_anchor():
    cell = cell_anchors([8], [1.0])
    anchors = anchors_for_grid(cell, (2, 3), (10, 10))  # 2 rows × 3 columns × 1 anchor
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    expected = torch.tensor([[0, 0], [10, 0], [20, 0], [0, 10], [10, 10], [20, 10]], dtype=torch.float32)
    torch.testing.assert_close(centres, expected)


def test_best_anchor_iou_covers_boxes_on_anchors():
    config = RetinaNetConfig.paper()
    anchors = anchors_for_image((256, 256), grids_for((256, 256)), config.anchor_sizes, config.aspect_ratios)
    best = best_anchor_iou(anchors[[0, 500, 1000]], anchors)
    torch.testing.assert_close(best, torch.ones(3))
    assert best_anchor_iou(torch.zeros(0, 4), anchors).shape == (0,)
