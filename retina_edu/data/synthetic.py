"""A deterministic synthetic detection data set, written in COCO format.

Why: the course runs offline, and the problem RetinaNet solves should be real. Each 128-pixel
image holds 2–8 filled shapes of five classes, sizes spread log-uniformly over 12–88 pixels (small
objects for P3, large ones for P5 with the CPU preset's anchors; scaled to 800 px, P4 to P7 with
the paper's), on a textured background that covers most of the image (the class imbalance that
focal loss answers), with little overlap (unambiguous labels). At 128 px the CPU preset's P6 and
P7 anchors (128-406 px) are larger than any object: those levels only learn background.

- Classes are told apart by shape only: colours are drawn independently of the class.
- An object's *size* is ``sqrt(w * h)`` of its box (the way anchor sizes are measured); squares,
  diamonds and crosses also get an aspect ratio ``h / w`` in [0.6, 1.6].
- The box is the shape's exact geometric extent (floats, rounded to 0.01 px). Shapes are drawn
  with 4× supersampling, so the drawn pixels agree with the box to within a quarter pixel.
- Every image is made from its own random generator, ``default_rng([seed, split key, index])``:
  an image does not depend on how many others are made, and train and val never share images.
  The same arguments give byte-identical PNG and JSON files.

Command line::

    python -m retina_edu.data --train 2000 --val 300 --seed 0   # into retina_edu.paths.synthetic_root()
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import re
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from retina_edu.data.coco import CocoDetection, Transform
from retina_edu.paths import synthetic_root

CLASS_NAMES = ("circle", "square", "triangle", "diamond", "cross")  # COCO category ids 1..5
# Bump when the drawing changes: ensure_synthetic_dataset() then remakes files made by older code.
GENERATOR_VERSION = 1

IMAGE_SIZE = 128
MIN_OBJECTS, MAX_OBJECTS = 2, 8  # objects per image, drawn uniformly
TRAIN_IMAGES, VAL_IMAGES = 2000, 300  # the default data set's splits
MIN_OBJECT_SIZE, MAX_OBJECT_SIZE = 12.0, 88.0  # sqrt(w * h) of the box, drawn log-uniformly
ASPECT_RANGE = (0.6, 1.6)  # h / w for square, diamond and cross (log-uniform); 1 for the others
STRETCHABLE = frozenset({"square", "diamond", "cross"})
CIRCLE_VERTICES = 64  # a multiple of 4, so the polygon touches its box exactly

MAX_IOU = 0.1  # an object's box overlaps each earlier box by IoU <= 0.1 ...
MAX_COVERED = 0.3  # ... and covers at most 30% of the smaller box (no object inside another)
PLACEMENT_TRIES = 50  # positions tried per object before it is made smaller
SHRINK = 0.8  # how much smaller an object that does not fit is made for its next tries

SUPERSAMPLE = 4  # shapes are drawn at 4x resolution and averaged down: anti-aliased edges
BACKGROUND_LEVELS = (0.2, 0.8)  # mean background colour per channel, in [0, 1]
GRADIENT_SPREAD = 0.15  # each corner colour differs from the mean by at most this per channel
NOISE_STD = 0.02  # Gaussian pixel noise on the background, in [0, 1] units
MAX_DISTRACTORS = 3  # faint 1-pixel lines drawn on the background (not objects)
DISTRACTOR_CONTRAST = 0.08  # how much lighter or darker than the background they are
MIN_CONTRAST = 0.5  # RGB distance (in [0, 1] units) of an object's colour from its background
COLOUR_CANDIDATES = 16  # random colours tried per object; the first with enough contrast wins
CHUNK_IMAGES = 100  # images per task when drawing in several processes
DECIMALS = 2  # bbox and area are rounded to 0.01 so that the JSON is reproducible byte for byte

_SPLIT_NAME = re.compile(r"[A-Za-z0-9_-]+")


def __getattr__(name: str) -> Path:
    # DEFAULT_ROOT is looked up when read, so that it follows $RETINA_EDU_HOME (retina_edu.paths):
    # the data home's "synthetic" folder, the clone's data/synthetic when run from a clone.
    if name == "DEFAULT_ROOT":
        return synthetic_root()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class GeneratorParams:
    """Everything that determines a split's files; recorded in the JSON's ``info`` and manifest."""

    split: str
    num_images: int
    seed: int
    image_size: int = IMAGE_SIZE
    min_objects: int = MIN_OBJECTS
    max_objects: int = MAX_OBJECTS
    min_object_size: float = MIN_OBJECT_SIZE
    max_object_size: float = MAX_OBJECT_SIZE
    version: int = GENERATOR_VERSION

    def check(self) -> None:
        """Raise ``ValueError`` naming the first parameter that cannot work."""
        if not _SPLIT_NAME.fullmatch(self.split):
            raise ValueError(f"split must be letters, digits, '_' or '-', got {self.split!r}")
        if self.num_images < 1 or self.seed < 0:
            raise ValueError(f"need num_images >= 1 and seed >= 0, got {self.num_images}, {self.seed}")
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(
                f"need 1 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}"
            )
        # The longest side of a box of size s is s * sqrt(max aspect); it must fit in the image.
        longest = self.max_object_size * math.sqrt(ASPECT_RANGE[1])
        if not 0 < self.min_object_size <= self.max_object_size or longest > self.image_size:
            largest = self.image_size / math.sqrt(ASPECT_RANGE[1])
            raise ValueError(
                f"need 0 < min_object_size <= max_object_size <= {largest:.1f} (the image side / "
                f"sqrt of the largest aspect ratio), got {self.min_object_size}, "
                f"{self.max_object_size} for image_size {self.image_size}"
            )


@dataclass(frozen=True)
class SyntheticObject:
    """One drawn shape: its class index, box ``(x1, y1, x2, y2)`` in pixels and RGB colour."""

    label: int
    box: tuple[float, float, float, float]
    colour: tuple[int, int, int]

    @property
    def area(self) -> float:
        """The shape's own area in px², as COCO's ``area`` is the object's, not the box's."""
        x1, y1, x2, y2 = self.box
        return _AREA_FRACTION[CLASS_NAMES[self.label]] * (x2 - x1) * (y2 - y1)


# Shape area as a fraction of its box: a cross is two bars a third as thick as the box, overlapping.
_AREA_FRACTION = {
    "circle": math.pi / 4,
    "square": 1.0,
    "triangle": 0.5,
    "diamond": 0.5,
    "cross": 2 / 3 - 1 / 9,
}


def shape_polygon(name: str, box: tuple[float, float, float, float]) -> list[tuple[float, float]]:
    """The outline of shape ``name`` whose tight box is ``box`` (x1, y1, x2, y2), as vertices."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx, cy = x1 + w / 2, y1 + h / 2
    if name == "circle":
        angles = np.arange(CIRCLE_VERTICES) * (2 * math.pi / CIRCLE_VERTICES)
        return [(cx + w / 2 * math.cos(a), cy + h / 2 * math.sin(a)) for a in angles]
    if name == "square":
        return [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
    if name == "triangle":  # pointing up
        return [(cx, y1), (x2, y2), (x1, y2)]
    if name == "diamond":
        return [(cx, y1), (x2, cy), (cx, y2), (x1, cy)]
    if name == "cross":  # a plus sign whose bars are a third of the box thick
        a1, a2 = x1 + w / 3, x2 - w / 3
        b1, b2 = y1 + h / 3, y2 - h / 3
        return [(a1, y1), (a2, y1), (a2, b1), (x2, b1), (x2, b2), (a2, b2),
                (a2, y2), (a1, y2), (a1, b2), (x1, b2), (x1, b1), (a1, b1)]  # fmt: skip
    raise ValueError(f"unknown shape {name!r}; expected one of {CLASS_NAMES}")


def _overlap_ok(candidates: np.ndarray, placed: np.ndarray) -> np.ndarray:
    """Which of ``candidates`` (T, 4) keep IoU <= MAX_IOU and coverage <= MAX_COVERED with every
    box in ``placed`` (M, 4): a (T,) bool array."""
    lo = np.maximum(candidates[:, None, :2], placed[None, :, :2])  # (T, M, 2)
    hi = np.minimum(candidates[:, None, 2:], placed[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=-1)  # (T, M)
    area = np.prod(candidates[:, 2:] - candidates[:, :2], axis=-1)[:, None]  # (T, 1)
    areas = np.prod(placed[:, 2:] - placed[:, :2], axis=-1)[None, :]  # (1, M)
    iou = inter / (area + areas - inter)
    covered = inter / np.minimum(area, areas)
    return ((iou <= MAX_IOU) & (covered <= MAX_COVERED)).all(axis=1)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth colour gradient (bilinear between four corner colours) plus noise.

    Returns ``(H, W, 3)`` float32 in [0, 1].
    """
    mean = rng.uniform(*BACKGROUND_LEVELS, size=3)
    spread = rng.uniform(-GRADIENT_SPREAD, GRADIENT_SPREAD, size=(2, 2, 3))
    corners = (mean + spread).astype(np.float32)  # (top/bottom, left/right, 3)
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)
    top = corners[0, 0] + t[:, None] * (corners[0, 1] - corners[0, 0])  # (W, 3)
    bottom = corners[1, 0] + t[:, None] * (corners[1, 1] - corners[1, 0])
    image = top[None] + t[:, None, None] * (bottom - top)[None]  # (H, W, 3)
    image += NOISE_STD * rng.standard_normal((size, size, 3), dtype=np.float32)
    return np.clip(image, 0.0, 1.0)


def _draw_distractors(draw: ImageDraw.ImageDraw, background: np.ndarray, rng: np.random.Generator) -> None:
    """Draw up to MAX_DISTRACTORS faint straight lines: texture that is not an object."""
    size = background.shape[0]
    for _ in range(rng.integers(0, MAX_DISTRACTORS + 1)):
        (x1, y1), (x2, y2) = rng.uniform(0, size, size=(2, 2))
        mid = background[int((y1 + y2) / 2), int((x1 + x2) / 2)]
        shade = np.clip(mid + rng.choice([-1.0, 1.0]) * DISTRACTOR_CONTRAST, 0.0, 1.0)
        draw.line([(x1, y1), (x2, y2)], fill=tuple(int(v) for v in np.round(shade * 255)), width=1)


def _sample_boxes(rng: np.random.Generator, params: GeneratorParams) -> list[tuple[int, np.ndarray]]:
    """Classes and boxes ``(4,)`` xyxy of the objects of one image, placed largest first.

    An object that fits nowhere after PLACEMENT_TRIES positions is shrunk by SHRINK and tried
    again; below ``min_object_size`` it is left out (which happens almost never).
    """
    n = int(rng.integers(params.min_objects, params.max_objects + 1))
    labels = rng.integers(0, len(CLASS_NAMES), size=n)
    sizes = np.exp(rng.uniform(math.log(params.min_object_size), math.log(params.max_object_size), n))
    aspects = np.exp(rng.uniform(math.log(ASPECT_RANGE[0]), math.log(ASPECT_RANGE[1]), n))
    stretch = np.array([CLASS_NAMES[k] in STRETCHABLE for k in labels])
    aspects = np.where(stretch, aspects, 1.0)
    placed_labels: list[int] = []
    placed = np.zeros((0, 4))  # (M, 4) boxes placed so far
    for i in np.argsort(-sizes, kind="stable"):  # large first: they need the most room
        size = sizes[i]
        while size >= params.min_object_size:
            wh = np.array([size / math.sqrt(aspects[i]), size * math.sqrt(aspects[i])])  # (2,)
            corners = rng.uniform(0.0, 1.0, size=(PLACEMENT_TRIES, 2)) * (params.image_size - wh)
            candidates = np.concatenate([corners, corners + wh], axis=1)  # (T, 4) xyxy
            fits = np.flatnonzero(_overlap_ok(candidates, placed))
            if len(fits):  # the first position that fits
                placed_labels.append(int(labels[i]))
                placed = np.concatenate([placed, candidates[fits[:1]]])
                break
            size *= SHRINK
    return list(zip(placed_labels, placed, strict=True))


def _pick_colour(rng: np.random.Generator, background: np.ndarray, box: np.ndarray) -> np.ndarray:
    """A random RGB colour in [0, 1], MIN_CONTRAST or more from the background at box corners."""
    size = background.shape[0]
    xs = np.clip(np.array([box[0], box[2]]).astype(int), 0, size - 1)
    ys = np.clip(np.array([box[1], box[3]]).astype(int), 0, size - 1)
    corner_colours = background[ys[:, None], xs[None, :]].reshape(4, 3)  # the gradient's extremes
    candidates = rng.uniform(0.0, 1.0, size=(COLOUR_CANDIDATES, 3))
    contrast = np.linalg.norm(candidates[:, None] - corner_colours[None], axis=-1).min(axis=1)
    good = np.flatnonzero(contrast >= MIN_CONTRAST)
    return candidates[good[0] if len(good) else int(contrast.argmax())]


def _paint(image: Image.Image, name: str, box: tuple[float, ...], colour: tuple[int, int, int]) -> None:
    """Draw a filled, anti-aliased shape into ``image`` in place (4x supersampled coverage mask)."""
    left, top = math.floor(box[0]), math.floor(box[1])
    width, height = math.ceil(box[2]) - left, math.ceil(box[3]) - top
    mask = Image.new("L", (width * SUPERSAMPLE, height * SUPERSAMPLE), 0)
    # PIL fills every fine pixel an edge touches; the half-pixel shift centres that error.
    outline = [
        ((x - left) * SUPERSAMPLE - 0.5, (y - top) * SUPERSAMPLE - 0.5) for x, y in shape_polygon(name, box)
    ]
    ImageDraw.Draw(mask).polygon(outline, fill=255)
    image.paste(colour, (left, top, left + width, top + height), mask.reduce(SUPERSAMPLE))


def render_image(
    rng: np.random.Generator, params: GeneratorParams
) -> tuple[Image.Image, list[SyntheticObject]]:
    """One synthetic image (RGB, ``image_size`` square) and its objects, drawn from ``rng``."""
    background = _background(rng, params.image_size)  # (H, W, 3) in [0, 1]
    image = Image.fromarray(np.round(background * 255).astype(np.uint8))  # RGB
    _draw_distractors(ImageDraw.Draw(image), background, rng)
    objects = []
    for label, box in _sample_boxes(rng, params):
        colour = tuple(int(v) for v in np.round(_pick_colour(rng, background, box) * 255))
        box_tuple = tuple(round(float(v), DECIMALS) for v in box)
        _paint(image, CLASS_NAMES[label], box_tuple, colour)
        objects.append(SyntheticObject(label, box_tuple, colour))
    return image, objects


def _split_key(split: str) -> int:
    """A fixed integer for a split name, mixed into every image's seed (train and val differ)."""
    return zlib.crc32(split.encode())


def _file_name(index: int) -> str:
    """The PNG of image ``index`` (0-based) of a split."""
    return f"{index:06d}.png"


def _draw_images(image_dir: Path, params: GeneratorParams, indices: range) -> list[list[SyntheticObject]]:
    """Draw images ``indices`` of a split and save them in ``image_dir``; their objects, in order."""
    objects = []
    for index in indices:
        rng = np.random.default_rng([params.seed, _split_key(params.split), index])
        image, image_objects = render_image(rng, params)
        image.save(image_dir / _file_name(index), format="PNG")  # no timestamp or metadata
        objects.append(image_objects)
    return objects


def annotation_file(root: Path, split: str) -> Path:
    """Where a split's COCO annotations lie: ``root/annotations/instances_{split}.json``."""
    return root / "annotations" / f"instances_{split}.json"


def make_synthetic_coco(
    root: str | Path,
    split: str,
    num_images: int,
    seed: int,
    image_size: int = IMAGE_SIZE,
    min_objects: int = MIN_OBJECTS,
    max_objects: int = MAX_OBJECTS,
    min_object_size: float = MIN_OBJECT_SIZE,
    max_object_size: float = MAX_OBJECT_SIZE,
    workers: int = 1,
) -> Path:
    """Write ``root/{split}/{index:06d}.png`` and ``root/annotations/instances_{split}.json``.

    Image ids are ``index + 1`` and annotation ids count from 1; category ids are 1..5 for
    ``CLASS_NAMES``. Each annotation also records the shape's ``color`` (RGB 0..255), so that one
    can check the colour says nothing about the class. ``workers > 1`` draws in that many
    processes (the files are the same). Returns the JSON path.
    """
    params = GeneratorParams(
        split, num_images, seed, image_size, min_objects, max_objects, min_object_size, max_object_size
    )
    params.check()
    root = Path(root)
    image_dir, ann_file = root / split, annotation_file(root, split)
    image_dir.mkdir(parents=True, exist_ok=True)
    ann_file.parent.mkdir(parents=True, exist_ok=True)
    chunks = [range(i, min(i + CHUNK_IMAGES, num_images)) for i in range(0, num_images, CHUNK_IMAGES)]
    draw_chunk = partial(_draw_images, image_dir, params)
    if workers > 1 and len(chunks) > 1:  # each image has its own generator: the same files
        # spawn, not fork: forking a process that has started threads (torch's) can deadlock,
        # and Python 3.12+ warns about it
        with ProcessPoolExecutor(
            min(workers, len(chunks)), mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            per_chunk = list(pool.map(draw_chunk, chunks))
    else:
        per_chunk = [draw_chunk(indices) for indices in chunks]
    objects_per_image = [objects for chunk in per_chunk for objects in chunk]
    _write_json(ann_file, _coco_dict(params, objects_per_image))
    return ann_file


def _coco_dict(params: GeneratorParams, objects_per_image: list[list[SyntheticObject]]) -> dict:
    """The COCO annotation file's content for the drawn images' objects, in image order."""
    images, annotations = [], []
    for index, objects in enumerate(objects_per_image):
        size = params.image_size
        images.append({"id": index + 1, "file_name": _file_name(index), "width": size, "height": size})
        for obj in objects:
            x1, y1, x2, y2 = obj.box
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": index + 1,
                    "category_id": obj.label + 1,
                    "bbox": [x1, y1, round(x2 - x1, DECIMALS), round(y2 - y1, DECIMALS)],
                    "area": round(obj.area, DECIMALS),
                    "iscrowd": 0,
                    "color": list(obj.colour),
                }
            )
    return {
        "info": {"description": "retina_edu synthetic shapes", **asdict(params)},
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": k + 1, "name": name, "supercategory": "shape"} for k, name in enumerate(CLASS_NAMES)
        ],
    }


