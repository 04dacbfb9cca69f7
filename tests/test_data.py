"""The data package: the synthetic generator, the COCO reader, transforms and collate.

Each check compares with something independent of the code under test: file hashes, the JSON
numbers, the drawn pixels, pycocotools, ``torch.flip`` and hand computations.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools.coco import COCO
from torch.utils.data import DataLoader
from torchvision.ops import box_iou

import retina_edu.data.synthetic as synthetic_module
from retina_edu.data import (
    CLASS_NAMES,
    CocoDetection,
    CocoFormatError,
    Compose,
    RandomHorizontalFlip,
    Resize,
    collate,
    ensure_synthetic_dataset,
    load_split,
    make_synthetic_coco,
)
from retina_edu.data.coco import ImageFileError, read_ground_truth

NUM_IMAGES = 40  # enough for every class and both ends of the size range, still well under a second
IMAGE_SIZE = 128
COLOUR_MATCH = 0.2  # RGB distance in [0, 1] units: with contrast >= 0.5, a match is >50% object
TIGHT_PX = 1.5  # the drawn pixels reach each side of the box to within this


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _xyxy(bbox: list[float]) -> list[float]:
    x, y, w, h = bbox
    return [x, y, x + w, y + h]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synthetic")
    ann_file = make_synthetic_coco(root, "train", NUM_IMAGES, seed=0)
    return ann_file, json.loads(ann_file.read_text())


def _annotations_by_image(coco: dict) -> dict[int, list[dict]]:
    by_image: dict[int, list[dict]] = {image["id"]: [] for image in coco["images"]}
    for ann in coco["annotations"]:
        by_image[ann["image_id"]].append(ann)
    return by_image


# --- the generator -------------------------------------------------------------------------------


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        make_synthetic_coco(tmp_path / name, "train", 3, seed=seed)
    a, b, c = (_hashes(tmp_path / name) for name in "abc")
    assert len(a) == 4  # 3 PNGs + 1 JSON
    assert a == b
    assert all(a[name] != c[name] for name in a)


@pytest.mark.filterwarnings("error::DeprecationWarning")  # Python 3.12+ warns when a threaded process forks
def test_drawing_in_several_processes_gives_the_same_files(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic_module, "CHUNK_IMAGES", 2)  # 4 images: 2 chunks
    make_synthetic_coco(tmp_path / "one", "train", 4, seed=0, workers=1)
    make_synthetic_coco(tmp_path / "two", "train", 4, seed=0, workers=2)
    assert _hashes(tmp_path / "one") == _hashes(tmp_path / "two")


def test_an_image_does_not_depend_on_the_count_and_splits_differ(tmp_path):
    make_synthetic_coco(tmp_path / "short", "train", 2, seed=0)
    make_synthetic_coco(tmp_path / "long", "train", 3, seed=0)
    make_synthetic_coco(tmp_path / "long", "val", 2, seed=0)
    short, long = _hashes(tmp_path / "short"), _hashes(tmp_path / "long")
    for name in ("train/000000.png", "train/000001.png"):
        assert short[name] == long[name]
        assert long[name] != long[name.replace("train", "val")]


def test_boxes_lie_inside_the_image_and_have_positive_size(synthetic):
    _, coco = synthetic
    boxes = np.array([_xyxy(a["bbox"]) for a in coco["annotations"]])
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= IMAGE_SIZE).all()
    assert (boxes[:, 2:] > boxes[:, :2]).all()
    counts = [len(anns) for anns in _annotations_by_image(coco).values()]
    assert min(counts) >= 2 and max(counts) <= 8


def test_objects_of_an_image_overlap_by_iou_at_most_0_1(synthetic):
    _, coco = synthetic
    for anns in _annotations_by_image(coco).values():
        boxes = torch.tensor([_xyxy(a["bbox"]) for a in anns], dtype=torch.float64)
        iou = box_iou(boxes, boxes) - torch.eye(len(boxes), dtype=torch.float64)
        assert iou.max() <= 0.1 + 1e-6


def test_every_class_appears_and_sizes_span_small_and_large(synthetic):
    _, coco = synthetic
    assert {a["category_id"] for a in coco["annotations"]} == set(range(1, len(CLASS_NAMES) + 1))
    sizes = np.array([math.sqrt(a["bbox"][2] * a["bbox"][3]) for a in coco["annotations"]])
    assert (sizes < 24).any() and (sizes > 64).any()
    assert sizes.min() >= 12 - 0.01 and sizes.max() <= 88 + 0.01


def test_drawn_pixels_fill_their_box_tightly(synthetic):
    """Pixels of the object's colour (more than half covered by it) lie inside the box and reach
    each of its sides; checked on objects whose box, widened by 2 px, touches no other box."""
    ann_file, coco = synthetic
    checked = 0
    for image in coco["images"]:
        pixels = np.asarray(Image.open(ann_file.parents[1] / "train" / image["file_name"])) / 255.0
        anns = _annotations_by_image(coco)[image["id"]]
        boxes = torch.tensor([_xyxy(a["bbox"]) for a in anns])
        widened = boxes + torch.tensor([-2.0, -2.0, 2.0, 2.0])
        touching = (box_iou(widened, boxes) > 0).sum(dim=1) > 1
        for ann, (x1, y1, x2, y2), touches in zip(anns, boxes.tolist(), touching, strict=True):
            if touches:
                continue
            left, top = max(math.floor(x1) - 2, 0), max(math.floor(y1) - 2, 0)
            window = pixels[top : math.ceil(y2) + 2, left : math.ceil(x2) + 2]  # no other box here
            distance = np.linalg.norm(window - np.array(ann["color"]) / 255.0, axis=-1)
            rows, cols = np.nonzero(distance < COLOUR_MATCH)
            rows, cols = rows + top, cols + left  # (P,) image coordinates of the matches
            assert len(rows) >= 0.5 * ann["area"], ann
            assert cols.min() >= math.floor(x1) and cols.max() + 1 <= math.ceil(x2), ann
            assert rows.min() >= math.floor(y1) and rows.max() + 1 <= math.ceil(y2), ann
            gaps = [cols.min() - x1, rows.min() - y1, x2 - cols.max() - 1, y2 - rows.max() - 1]
            assert max(gaps) <= TIGHT_PX, (ann, gaps)
            checked += 1
    assert checked >= NUM_IMAGES // 2


def test_ensure_makes_the_splits_once_and_remakes_on_new_parameters(tmp_path):
    paths = ensure_synthetic_dataset(tmp_path, train_images=3, val_images=2, seed=0)
    assert paths["root"] == tmp_path
    assert [len(json.loads(paths[s].read_text())["images"]) for s in ("train", "val")] == [3, 2]
    stamp = paths["train"].stat().st_mtime_ns
    ensure_synthetic_dataset(tmp_path, train_images=3, val_images=2, seed=0)
    assert paths["train"].stat().st_mtime_ns == stamp  # up to date: not rewritten
    ensure_synthetic_dataset(tmp_path, train_images=2, val_images=2, seed=0)
    assert len(json.loads(paths["train"].read_text())["images"]) == 2
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == ["000000.png", "000001.png"]


# --- the reader ----------------------------------------------------------------------------------


def test_reader_round_trips_the_generated_file(synthetic):
    ann_file, coco = synthetic
    dataset = CocoDetection(ann_file, ann_file.parents[1] / "train")
    assert dataset.class_names == list(CLASS_NAMES) and dataset.num_classes == 5
    assert dataset.image_ids == [image["id"] for image in coco["images"]]
    by_image = _annotations_by_image(coco)
    for i in (0, 1, NUM_IMAGES - 1):
        image, target = dataset[i]
        assert image.shape == (3, IMAGE_SIZE, IMAGE_SIZE) and image.dtype == torch.float32
        assert 0 <= image.min() and image.max() <= 1
        anns = by_image[target["image_id"]]
        expected = torch.tensor([_xyxy(a["bbox"]) for a in anns], dtype=torch.float32)
        torch.testing.assert_close(target["boxes"], expected)
        assert target["labels"].tolist() == [a["category_id"] - 1 for a in anns]


def test_pycocotools_reads_the_generated_file_and_agrees_with_the_reader(synthetic):
    ann_file, _ = synthetic
    reference = COCO(str(ann_file))
    dataset = CocoDetection(ann_file, ann_file.parents[1] / "train")
    assert sorted(reference.getImgIds()) == sorted(dataset.image_ids)
    assert sorted(reference.getCatIds()) == dataset.label_to_category_id
    for i, image_id in enumerate(dataset.image_ids):
        assert len(dataset.target(i)["boxes"]) == len(reference.getAnnIds(imgIds=[image_id]))


def _hand_written(tmp_path: Path) -> Path:
    """Categories 90, 1, 3 (out of order); a crowd, a zero-width and an off-image box; an RGB,
    a grayscale and an RGBA image, the last with no annotations."""
    Image.new("RGB", (20, 10), (10, 20, 30)).save(tmp_path / "rgb.png")
    Image.new("L", (8, 6), 100).save(tmp_path / "gray.png")
    Image.new("RGBA", (5, 5), (200, 150, 100, 7)).save(tmp_path / "rgba.png")
    coco = {
        "images": [
            {"id": 7, "file_name": "rgb.png", "width": 20, "height": 10},
            {"id": 3, "file_name": "gray.png", "width": 8, "height": 6},
            {"id": 11, "file_name": "rgba.png", "width": 5, "height": 5},
        ],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 90, "bbox": [1, 2, 3, 4]},
            {"id": 2, "image_id": 7, "category_id": 1, "bbox": [0, 0, 5, 5], "iscrowd": 1},
            {"id": 3, "image_id": 7, "category_id": 3, "bbox": [15, 5, 10, 10]},  # clipped
            {"id": 4, "image_id": 3, "category_id": 1, "bbox": [2, 2, 0, 3]},  # zero width
            {"id": 5, "image_id": 3, "category_id": 1, "bbox": [0.5, 1.5, 2, 2]},
            {"id": 6, "image_id": 3, "category_id": 3, "bbox": [10, 1, 2, 2]},  # off the image
        ],
        "categories": [
            {"id": 90, "name": "toothbrush"},
            {"id": 1, "name": "person"},
            {"id": 3, "name": "car"},
        ],
    }
    ann_file = tmp_path / "hand.json"
    ann_file.write_text(json.dumps(coco))
    return ann_file


def test_hand_written_file_with_gaps_crowd_empty_and_odd_images(tmp_path):
    dataset = CocoDetection(_hand_written(tmp_path), tmp_path)
    assert dataset.label_to_category_id == [1, 3, 90]
    assert dataset.category_id_to_label == {1: 0, 3: 1, 90: 2}
    assert dataset.class_names == ["person", "car", "toothbrush"] and dataset.num_classes == 3
    assert dataset.image_ids == [7, 3, 11] and len(dataset) == 3

    image, target = dataset[0]
    assert image.shape == (3, 10, 20) and target["image_id"] == 7
    torch.testing.assert_close(image[:, 0, 0], torch.tensor([10, 20, 30]) / 255)
    torch.testing.assert_close(target["boxes"], torch.tensor([[1.0, 2, 4, 6], [15, 5, 20, 10]]))
    assert target["labels"].tolist() == [2, 1] and target["labels"].dtype == torch.int64

    image, target = dataset[1]  # grayscale: three equal channels
    assert image.shape == (3, 6, 8)
    torch.testing.assert_close(image, torch.full((3, 6, 8), 100 / 255))
    torch.testing.assert_close(target["boxes"], torch.tensor([[0.5, 1.5, 2.5, 3.5]]))
    assert target["labels"].tolist() == [0]

    image, target = dataset[2]  # RGBA: alpha dropped; no annotations
    torch.testing.assert_close(image[:, 4, 4], torch.tensor([200, 150, 100]) / 255)
    assert target["boxes"].shape == (0, 4) and target["boxes"].dtype == torch.float32
    assert target["labels"].shape == (0,) and target["labels"].dtype == torch.int64


def _valid() -> dict:
    return {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 4, "height": 4},
            {"id": 2, "file_name": "b.png", "width": 4, "height": 4},
        ],
        "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2]}],
        "categories": [{"id": 1, "name": "thing"}],
    }


def _drop(section: str, key: str):
    return lambda d: d[section][0].pop(key) if section in d else d.pop(key)


def _set(section: str, index: int, key: str, value):
    return lambda d: d[section][index].__setitem__(key, value)


MALFORMED = {
    # case: (how to break the valid file, text the message must hold besides the file name)
    "missing images": (lambda d: d.pop("images"), "'images'"),
    "missing annotations": (lambda d: d.pop("annotations"), "'annotations'"),
    "missing categories": (lambda d: d.pop("categories"), "'categories'"),
    "image without id": (_drop("images", "id"), "images[0]"),
    "image without file_name": (_drop("images", "file_name"), "images[0] (id 1) has no file_name"),
    "image without width": (_drop("images", "width"), "images[0] (id 1) has no width"),
    "image without height": (_drop("images", "height"), "images[0] (id 1) has no height"),
    "annotation without bbox": (_drop("annotations", "bbox"), "annotations[0] (id 5) has no bbox"),
    "annotation without image_id": (_drop("annotations", "image_id"), "annotations[0] (id 5)"),
    "annotation without category_id": (
        _drop("annotations", "category_id"),
        "annotations[0] (id 5)",
    ),
    "bbox of 3 numbers": (_set("annotations", 0, "bbox", [0, 0, 2]), "annotations[0] (id 5): bbox"),
    "bbox with a string": (_set("annotations", 0, "bbox", [0, 0, "2", 2]), "annotations[0] (id 5)"),
    "negative width": (_set("annotations", 0, "bbox", [0, 0, -1, 2]), "annotations[0] (id 5)"),
    "negative height": (_set("annotations", 0, "bbox", [0, 0, 1, -2]), "annotations[0] (id 5)"),
    "unknown image": (_set("annotations", 0, "image_id", 9), "annotations[0] (id 5): image_id 9"),
    "unknown category": (_set("annotations", 0, "category_id", 4), "category_id 4"),
    "duplicate image id": (_set("images", 1, "id", 1), "images[1] (id 1) repeats"),
    "category id not an integer": (_set("categories", 0, "id", "1"), "categories[0] (id '1')"),
    # what evaluation relies on, checked up front
    "annotation without id": (_drop("annotations", "id"), "annotations[0] has no id"),
    "image id a string": (_set("images", 0, "id", "1"), "images[0] (id '1'): the id must be an integer"),
    "annotation id a string": (_set("annotations", 0, "id", "5"), "annotations[0] (id '5'): the id"),
    "duplicate annotation id": (
        lambda d: d["annotations"].append({**d["annotations"][0], "bbox": [1, 1, 2, 2]}),
        "annotations[1] (id 5) repeats the id of annotations[0]",
    ),
    "area a string": (_set("annotations", 0, "area", "4"), "annotations[0] (id 5): area must be"),
    "negative area": (_set("annotations", 0, "area", -1), "annotations[0] (id 5): area must be"),
    "iscrowd 2": (_set("annotations", 0, "iscrowd", 2), "annotations[0] (id 5): iscrowd must be 0 or 1"),
}


def test_a_file_that_is_not_json_is_named(tmp_path):
    ann_file = tmp_path / "broken.json"
    ann_file.write_text('{"images": [')
    with pytest.raises(CocoFormatError, match="broken.json: not a JSON file"):
        CocoDetection(ann_file, tmp_path)


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_files_raise_errors_that_name_file_and_entry(tmp_path, case):
    breaks, expected = MALFORMED[case]
    data = copy.deepcopy(_valid())
    breaks(data)
    ann_file = tmp_path / "bad.json"
    ann_file.write_text(json.dumps(data))
    with pytest.raises(CocoFormatError) as error:
        CocoDetection(ann_file, tmp_path)
    assert str(ann_file) in str(error.value) and expected in str(error.value)


def test_missing_or_wrong_sized_image_files_are_named(tmp_path):
    ann_file = tmp_path / "ok.json"
    ann_file.write_text(json.dumps(_valid()))
    Image.new("RGB", (4, 3)).save(tmp_path / "a.png")  # the file says 4 x 4
    dataset = CocoDetection(ann_file, tmp_path)
    with pytest.raises(FileNotFoundError, match=r"b\.png"):
        dataset.check_files()
    with pytest.raises(FileNotFoundError, match=r"images\[1\] \(id 2\).*b\.png"):
        dataset[1]
    with pytest.raises(CocoFormatError, match=r"images\[0\] \(id 1\) says 4x4 .*a\.png is 4x3"):
        dataset[0]


def test_area_and_iscrowd_are_filled_in_where_absent_and_kept_where_given(tmp_path):
    data = _valid()
    data["annotations"].append(
        {"id": 6, "image_id": 2, "category_id": 1, "bbox": [0, 1, 3, 2], "area": 4.5, "iscrowd": 1}
    )
    ann_file = tmp_path / "partial.json"
    ann_file.write_text(json.dumps(data))
    annotations = read_ground_truth(ann_file)["annotations"]
    assert [(a["area"], a["iscrowd"]) for a in annotations] == [(2 * 2, 0), (4.5, 1)]  # w*h, 0
    assert "area" not in data["annotations"][0]  # copies: the caller's dict is not changed


def test_boxes_with_no_area_in_the_image_are_ignored_alike_in_training_and_evaluation(tmp_path):
    ground_truth = read_ground_truth(_hand_written(tmp_path))
    crowd = {a["id"]: a["iscrowd"] for a in ground_truth["annotations"]}
    # 2 is a crowd region in the file; 4 (zero width) and 6 (off the image) have no area inside
    # their image, so evaluation ignores them as training leaves them out (see the test above)
    assert crowd == {1: 0, 2: 1, 3: 0, 4: 1, 5: 0, 6: 1}


def _broken_pngs(folder: Path) -> dict[str, Path]:
    """A good 4x4 PNG, and three broken copies: cut in half, bytes overwritten, empty."""
    Image.new("RGB", (4, 4), (1, 2, 3)).save(folder / "a.png")
    good = (folder / "a.png").read_bytes()
    corrupt = bytearray(good)
    corrupt[40:60] = bytes(20)
    files = {"truncated": good[: len(good) // 2], "corrupt": bytes(corrupt), "empty": b""}
    for name, content in files.items():
        (folder / f"{name}.png").write_bytes(content)
    return {name: folder / f"{name}.png" for name in files}


@pytest.mark.parametrize("broken", ["truncated", "corrupt", "empty"])
def test_an_image_that_cannot_be_decoded_is_named_with_its_entry(tmp_path, broken):
    path = _broken_pngs(tmp_path)[broken]
    data = _valid()
    data["images"][1]["file_name"] = path.name
    ann_file = tmp_path / "ok.json"
    ann_file.write_text(json.dumps(data))
    dataset = CocoDetection(ann_file, tmp_path)
    with pytest.raises(ImageFileError, match=rf"images\[1\] \(id 2\): cannot decode .*{broken}\.png"):
        dataset[1]
    assert dataset[0][0].shape == (3, 4, 4)  # the good one still loads


def test_check_files_names_empty_image_files(tmp_path):
    _broken_pngs(tmp_path)
    data = _valid()
    data["images"][1]["file_name"] = "empty.png"
    ann_file = tmp_path / "ok.json"
    ann_file.write_text(json.dumps(data))
    with pytest.raises(ImageFileError, match=r"1 of 2 image files are empty: .*empty\.png \(images\[1\]"):
        CocoDetection(ann_file, tmp_path).check_files()


# --- transforms and collate ----------------------------------------------------------------------


def _sample() -> tuple[torch.Tensor, dict]:
    image = torch.rand(3, 6, 10, generator=torch.Generator().manual_seed(0))
    boxes = torch.tensor([[1.0, 2.0, 4.0, 5.0], [0.0, 0.0, 10.0, 6.0]])
    return image, {"boxes": boxes, "labels": torch.tensor([0, 3]), "image_id": 1}


def test_flip_matches_torch_flip_and_a_hand_computation():
    image, target = _sample()
    flipped, flipped_target = RandomHorizontalFlip(p=1.0)(image, target)
    torch.testing.assert_close(flipped, torch.flip(image, dims=[2]))
    # W = 10: x1' = 10 - x2, x2' = 10 - x1
    torch.testing.assert_close(flipped_target["boxes"], torch.tensor([[6.0, 2, 9, 5], [0, 0, 10, 6]]))
    assert flipped_target["labels"] is target["labels"] and flipped_target["image_id"] == 1
    torch.testing.assert_close(target["boxes"][0], torch.tensor([1.0, 2, 4, 5]))  # input unchanged
    back, back_target = RandomHorizontalFlip(p=1.0)(flipped, flipped_target)
    torch.testing.assert_close(back, image)
    torch.testing.assert_close(back_target["boxes"], target["boxes"])
    assert RandomHorizontalFlip(p=0.0)(image, target)[0] is image


def test_flip_draws_from_the_given_generator():
    image, target = _sample()

    def coin_flips(seed: int) -> list[bool]:
        flip = RandomHorizontalFlip(generator=torch.Generator().manual_seed(seed))
        return [not torch.equal(flip(image, target)[0], image) for _ in range(32)]

    assert coin_flips(1) == coin_flips(1)
    assert 0 < sum(coin_flips(1)) < 32


@pytest.mark.parametrize(
    ("height", "width", "min_size", "max_size", "expected"),
    [
        (60, 100, 120, 1000, (120, 200)),  # shorter side 60 -> 120: x2
        (50, 200, 100, 300, (75, 300)),  # x2 would make 400 > 300: x1.5
        (128, 128, 128, 128, (128, 128)),  # unchanged
        (7, 10, 10, 100, (10, 14)),  # 14.29 rounds to 14: x by 1.4, y by 1.43
    ],
)
def test_resize_scales_image_and_boxes_alike(height, width, min_size, max_size, expected):
    # a bright rectangle on black: after resizing, the bright pixels must fill the resized box
    box = torch.tensor([[0.2 * width, 0.4 * height, 0.7 * width, 0.9 * height]]).round()
    x1, y1, x2, y2 = box[0].int().tolist()
    image = torch.zeros(3, height, width)
    image[:, y1:y2, x1:x2] = 1.0
    resized, target = Resize(min_size, max_size)(image, {"boxes": box, "labels": torch.tensor([1])})
    assert tuple(resized.shape[-2:]) == expected
    scale_y, scale_x = expected[0] / height, expected[1] / width
    torch.testing.assert_close(target["boxes"], box * torch.tensor([scale_x, scale_y, scale_x, scale_y]))
    rows, cols = torch.nonzero(resized[0] > 0.5, as_tuple=True)
    drawn = torch.tensor([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=torch.float32)
    torch.testing.assert_close(drawn, target["boxes"][0], atol=1.0, rtol=0)


def test_collate_keeps_images_and_targets_as_lists(synthetic):
    ann_file, _ = synthetic
    transforms = Compose([RandomHorizontalFlip(), Resize(64, 64)])
    dataset = CocoDetection(ann_file, ann_file.parents[1] / "train", transforms=transforms)
    images, targets = next(iter(DataLoader(dataset, batch_size=3, collate_fn=collate)))
    assert isinstance(images, list) and isinstance(targets, list)
    assert [tuple(im.shape) for im in images] == [(3, 64, 64)] * 3
    assert [t["image_id"] for t in targets] == dataset.image_ids[:3]
    for target in targets:
        assert target["boxes"].shape == (len(target["labels"]), 4)
        assert (target["boxes"] >= 0).all() and (target["boxes"] <= 64).all()


def test_load_split_without_make_names_the_missing_split_and_writes_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"synthetic val split is not made yet .*instances_val\.json"):
        load_split("val", root=tmp_path, make=False)
    assert list(tmp_path.iterdir()) == []
    ensure_synthetic_dataset(tmp_path, train_images=3, val_images=2)
    assert len(load_split("val", root=tmp_path, make=False)) == 2  # a split that is there loads


def test_the_exercise_checks_do_not_make_the_data_set(tmp_path, monkeypatch):
    from retina_edu.exercises import ch00

    monkeypatch.setenv("RETINA_EDU_HOME", str(tmp_path))  # a data home without the data set
    ch00.paper_fg_fraction_truth.cache_clear()
    verdict = ch00.check_paper_fg_fraction(0.001)
    ch00.paper_fg_fraction_truth.cache_clear()
    assert "the checker itself failed" in repr(verdict) and "not made yet" in repr(verdict)
    assert not any(tmp_path.rglob("*.png"))
