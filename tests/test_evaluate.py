"""COCO evaluation: checked against hand computations and against pycocotools run directly."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch import nn

from retina_edu.data.coco import CocoFormatError
from retina_edu.evaluate import (
    STAT_NAMES,
    batches_of_one_size,
    coco_evaluate,
    detections_to_coco_results,
    evaluate_model,
    main,
    write_results,
)

# ---------------------------------------------------------------- helpers: files written by hand


def ann(ann_id: int, image_id: int, category_id: int, xywh: list[float], iscrowd: int = 0) -> dict:
    """One COCO ground-truth annotation; area is w * h as for a box."""
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": xywh,
        "area": xywh[2] * xywh[3],
        "iscrowd": iscrowd,
    }


def write_gt(path: Path, image_ids: list[int], annotations: list[dict], categories: dict) -> Path:
    """A COCO annotation file with 200x200 images and ``categories`` {id: name}."""
    path.write_text(
        json.dumps(
            {
                "images": [
                    {"id": i, "file_name": f"{i}.png", "width": 200, "height": 200} for i in image_ids
                ],
                "annotations": annotations,
                "categories": [{"id": c, "name": n} for c, n in categories.items()],
            }
        )
    )
    return path


def det(boxes_xyxy: list[list[float]], scores: list[float], labels: list[int]) -> dict:
    """A model output for one image."""
    return {
        "boxes": torch.tensor(boxes_xyxy, dtype=torch.float32).reshape(-1, 4),
        "scores": torch.tensor(scores, dtype=torch.float32),
        "labels": torch.tensor(labels, dtype=torch.int64),
    }


def pycocotools_stats(gt_path: Path, results: list[dict]) -> np.ndarray:
    """The twelve numbers from pycocotools alone, with no code of ours in the way."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        coco_eval = COCOeval(gt, gt.loadRes(copy.deepcopy(results)), iouType="bbox")
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval.stats


def quiet_coco(path: Path) -> COCO:
    """A pycocotools ground truth loaded without its progress lines."""
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def stats_array(stats: dict[str, float]) -> np.ndarray:
    return np.array([stats[name] for name in STAT_NAMES])


CATS = {1: "circle", 3: "square", 90: "star"}  # COCO-like: ids not contiguous
LABEL_TO_CAT = [1, 3, 90]  # labels 0, 1, 2


@pytest.fixture
def gt_three(tmp_path: Path) -> tuple[Path, dict[int, list[dict]]]:
    """Two images, three categories, boxes of all sizes; returns the file and the gt per image."""
    anns = [
        ann(1, 10, 1, [10, 10, 20, 20]),  # small (400 < 32²)
        ann(2, 10, 3, [50, 40, 60, 50]),  # medium
        ann(3, 10, 90, [5, 100, 120, 90]),  # large
        ann(4, 20, 1, [100, 100, 50, 40]),
        ann(5, 20, 1, [0, 0, 30, 30]),
    ]
    per_image = {10: anns[:3], 20: anns[3:]}
    return write_gt(tmp_path / "gt.json", [10, 20], anns, CATS), per_image


def gt_as_detections(per_image: dict[int, list[dict]], shift: float = 0.0) -> list[dict]:
    """The ground truth itself as model output (score 1), boxes moved right by shift × width."""
    cat_to_label = {c: k for k, c in enumerate(LABEL_TO_CAT)}
    out = []
    for anns in per_image.values():
        boxes = [[x + shift * w, y, x + w + shift * w, y + h] for x, y, w, h in (a["bbox"] for a in anns)]
        out.append(det(boxes, [1.0] * len(anns), [cat_to_label[a["category_id"]] for a in anns]))
    return out


# ---------------------------------------------------------------- conversion


def test_detections_to_coco_results_converts_boxes_and_maps_labels():
    dets = [
        det([[10, 20, 30, 60], [0.5, 1.25, 2.5, 3.0]], [0.9, 0.123456789], [1, 2]),
        det([], [], []),
    ]
    results = detections_to_coco_results(dets, [7, 8], LABEL_TO_CAT)
    assert results == [
        {"image_id": 7, "category_id": 3, "bbox": [10.0, 20.0, 20.0, 40.0], "score": 0.9},
        {"image_id": 7, "category_id": 90, "bbox": [0.5, 1.25, 2.0, 1.75], "score": 0.12346},
    ]
    json.dumps(results)  # plain Python numbers only