def _write_json(path: Path, data: dict) -> None:
    """Write ``data`` with sorted keys, through a temporary file so a crash leaves no half file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, sort_keys=True, separators=(",", ":")))
    tmp.replace(path)


def _split_complete(root: Path, params: GeneratorParams, recorded: dict | None) -> bool:
    """Whether the split's files exist and were made with ``params``."""
    if recorded != asdict(params) or not annotation_file(root, params.split).is_file():
        return False
    return all((root / params.split / _file_name(i)).is_file() for i in range(params.num_images))


def ensure_synthetic_dataset(
    root: str | Path | None = None,
    train_images: int = TRAIN_IMAGES,
    val_images: int = VAL_IMAGES,
    seed: int = 0,
    image_size: int = IMAGE_SIZE,
    force: bool = False,
    workers: int | None = None,
    min_objects: int = MIN_OBJECTS,
    max_objects: int = MAX_OBJECTS,
) -> dict[str, Path]:
    """Make the train and val splits under ``root`` unless they are there with these parameters.

    ``root`` defaults to ``retina_edu.paths.synthetic_root()``: ``data/synthetic`` in a clone,
    else under ``$RETINA_EDU_HOME`` or ``~/.cache/retina_edu``. What was made is recorded in
    ``root/manifest.json``; a split is remade when its files are missing, its parameters differ or
    ``force`` is set. ``workers``: processes that draw (default: one per CPU core);
    ``min_objects`` / ``max_objects``: objects per image (the ablation study's sparse variants
    draw one). Returns ``{"train": json path, "val": json path, "root": root}``.
    """
    root = synthetic_root() if root is None else Path(root)
    manifest_file = root / "manifest.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
    paths = {}
    for split, num_images in (("train", train_images), ("val", val_images)):
        params = GeneratorParams(split, num_images, seed, image_size, min_objects, max_objects)
        if force or not _split_complete(root, params, manifest.get(split)):
            for old in (root / split).glob("[0-9]" * 6 + ".png"):  # images of an older version
                old.unlink()
            make_synthetic_coco(
                root,
                split,
                num_images,
                seed,
                image_size,
                min_objects,
                max_objects,
                workers=workers or os.cpu_count() or 1,
            )
            manifest[split] = asdict(params)
            _write_json(manifest_file, manifest)
        paths[split] = annotation_file(root, split)
    return {**paths, "root": root}


