"""A reader for COCO-format detection files: the project's synthetic set or the real COCO.

The file is checked when it is loaded, and every error names the file and the entry that is wrong.
Inside the package boxes are xyxy in pixels and labels are contiguous ``0..K-1``: the category
ids of the file (COCO's run 1..90 with gaps) are sorted and numbered, and the map is kept so that
evaluation can turn labels back into category ids.

What the reader requires and what it fills in (``read_ground_truth``): every image needs an integer
``id``, ``file_name`` and positive integer ``width`` and ``height``; every annotation an integer
``id`` (unique: pycocotools would silently keep only one of two annotations with the same id),
``image_id``, ``category_id`` and ``bbox``. Two fields COCO lets a bbox-only file leave out are
filled in: ``area`` (COCO's is the object's area; absent, the box's ``w * h``) and ``iscrowd`` (0).

What becomes a training target: annotations with ``iscrowd=1`` are left out (COCO evaluation reads
them as regions whose detections count neither way); boxes are clipped to the image. A box with no
area inside the image (zero width or height, before or after clipping) is treated the same way in
training and evaluation: left out of training and marked ``iscrowd=1`` in the ground truth that
evaluation reads, so that it is neither an object nothing could detect nor a false positive.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from .transforms import Target, Transform

REQUIRED_KEYS = {
    "file": ("images", "annotations", "categories"),
    "images": ("id", "file_name", "width", "height"),
    "annotations": ("id", "image_id", "category_id", "bbox"),
    "categories": ("id", "name"),
}
MAX_LISTED_MISSING = 5  # check_files() names this many missing images, then counts the rest


class CocoFormatError(ValueError):
    """A COCO file that cannot be read as a detection data set; the message names file and entry."""


class ImageFileError(OSError):
    """An image file that is empty or cannot be decoded; the message names the file and its entry."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _entry(section: str, index: int, item: Any) -> str:
    """``annotations[12] (id 345)``: how an error message names an entry."""
    has_id = isinstance(item, dict) and "id" in item
    return f"{section}[{index}]" + (f" (id {item['id']!r})" if has_id else "")


