import pytest
import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList

from retina_edu.anchors import (
    anchors_for_config,
    anchors_for_grid,
    anchors_for_image,
    best_anchor_iou,
    cell_anchors,
    pyramid_grid_sizes,
)
from retina_edu.config import RetinaNetConfig
from retina_edu.fpn import FPN


def torchvision_anchors(image_size, grid_sizes, sizes, ratios):
    generator = AnchorGenerator(tuple(tuple(s) for s in sizes), (tuple(ratios),) * len(sizes))
    images = ImageList(torch.zeros(1, 3, *image_size), [image_size])
    features = [torch.zeros(1, 1, *g) for g in grid_sizes]
    return generator(images, features)[0]


def test_grid_sizes_are_the_fpn_outputs():
    # 333 x 517 rounds up at every stride-2 conv: P3 42 x 65 … P7 3 x 5
    features = FPN((8, 16, 32), 8)(
        (torch.zeros(1, 8, 42, 65), torch.zeros(1, 16, 21, 33), torch.zeros(1, 32, 11, 17))
    )
    assert pyramid_grid_sizes((333, 517)) == [tuple(f.shape[-2:]) for f in features]


@pytest.mark.parametrize("image_size", [(256, 256), (800, 800), (800, 1216), (333, 517), (100, 60)])
@pytest.mark.parametrize("preset", ["paper", "torchvision", "cpu"])
def test_anchors_equal_torchvision(image_size, preset):
    config = getattr(RetinaNetConfig, preset)()
    grids = pyramid_grid_sizes(image_size)
    ours = anchors_for_config(config, image_size)
    theirs = torchvision_anchors(image_size, grids, config.anchor_sizes, config.aspect_ratios)
    torch.testing.assert_close(ours, theirs)


def test_anchor_count_for_800_pixels():
    # 9 anchors × (100² + 50² + 25² + 13² + 7²) positions = 9 × 13343 = 120087
    assert anchors_for_config(RetinaNetConfig.paper(), (800, 800)).shape == (120087, 4)


def test_cell_anchors_by_hand():
    # Ratio-major: for each r = h/w, every size s; w = s/√r, h = s·√r, half of each rounded.
    #   r = 1/2: s = 32   → w/2 = 16·√2 = 22.63 → 23, h/2 = 16/√2 = 11.31 → 11
    #            s = 40.3 → w/2 = 28.50 → 28 (28.496), h/2 = 14.25 → 14
    #   r = 1:   s = 32   → 16, 16;  s = 40.3 → 20.15 → 20
    #   r = 2:   the r = 1/2 boxes turned by 90°
    expected = torch.tensor(
        [
            [-23.0, -11.0, 23.0, 11.0],
            [-28.0, -14.0, 28.0, 14.0],
            [-16.0, -16.0, 16.0, 16.0],
            [-20.0, -20.0, 20.0, 20.0],
            [-11.0, -23.0, 11.0, 23.0],
            [-14.0, -28.0, 14.0, 28.0],
        ]
    )
    assert torch.equal(cell_anchors([32, 40.3], [0.5, 1.0, 2.0]), expected)


def test_grid_order_is_row_column_anchor():
    cell = cell_anchors([8], [1.0])
    anchors = anchors_for_grid(cell, (2, 3), (10, 10))  # 2 rows × 3 columns × 1 anchor
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    expected = torch.tensor([[0, 0], [10, 0], [20, 0], [0, 10], [10, 10], [20, 10]], dtype=torch.float32)
    torch.testing.assert_close(centres, expected)


def test_best_anchor_iou_covers_boxes_on_anchors():
    config = RetinaNetConfig.paper()
    anchors = anchors_for_image(
        (256, 256), pyramid_grid_sizes((256, 256)), config.anchor_sizes, config.aspect_ratios
    )
    best = best_anchor_iou(anchors[[0, 500, 1000]], anchors)
    torch.testing.assert_close(best, torch.ones(3))
    assert best_anchor_iou(torch.zeros(0, 4), anchors).shape == (0,)