def load_split(
    split: str, root: str | Path | None = None, transforms: Transform | None = None, make: bool = True
) -> CocoDetection:
    """The synthetic data set's ``split`` ("train" or "val") as a ``CocoDetection``, made first
    if it is not there (``ensure_synthetic_dataset(root)``, default size and seed). With
    ``make=False`` a split that is not there raises ``FileNotFoundError`` instead (the exercise
    checks: they never write 2,300 images behind a learner's back)."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    root = synthetic_root() if root is None else Path(root)
    ann_file = annotation_file(root, split)
    if not make and not ann_file.is_file():
        raise FileNotFoundError(
            f"the synthetic {split} split is not made yet ({ann_file} is missing): run the notebook "
            "from the top, or python -m retina_edu.data"
        )
    paths = ensure_synthetic_dataset(root) if make else {split: ann_file, "root": root}
    return CocoDetection(paths[split], paths["root"] / split, transforms)


def main(argv: list[str] | None = None) -> None:
    """Command line: make (or check) the synthetic train and val splits."""
    parser = argparse.ArgumentParser(
        prog="python -m retina_edu.data",
        description="Make the synthetic shapes data set (COCO format) unless it is already there.",
    )
    parser.add_argument(
        "--root", type=Path, default=synthetic_root(), help="output folder (default: %(default)s)"
    )
    parser.add_argument(
        "--train", type=int, default=TRAIN_IMAGES, help="training images (default: %(default)s)"
    )
    parser.add_argument(
        "--val", type=int, default=VAL_IMAGES, help="validation images (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--image-size", type=int, default=IMAGE_SIZE, help="side in pixels (default: %(default)s)"
    )
    parser.add_argument("--force", action="store_true", help="remake the files even if up to date")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: CPU cores)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    paths = ensure_synthetic_dataset(
        args.root, args.train, args.val, args.seed, args.image_size, args.force, args.workers
    )
    print(f"train: {paths['train']}\nval:   {paths['val']}\n({time.perf_counter() - start:.1f} s)")