def _load_json(ann_file: Path) -> dict[str, list]:
    """Read the file and check its top level and the keys of every entry."""
    try:
        data = json.loads(ann_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CocoFormatError(f"{ann_file}: not a JSON file ({e})") from e
    if not isinstance(data, dict):
        raise CocoFormatError(f"{ann_file}: the top level must be a JSON object, got {type(data).__name__}")
    for key in REQUIRED_KEYS["file"]:
        if not isinstance(data.get(key), list):
            raise CocoFormatError(f"{ann_file}: missing top-level list {key!r} (has {sorted(data)})")
        for i, item in enumerate(data[key]):
            if not isinstance(item, dict):
                raise CocoFormatError(f"{ann_file}: {key}[{i}] must be a JSON object, got {item!r}")
            missing = [k for k in REQUIRED_KEYS[key] if k not in item]
            if missing:
                raise CocoFormatError(f"{ann_file}: {_entry(key, i, item)} has no {', '.join(missing)}")
    return data


def _check_ids(ann_file: Path, section: str, items: list[dict]) -> None:
    """Raise if an id of ``section`` is not an integer or two entries share one."""
    seen: dict[int, int] = {}
    for i, item in enumerate(items):
        if not _is_integer(item["id"]):
            raise CocoFormatError(f"{ann_file}: {_entry(section, i, item)}: the id must be an integer")
        if item["id"] in seen:
            raise CocoFormatError(
                f"{ann_file}: {_entry(section, i, item)} repeats the id of {section}[{seen[item['id']]}]"
            )
        seen[item["id"]] = i


def _clipped_xyxy(bbox: list[float], width: int, height: int) -> tuple[float, float, float, float]:
    """A COCO ``[x, y, w, h]`` box as xyxy, clipped to a ``width x height`` image."""
    x, y, w, h = bbox
    return (
        min(max(x, 0.0), width),
        min(max(y, 0.0), height),
        min(max(x + w, 0.0), width),
        min(max(y + h, 0.0), height),
    )


def _has_area(xyxy: tuple[float, float, float, float]) -> bool:
    return xyxy[2] > xyxy[0] and xyxy[3] > xyxy[1]


def read_ground_truth(ann_file: str | Path) -> dict[str, Any]:
    """Read and check a COCO detection file; return it as evaluation should read it.

    Every error names the file and the entry (see the module docstring for what is required).
    The returned dict has the file's ``images`` and ``categories`` and a copy of each annotation
    with ``area`` (absent: ``w * h`` of the box) and ``iscrowd`` (absent: 0) filled in, and
    ``iscrowd=1`` for a box with no area inside its image, which training leaves out too.
    """
    ann_file = Path(ann_file)
    data = _load_json(ann_file)
    for section in ("images", "annotations", "categories"):
        _check_ids(ann_file, section, data[section])
    sizes: dict[int, tuple[int, int]] = {}
    for i, image in enumerate(data["images"]):
        if not all(_is_integer(image[k]) and image[k] > 0 for k in ("width", "height")):
            raise CocoFormatError(
                f"{ann_file}: {_entry('images', i, image)} needs positive integer "
                f"width and height, got {image['width']!r} x {image['height']!r}"
            )
        sizes[image["id"]] = (image["width"], image["height"])
    category_ids = sorted(c["id"] for c in data["categories"])
    annotations = []
    for i, ann in enumerate(data["annotations"]):
        where = f"{ann_file}: {_entry('annotations', i, ann)}"
        bbox = ann["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
            raise CocoFormatError(f"{where}: bbox must be 4 finite numbers [x, y, w, h], got {bbox!r}")
        if bbox[2] < 0 or bbox[3] < 0:
            raise CocoFormatError(f"{where}: bbox {bbox} has a negative width or height")
        if ann["image_id"] not in sizes:
            raise CocoFormatError(f"{where}: image_id {ann['image_id']!r} is not in 'images'")
        if ann["category_id"] not in category_ids:
            raise CocoFormatError(
                f"{where}: category_id {ann['category_id']!r} is not in 'categories' ({category_ids})"
            )
        area = ann.get("area", bbox[2] * bbox[3])
        if not (_is_number(area) and area >= 0):
            raise CocoFormatError(f"{where}: area must be a finite number >= 0, got {area!r}")
        iscrowd = ann.get("iscrowd", 0)
        if iscrowd not in (0, 1) or not isinstance(iscrowd, int):
            raise CocoFormatError(f"{where}: iscrowd must be 0 or 1, got {iscrowd!r}")
        if not _has_area(_clipped_xyxy(bbox, *sizes[ann["image_id"]])):
            iscrowd = 1  # no area inside the image: ignored, as training ignores it
        annotations.append({**ann, "area": area, "iscrowd": int(iscrowd)})
    return {**data, "annotations": annotations}


class CocoDetection(Dataset):
    """A COCO-format detection data set: item ``i`` is ``(image, target)``.

    - image: ``(3, H, W)`` float32 RGB in [0, 1] (grayscale and RGBA files are converted);
    - target: ``{"boxes": (N, 4) float32 xyxy in pixels, "labels": (N,) int64 in 0..K-1,
      "image_id": int}``; an image without annotations gives ``(0, 4)`` boxes and ``(0,)`` labels.

    ``transforms(image, target) -> (image, target)`` is applied last, if given.

    Attributes: ``ann_file`` (Path), ``image_dir`` (Path), ``image_ids`` (the file's order),
    ``class_names``, ``num_classes`` (K, foreground only), ``label_to_category_id`` (list of K),
    ``category_id_to_label`` (dict) and ``ground_truth`` (what ``read_ground_truth`` returns).
    """

    def __init__(self, ann_file: str | Path, image_dir: str | Path, transforms: Transform | None = None):
        self.ann_file = Path(ann_file)
        self.image_dir = Path(image_dir)
        self.transforms = transforms
        self.ground_truth = read_ground_truth(self.ann_file)
        categories = sorted(self.ground_truth["categories"], key=lambda c: c["id"])
        self.label_to_category_id: list[int] = [c["id"] for c in categories]
        self.category_id_to_label: dict[int, int] = {c: k for k, c in enumerate(self.label_to_category_id)}
        self.class_names: list[str] = [c["name"] for c in categories]
        self._images: list[dict] = self.ground_truth["images"]
        self.image_ids: list[int] = [image["id"] for image in self._images]
        self._targets = self._index_targets(self.ground_truth["annotations"])

    @property
    def num_classes(self) -> int:
        """K: foreground classes; labels are 0..K-1."""
        return len(self.label_to_category_id)

    def _index_targets(self, annotations: list[dict]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Group the training targets by image, in one pass over the checked annotations.

        Returns per image (in ``image_ids`` order) boxes ``(N, 4)`` float32 xyxy, clipped to the
        image, without crowd annotations (which include those with no area in the image), and
        their labels ``(N,)`` int64.
        """
        position = {image_id: n for n, image_id in enumerate(self.image_ids)}
        boxes: list[list[tuple[float, ...]]] = [[] for _ in self.image_ids]
        labels: list[list[int]] = [[] for _ in self.image_ids]
        for ann in annotations:
            if ann["iscrowd"]:
                continue
            n = position[ann["image_id"]]
            boxes[n].append(_clipped_xyxy(ann["bbox"], self._images[n]["width"], self._images[n]["height"]))
            labels[n].append(self.category_id_to_label[ann["category_id"]])
        return [
            (np.array(b, dtype=np.float64).reshape(-1, 4).astype(np.float32), np.array(lab, dtype=np.int64))
            for b, lab in zip(boxes, labels, strict=True)
        ]

    def __len__(self) -> int:
        return len(self.image_ids)

    def image_path(self, i: int) -> Path:
        """The file of item ``i``."""
        return self.image_dir / self._images[i]["file_name"]

    def check_files(self) -> None:
        """Check with one ``stat`` per image, before any work, that every image file is there.

        Raises ``FileNotFoundError`` naming the missing files, or ``ImageFileError`` naming the
        empty (0-byte) ones; shows ``MAX_LISTED_MISSING`` of them and counts the rest.
        """
        missing, empty = [], []
        for i in range(len(self)):
            path = self.image_path(i)
            try:
                if path.stat().st_size == 0:
                    empty.append(f"{path} ({_entry('images', i, self._images[i])})")
            except OSError:  # no such file, or a path through something that is not a folder
                missing.append(str(path))
        for found, what, error in [(missing, "missing", FileNotFoundError), (empty, "empty", ImageFileError)]:
            if found:
                shown = ", ".join(found[:MAX_LISTED_MISSING])
                more = len(found) - MAX_LISTED_MISSING
                raise error(
                    f"{self.ann_file}: {len(found)} of {len(self)} image files are {what}: {shown}"
                    + (f" and {more} more" if more > 0 else "")
                )

    def load_image(self, i: int) -> Tensor:
        """Image ``i`` as ``(3, H, W)`` float32 RGB in [0, 1], checked against the file's size.

        A file that cannot be decoded (empty, truncated, corrupt) raises ``ImageFileError``
        naming the file and its entry.
        """
        path = self.image_path(i)
        info = self._images[i]
        entry = f"{self.ann_file}: {_entry('images', i, info)}"
        if not path.is_file():
            raise FileNotFoundError(f"{entry}: no image file {path}")
        try:
            with Image.open(path) as image:
                width, height = image.size
                if (width, height) != (info["width"], info["height"]):
                    raise CocoFormatError(
                        f"{entry} says {info['width']}x{info['height']} but {path} is {width}x{height}"
                    )
                pixels = np.array(image.convert("RGB"))  # (H, W, 3) uint8
        except (OSError, SyntaxError) as error:  # PIL's errors for files it cannot decode
            raise ImageFileError(f"{entry}: cannot decode {path}: {error}") from error
        return torch.from_numpy(pixels).permute(2, 0, 1).float().div_(255)

    def target(self, i: int) -> Target:
        """The training target of item ``i`` (no image read); the tensors are copies."""
        boxes, labels = self._targets[i]
        return {
            "boxes": torch.tensor(boxes),  # (N, 4) float32 xyxy
            "labels": torch.tensor(labels),  # (N,) int64
            "image_id": self.image_ids[i],
        }

    def __getitem__(self, i: int) -> tuple[Tensor, Target]:
        image, target = self.load_image(i), self.target(i)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target
