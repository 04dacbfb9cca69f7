"""A reader for COCO-format detection files: the project's synthetic set or the real COCO.

The file is checked when it is loaded, and every error names the file and the entry that is wrong.
Inside the package boxes are xyxy in pixels and labels are contiguous ``0..K-1``: the category
ids of the file (COCO's run 1..90 with gaps) are sorted and numbered, and the map is kept so that
evaluation can turn labels back into category ids.

What becomes a training target: annotations with ``iscrowd=1`` are left out (COCO evaluation reads
them from the file, where they mark regions whose detections count neither way); boxes are clipped
to the image, and boxes with zero width or height (before or after clipping) are left out.
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
    "annotations": ("image_id", "category_id", "bbox"),
    "categories": ("id", "name"),
}
MAX_LISTED_MISSING = 5  # check_files() names this many missing images, then counts the rest


class CocoFormatError(ValueError):
    """A COCO file that cannot be read as a detection data set; the message names file and entry."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


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


def _unique_ids(ann_file: Path, section: str, items: list[dict]) -> None:
    """Raise if two entries of ``section`` share an id."""
    seen: dict[Any, int] = {}
    for i, item in enumerate(items):
        if item["id"] in seen:
            raise CocoFormatError(
                f"{ann_file}: {_entry(section, i, item)} repeats the id of {section}[{seen[item['id']]}]"
            )
        seen[item["id"]] = i


class CocoDetection(Dataset):
    """A COCO-format detection data set: item ``i`` is ``(image, target)``.

    - image: ``(3, H, W)`` float32 RGB in [0, 1] (grayscale and RGBA files are converted);
    - target: ``{"boxes": (N, 4) float32 xyxy in pixels, "labels": (N,) int64 in 0..K-1,
      "image_id": int}``; an image without annotations gives ``(0, 4)`` boxes and ``(0,)`` labels.

    ``transforms(image, target) -> (image, target)`` is applied last, if given.

    Attributes: ``ann_file`` (Path), ``image_dir`` (Path), ``image_ids`` (the file's order),
    ``class_names``, ``num_classes`` (K, foreground only), ``label_to_category_id`` (list of K) and
    ``category_id_to_label`` (dict).
    """

    def __init__(self, ann_file: str | Path, image_dir: str | Path, transforms: Transform | None = None):
        self.ann_file = Path(ann_file)
        self.image_dir = Path(image_dir)
        self.transforms = transforms
        data = _load_json(self.ann_file)
        for section in ("images", "categories"):
            _unique_ids(self.ann_file, section, data[section])
        for i, category in enumerate(data["categories"]):
            if not isinstance(category["id"], int):
                raise CocoFormatError(
                    f"{self.ann_file}: {_entry('categories', i, category)}: the id must be an integer"
                )
        categories = sorted(data["categories"], key=lambda c: c["id"])
        self.label_to_category_id: list[int] = [c["id"] for c in categories]
        self.category_id_to_label: dict[int, int] = {c: k for k, c in enumerate(self.label_to_category_id)}
        self.class_names: list[str] = [c["name"] for c in categories]
        self._images: list[dict] = data["images"]
        for i, image in enumerate(self._images):
            if not all(isinstance(image[k], int) and image[k] > 0 for k in ("width", "height")):
                raise CocoFormatError(
                    f"{self.ann_file}: {_entry('images', i, image)} needs positive integer "
                    f"width and height, got {image['width']!r} x {image['height']!r}"
                )
        self.image_ids: list[int] = [image["id"] for image in self._images]
        self._targets = self._index_targets(data["annotations"])

    @property
    def num_classes(self) -> int:
        """K: foreground classes; labels are 0..K-1."""
        return len(self.label_to_category_id)

    def _index_targets(self, annotations: list[dict]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Check the annotations and group the training targets by image, in one pass.

        Returns per image (in ``image_ids`` order) boxes ``(N, 4)`` float32 xyxy, clipped to the
        image, without crowd or empty boxes, and their labels ``(N,)`` int64.
        """
        position = {image_id: n for n, image_id in enumerate(self.image_ids)}
        boxes: list[list[list[float]]] = [[] for _ in self.image_ids]
        labels: list[list[int]] = [[] for _ in self.image_ids]
        for i, ann in enumerate(annotations):
            where = f"{self.ann_file}: {_entry('annotations', i, ann)}"
            bbox = ann["bbox"]
            if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
                raise CocoFormatError(f"{where}: bbox must be 4 finite numbers [x, y, w, h], got {bbox!r}")
            if bbox[2] < 0 or bbox[3] < 0:
                raise CocoFormatError(f"{where}: bbox {bbox} has a negative width or height")
            if ann["image_id"] not in position:
                raise CocoFormatError(f"{where}: image_id {ann['image_id']!r} is not in 'images'")
            if ann["category_id"] not in self.category_id_to_label:
                raise CocoFormatError(
                    f"{where}: category_id {ann['category_id']!r} is not in 'categories' "
                    f"({self.label_to_category_id})"
                )
            if ann.get("iscrowd", 0):
                continue
            n = position[ann["image_id"]]
            x, y, w, h = bbox
            boxes[n].append([x, y, x + w, y + h])
            labels[n].append(self.category_id_to_label[ann["category_id"]])
        return [self._clip(n, b, lab) for n, (b, lab) in enumerate(zip(boxes, labels, strict=True))]

    def _clip(self, n: int, boxes: list[list[float]], labels: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Clip the xyxy ``boxes`` of image ``n`` to the image and drop those with no area left."""
        width, height = self._images[n]["width"], self._images[n]["height"]
        xyxy = np.array(boxes, dtype=np.float64).reshape(-1, 4).clip(0, [width, height, width, height])
        keep = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        return xyxy[keep].astype(np.float32), np.array(labels, dtype=np.int64)[keep]

    def __len__(self) -> int:
        return len(self.image_ids)

    def image_path(self, i: int) -> Path:
        """The file of item ``i``."""
        return self.image_dir / self._images[i]["file_name"]

    def check_files(self) -> None:
        """Raise ``FileNotFoundError`` naming the image files that are missing, if any."""
        missing = [str(self.image_path(i)) for i in range(len(self)) if not self.image_path(i).is_file()]
        if missing:
            shown = ", ".join(missing[:MAX_LISTED_MISSING])
            more = len(missing) - MAX_LISTED_MISSING
            raise FileNotFoundError(
                f"{self.ann_file}: {len(missing)} of {len(self)} image files are missing: {shown}"
                + (f" and {more} more" if more > 0 else "")
            )

    def load_image(self, i: int) -> Tensor:
        """Image ``i`` as ``(3, H, W)`` float32 RGB in [0, 1], checked against the file's size."""
        path = self.image_path(i)
        info = self._images[i]
        if not path.is_file():
            raise FileNotFoundError(f"{self.ann_file}: {_entry('images', i, info)}: no image file {path}")
        with Image.open(path) as image:
            width, height = image.size
            if (width, height) != (info["width"], info["height"]):
                raise CocoFormatError(
                    f"{self.ann_file}: {_entry('images', i, info)} says "
                    f"{info['width']}x{info['height']} but {path} is {width}x{height}"
                )
            pixels = np.array(image.convert("RGB"))  # (H, W, 3) uint8
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