@pytest.mark.parametrize(
    "dets, image_ids, match",
    [
        ([det([[0, 0, 1, 1]], [0.5], [0])], [1, 2], "one image id per"),
        ([det([[0, 0, float("nan"), 1]], [0.5], [0])], [1], "NaN"),
        ([det([[0, 0, 1, 1]], [float("inf")], [0])], [1], "NaN"),
        ([det([[0, 0, 1, 1]], [0.5], [3])], [1], "labels must be integers in 0..2"),
        ([det([[0, 0, 1, 1]], [0.5], [-1])], [1], "labels must be integers"),
        ([det([[0, 0, 1, 1], [0, 0, 2, 2]], [0.5], [0, 0])], [1], "need boxes"),
        ([det([[5, 0, 1, 1]], [0.5], [0])], [1], "x2 >= x1"),
    ],
)
def test_detections_to_coco_results_rejects_bad_input(dets, image_ids, match):
    with pytest.raises(ValueError, match=match):
        detections_to_coco_results(dets, image_ids, LABEL_TO_CAT)


def test_write_results_round_trip(tmp_path, gt_three):
    gt_path, per_image = gt_three
    results = detections_to_coco_results(gt_as_detections(per_image), [10, 20], LABEL_TO_CAT)
    path = write_results(results, tmp_path / "out" / "results.json")
    assert json.loads(path.read_text()) == results
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools reads the file as its own
        assert len(COCO(str(gt_path)).loadRes(str(path)).getAnnIds()) == len(results)


# ---------------------------------------------------------------- AP against known answers


def test_perfect_detections_give_ap_1(gt_three):
    gt_path, per_image = gt_three
    results = detections_to_coco_results(gt_as_detections(per_image), [10, 20], LABEL_TO_CAT)
    stats = coco_evaluate(gt_path, results, verbose=False).stats
    assert list(stats) == list(STAT_NAMES)
    for name in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100"):
        assert stats[name] == pytest.approx(1.0), name


def test_detections_shifted_below_iou_half_give_ap_0(gt_three):
    gt_path, per_image = gt_three
    # shifted right by 0.6 w: IoU = 0.4 / 1.6 = 0.25 < 0.5 for every box
    dets = gt_as_detections(per_image, shift=0.6)
    stats = coco_evaluate(
        gt_path, detections_to_coco_results(dets, [10, 20], LABEL_TO_CAT), verbose=False
    ).stats
    assert stats["AP"] == 0.0 and stats["AP50"] == 0.0 and stats["AR100"] == 0.0


@pytest.fixture
def hand_case(tmp_path: Path):
    """Two gt boxes of one class: a hit at IoU 0.82 (score 0.9), a false positive (0.8), a miss."""
    anns = [ann(1, 1, 1, [0, 0, 100, 100]), ann(2, 1, 1, [120, 120, 60, 60])]
    gt_path = write_gt(tmp_path / "gt.json", [1], anns, {1: "thing"})
    dets = [det([[0, 0, 100, 82], [150, 0, 190, 40]], [0.9, 0.8], [0, 0])]
    by_hand = [  # the same detections typed as COCO results, for pycocotools on its own
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 100, 82], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [150, 0, 40, 40], "score": 0.8},
    ]
    return gt_path, dets, by_hand


def test_hand_computed_case_matches_pycocotools_and_hand_arithmetic(hand_case):
    gt_path, dets, by_hand = hand_case
    result = coco_evaluate(gt_path, detections_to_coco_results(dets, [1], [1]), verbose=False)
    np.testing.assert_allclose(stats_array(result.stats), pycocotools_stats(gt_path, by_hand))
    # By hand, at IoU 0.5: ranked TP (0.9), FP (0.8) → recall 0.5, 0.5; precision 1, 0.5.
    # The interpolated precision is 1 at the 51 recall thresholds 0.00..0.50 and 0 at the 50
    # above (recall never passes 0.5): AP50 = 51 / 101.
    ap50 = 51 / 101
    assert result.stats["AP50"] == pytest.approx(ap50)
    # The hit has IoU 8200 / 10000 = 0.82: a TP at the 7 thresholds 0.50..0.80, a FP at the 3
    # thresholds 0.85..0.95 (AP 0 there). AP = 7/10 × 51/101; AR100 = 7/10 × 1/2.
    assert result.stats["AP"] == pytest.approx(0.7 * ap50)
    assert result.stats["AP75"] == pytest.approx(ap50)
    assert result.stats["AR100"] == pytest.approx(0.35)
    assert result.per_class_ap() == {"thing": pytest.approx(0.7 * ap50)}


