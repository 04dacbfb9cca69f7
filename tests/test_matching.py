import pytest
import torch
from torchvision.models.detection._utils import Matcher

from retina_edu.matching import BACKGROUND, IGNORED, match_anchors

torchvision_matcher = Matcher(0.5, 0.4, allow_low_quality_matches=True)


def test_sentinels_are_torchvision_values():
    assert (BACKGROUND, IGNORED) == (Matcher.BELOW_LOW_THRESHOLD, Matcher.BETWEEN_THRESHOLDS)


@pytest.mark.parametrize("num_gt,num_anchors", [(1, 10), (4, 100), (30, 2000)])
def test_equals_torchvision(gen, num_gt, num_anchors):
    iou = torch.rand(num_gt, num_anchors, generator=gen) * 0.7
    torch.testing.assert_close(match_anchors(iou), torchvision_matcher(iou))


def test_ties_equal_torchvision(gen):
    # IoUs on a coarse grid produce many ties, both per anchor and per object
    iou = (torch.rand(6, 300, generator=gen) * 6).floor() / 10  # values in {0, 0.1, …, 0.5}
    iou[3] = iou[1]  # two identical objects
    torch.testing.assert_close(match_anchors(iou), torchvision_matcher(iou))


def test_low_quality_match_by_hand():
    # object 0 overlaps anchors at most 0.3: its best anchor (2) still gets it
    iou = torch.tensor([[0.1, 0.2, 0.3, 0.0], [0.0, 0.45, 0.0, 0.9]])
    assert match_anchors(iou).tolist() == [BACKGROUND, IGNORED, 0, 1]
    assert match_anchors(iou, allow_low_quality_matches=False).tolist() == [
        BACKGROUND,
        IGNORED,
        BACKGROUND,
        1,
    ]


def test_no_objects_means_all_background():
    assert match_anchors(torch.zeros(0, 7)).tolist() == [BACKGROUND] * 7


def test_batched_with_padding_equals_per_image(gen):
    counts = [3, 0, 5]
    per_image = [torch.rand(n, 400, generator=gen) * 0.8 for n in counts]
    padded = torch.zeros(3, 5, 400)
    for b, iou in enumerate(per_image):
        padded[b, : len(iou)] = iou
        padded[b, len(iou) :] = torch.rand(5 - len(iou), 400, generator=gen)  # junk: must be ignored
    batched = match_anchors(padded, num_gt=torch.tensor(counts))
    for b, iou in enumerate(per_image):
        expected = torchvision_matcher(iou) if len(iou) else torch.full((400,), BACKGROUND)
        torch.testing.assert_close(batched[b], expected)