def test_precision_recall_curve(hand_case):
    gt_path, dets, _ = hand_case
    result = coco_evaluate(gt_path, detections_to_coco_results(dets, [1], [1]), verbose=False)
    recall, precision = result.precision_recall()
    assert recall.shape == (101,) and precision.shape == (101,)
    np.testing.assert_allclose(recall, np.linspace(0, 1, 101))
    assert ((precision >= 0) & (precision <= 1)).all()
    # see the hand case above; pycocotools divides by tp + fp + 2e-16, so 1 is 1 - 2e-16
    np.testing.assert_allclose(precision, [1.0] * 51 + [0.0] * 50, atol=1e-12)
    _, precision_90 = result.precision_recall(category_id=1, iou=0.9)
    assert (precision_90 == 0).all()  # IoU 0.82 < 0.9: no true positive
    for kwargs, match in [
        ({"iou": 0.52}, "iou must be one of"),
        ({"area": "tiny"}, "area must be one of"),
        ({"max_dets": 5}, "max_dets must be one of"),
        ({"category_id": 2}, "not in"),
        ({"area": "small"}, "no ground truth"),  # neither gt box is small
    ]:
        with pytest.raises(ValueError, match=match):
            result.precision_recall(**kwargs)


def test_noncontiguous_category_ids_land_on_the_right_classes(tmp_path):
    anns = [
        ann(1, 5, 1, [10, 10, 40, 40]),
        ann(2, 5, 3, [100, 10, 40, 40]),
        ann(3, 5, 90, [10, 100, 60, 60]),
    ]
    gt_path = write_gt(tmp_path / "gt.json", [5], anns, CATS)
    dets = [det([[10, 10, 50, 50], [100, 10, 140, 50], [10, 100, 70, 160]], [0.9] * 3, [0, 1, 2])]
    right = coco_evaluate(gt_path, detections_to_coco_results(dets, [5], LABEL_TO_CAT), verbose=False)
    assert right.stats["AP"] == pytest.approx(1.0)
    assert right.per_class_ap() == pytest.approx({"circle": 1.0, "square": 1.0, "star": 1.0})
    assert right.per_class_ap(by_name=False) == pytest.approx({1: 1.0, 3: 1.0, 90: 1.0})
    # Swapping labels 0 and 1 puts two detections on the wrong class: only "star" is found.
    wrong = coco_evaluate(gt_path, detections_to_coco_results(dets, [5], [3, 1, 90]), verbose=False)
    assert wrong.stats["AP"] == pytest.approx(1 / 3)
    assert wrong.per_class_ap() == pytest.approx({"circle": 0.0, "square": 0.0, "star": 1.0})


@pytest.mark.parametrize("on_crowd", [False, True])
def test_crowd_regions_are_neither_misses_nor_false_positives(tmp_path, on_crowd):
    def gt(iscrowd: int) -> Path:
        anns = [ann(1, 1, 1, [10, 10, 50, 50]), ann(2, 1, 1, [80, 80, 100, 100], iscrowd=iscrowd)]
        return write_gt(tmp_path / f"gt_crowd{iscrowd}.json", [1], anns, {1: "thing"})

    boxes, scores = [[10, 10, 60, 60]], [0.5]
    if on_crowd:  # two higher-scored detections inside the crowd region
        boxes += [[90, 90, 130, 130], [140, 140, 170, 170]]
        scores += [0.95, 0.9]
    dets = [det(boxes, scores, [0] * len(boxes))]
    results = detections_to_coco_results(dets, [1], [1])
    crowd_path = gt(iscrowd=1)
    stats = coco_evaluate(crowd_path, results, verbose=False).stats
    np.testing.assert_allclose(stats_array(stats), pycocotools_stats(crowd_path, results))
    assert stats["AP"] == pytest.approx(1.0) and stats["AR100"] == pytest.approx(1.0)
    # Control: the same region as an ordinary object is missed (or matched by one detection
    # while the other is a false positive), and AP falls below 1.
    assert coco_evaluate(gt(iscrowd=0), results, verbose=False).stats["AP50"] < 0.9


def test_empty_detections_give_ap_0_and_no_nan(gt_three):
    gt_path, _ = gt_three
    results = detections_to_coco_results([det([], [], []), det([], [], [])], [10, 20], LABEL_TO_CAT)
    assert results == []
    result = coco_evaluate(gt_path, results, verbose=False)
    assert all(math.isfinite(v) for v in result.stats.values())
    assert result.stats["AP"] == 0.0 and result.stats["AR100"] == 0.0
    assert result.per_class_ap() == {"circle": 0.0, "square": 0.0, "star": 0.0}
    recall, precision = result.precision_recall()
    assert recall.shape == precision.shape == (101,) and (precision == 0).all()


def test_class_without_ground_truth_is_absent_from_per_class_ap(tmp_path):
    gt_path = write_gt(tmp_path / "gt.json", [1], [ann(1, 1, 1, [10, 10, 50, 50])], CATS)
    # a hit on "circle" and a detection of "square", which has no ground truth anywhere
    dets = [det([[10, 10, 60, 60], [100, 100, 150, 150]], [0.9, 0.8], [0, 1])]
    result = coco_evaluate(gt_path, detections_to_coco_results(dets, [1], LABEL_TO_CAT), verbose=False)
    assert result.per_class_ap() == pytest.approx({"circle": 1.0})
    assert result.stats["AP"] == pytest.approx(1.0)  # pycocotools averages over classes with gt


def test_unknown_image_raises_and_unknown_category_warns(hand_case):
    gt_path, _, by_hand = hand_case
    with pytest.raises(ValueError, match="image ids not in the ground truth"):
        coco_evaluate(gt_path, [{**by_hand[0], "image_id": 99}], verbose=False)
    with pytest.warns(UserWarning, match="category ids \\[7\\]"):
        result = coco_evaluate(gt_path, [*by_hand, {**by_hand[0], "category_id": 7}], verbose=False)
    np.testing.assert_allclose(stats_array(result.stats), pycocotools_stats(gt_path, by_hand))
    with pytest.raises(ValueError, match="iou_type"):
        coco_evaluate(gt_path, by_hand, iou_type="keypoints")


def test_verbose_prints_pycocotools_summary_and_quiet_prints_nothing(hand_case, capsys):
    gt_path, _, by_hand = hand_case
    result = coco_evaluate(quiet_coco(gt_path), by_hand, verbose=False)
    assert capsys.readouterr().out == ""
    assert "Average Precision  (AP) @[ IoU=0.50      |" in result.summary
    coco_evaluate(gt_path, by_hand, verbose=True)
    assert capsys.readouterr().out == result.summary


# ---------------------------------------------------------------- evaluate_model


class FakeDataset:
    """Images whose pixels hold their image id / 255; the attributes of ``CocoDetection``.

    ``pixel_ids`` (default ``image_ids``) lets the pixels say another id than ``image_ids``.
    """

    def __init__(self, ann_file: Path, image_ids: list[int], pixel_ids: list[int] | None = None):
        self.ann_file = ann_file
        self.image_ids = image_ids
        self.pixel_ids = image_ids if pixel_ids is None else pixel_ids
        self.label_to_category_id = LABEL_TO_CAT
        self.class_names = [CATS[c] for c in LABEL_TO_CAT]

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict]:
        image = torch.full((3, 200, 180 + i), self.pixel_ids[i] / 255)
        return image, {"image_id": self.image_ids[i]}


class GroundTruthModel(nn.Module):
    """Returns the ground truth of each image (found by the id in its pixels); checks the call."""

    def __init__(self, per_image: dict[int, list[dict]]):
        super().__init__()
        self.detections = dict(zip(per_image, gt_as_detections(per_image), strict=True))
        self.scale = nn.Parameter(torch.ones(()))  # something for .to(device) to move

    def forward(self, images: list[torch.Tensor]) -> list[dict]:
        assert not self.training and torch.is_inference_mode_enabled()
        return [self.detections[round(float(image[0, 0, 0]) * 255)] for image in images]


def test_evaluate_model_on_ground_truth_gives_ap_1(tmp_path):
    anns = [
        ann(k + 1, image_id, 1 + 2 * (k % 2), [10 * k, 5, 40, 30]) for k, image_id in enumerate([7, 3, 11])
    ]
    per_image = {7: [anns[0]], 3: [anns[1]], 11: [anns[2]]}
    gt_path = write_gt(tmp_path / "gt.json", [3, 7, 11], anns, CATS)
    model = GroundTruthModel(per_image).train()
    dataset = FakeDataset(gt_path, [7, 3, 11])  # data set order is not id order
    result = evaluate_model(model, dataset, batch_size=2, progress=False, verbose=False)
    assert result.stats["AP"] == pytest.approx(1.0)
    assert model.training  # restored
    assert [r["image_id"] for r in result.results] == [7, 3, 11]
    # outputs credited to the wrong images score low: the check can fail
    mixed_up = FakeDataset(gt_path, [3, 7, 11], pixel_ids=[7, 3, 11])
    assert evaluate_model(model, mixed_up, progress=False, verbose=False).stats["AP"] < 0.5


def test_command_line_end_to_end(tmp_path, gt_three, monkeypatch, capsys):
    Image = pytest.importorskip("PIL.Image")
    import retina_edu.checkpoint as checkpoint
    from retina_edu.config import RetinaNetConfig

    gt_path, per_image = gt_three
    image_dir = tmp_path / "images"
    image_dir.mkdir()
    for image_id in per_image:  # 200x200 images whose pixels hold their id, as gt_three says
        Image.new("RGB", (200, 200), (image_id,) * 3).save(image_dir / f"{image_id}.png")
    state = {  # what a checkpoint trained on these three categories holds, less the weights
        "config": checkpoint.config_to_dict(RetinaNetConfig.cpu(num_classes=3)),
        "label_to_category_id": LABEL_TO_CAT,
        "class_names": [CATS[c] for c in LABEL_TO_CAT],
    }
    model_file = tmp_path / "model.pt"
    model_file.touch()  # exists, as the command line checks; the loader below stands in for it
    monkeypatch.setattr(checkpoint, "load_checkpoint", lambda path, map_location="cpu": state)
    monkeypatch.setattr(checkpoint, "model_from_checkpoint", lambda path, s: GroundTruthModel(per_image))
    out_path = tmp_path / "results.json"
    argv = ["--checkpoint", str(model_file), "--ann-file", str(gt_path), "--image-dir", str(image_dir)]
    result = main([*argv, "--batch-size", "1", "--results-out", str(out_path)])
    assert result.stats["AP"] == pytest.approx(1.0)
    out = capsys.readouterr().out
    assert "AP=1.000" in out and "AR100=1.000" in out
    assert [line.split()[0] for line in out.splitlines()[-3:]] == ["circle", "square", "star"]
    assert len(json.loads(out_path.read_text())) == 5


def test_command_line_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in (
        "--checkpoint",
        "--ann-file",
        "--image-dir",
        "--batch-size",
        "--results-out",
        "--device",
    ):
        assert flag in out


# ---------------------------------------------------------------- ground truth checked up front


def test_duplicate_annotation_ids_are_refused(tmp_path):
    # pycocotools would keep one of the two and score the file's own boxes far below AP 1
    anns = [ann(1, 1, 1, [0, 0, 50, 50]), ann(1, 1, 1, [100, 100, 50, 50])]
    gt_path = write_gt(tmp_path / "gt.json", [1], anns, {1: "thing"})
    with pytest.raises(CocoFormatError, match=r"gt\.json: annotations\[1\] \(id 1\) repeats the id"):
        coco_evaluate(gt_path, [], verbose=False)


def test_a_file_without_area_and_iscrowd_scores_as_the_full_file(tmp_path, gt_three):
    full_path, per_image = gt_three
    full = json.loads(full_path.read_text())
    for a in full["annotations"]:
        del a["area"], a["iscrowd"]
    bare_path = tmp_path / "bare.json"
    bare_path.write_text(json.dumps(full))
    results = detections_to_coco_results(gt_as_detections(per_image, shift=0.3), [10, 20], LABEL_TO_CAT)
    bare = coco_evaluate(bare_path, results, verbose=False).stats
    np.testing.assert_allclose(stats_array(bare), pycocotools_stats(full_path, results))
    assert 0 < bare["AP"] < 1  # shifted by 0.3 w: some IoU thresholds pass, some do not


def test_a_box_with_no_area_is_ignored_not_counted_as_a_miss(tmp_path):
    anns = [ann(1, 1, 1, [10, 10, 50, 50]), ann(2, 1, 1, [80, 80, 0, 30])]  # the second: zero width
    gt_path = write_gt(tmp_path / "gt.json", [1], anns, {1: "thing"})
    results = detections_to_coco_results([det([[10, 10, 60, 60]], [0.9], [0])], [1], [1])
    stats = coco_evaluate(gt_path, results, verbose=False).stats
    assert stats["AP"] == pytest.approx(1.0) and stats["AR100"] == pytest.approx(1.0)
    # pycocotools on the raw file counts it as an object nothing can find: recall 1/2
    assert pycocotools_stats(gt_path, results)[8] == pytest.approx(0.5)


def test_batches_of_one_size_by_hand():
    sizes = [(4, 6), (6, 4), (4, 6), (4, 6), (6, 4), (5, 5)]
    assert batches_of_one_size(sizes, 2) == [[0, 2], [3], [1, 4], [5]]
    assert batches_of_one_size([(8, 8)] * 5, 2) == [[0, 1], [2, 3], [4]]  # one size: plain slices


def test_detections_do_not_depend_on_the_batch_size(tmp_path):
    """GroupNorm heads see the padding of a batch of mixed sizes; evaluation never pads."""
    from PIL import Image

    from retina_edu import RetinaNet, RetinaNetConfig
    from retina_edu.data.coco import CocoDetection

    sizes = [(40, 64), (64, 40), (48, 80), (40, 64), (80, 48), (64, 40), (40, 64)]  # (h, w)
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i, (h, w) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        images.append({"id": i + 1, "file_name": f"{i}.png", "width": w, "height": h})
        anns.append(ann(i + 1, i + 1, 1, [5, 5, 20, 15]))
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(
        json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "a"}]})
    )
    dataset = CocoDetection(gt_path, tmp_path)
    config = RetinaNetConfig.cpu(num_classes=1).replace(
        small_trunk_channels=(8, 16, 32, 64), fpn_channels=64, min_size=64, max_size=96, prior_prob=0.2
    )  # prior 0.2: an untrained model with many detections above the 0.05 threshold
    assert config.head_norm == "group"
    torch.manual_seed(0)
    model = RetinaNet(config).eval()
    one = evaluate_model(model, dataset, batch_size=1, progress=False, verbose=False).results
    five = evaluate_model(model, dataset, batch_size=5, progress=False, verbose=False).results
    assert len(one) == len(five) == 100 * len(sizes)  # detections_per_img for every image
    assert [r["image_id"] for r in one] == sorted(r["image_id"] for r in one)  # in the file's order
    for image_id in range(1, len(sizes) + 1):
        a, b = ([r for r in results if r["image_id"] == image_id] for results in (one, five))
        # equal up to float rounding (convolutions may sum in another order for another batch)
        np.testing.assert_allclose([r["score"] for r in a], [r["score"] for r in b], atol=1e-4)
        np.testing.assert_allclose([r["bbox"] for r in a], [r["bbox"] for r in b], atol=0.05)
    # control: the first five images padded into one batch give scores 0.01-0.02 away
    with torch.inference_mode():
        together = model([dataset[i][0] for i in range(5)])
        alone = [model([dataset[i][0]])[0] for i in range(5)]
    gaps = [(a["scores"] - t["scores"]).abs().max().item() for a, t in zip(alone, together, strict=True)]
    assert max(gaps) > 1e-3
