"""COCO evaluation: the paper's AP numbers (§5, Table 2) computed with pycocotools' ``COCOeval``.

The model gives, per image, ``boxes`` (N, 4) xyxy in pixels, ``scores`` (N,) and contiguous
``labels`` (N,) in ``0..K-1``. COCO evaluation wants a list of results in the file's terms: one
dict per detection with ``image_id``, ``category_id`` (the file's, not contiguous), ``bbox`` as
``[x, y, w, h]`` and ``score``. This module converts, runs ``COCOeval`` and keeps what a reader
needs afterwards: the twelve summary numbers, AP per class and precision–recall curves.

Command line::

    python -m retina_edu.evaluate --checkpoint runs/model.pt \\
        --ann-file data/synthetic/val.json --image-dir data/synthetic/val
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch import nn
from tqdm.auto import tqdm

from retina_edu import cli
from retina_edu.boxes import xyxy_to_xywh
from retina_edu.data.coco import CocoDetection, CocoFormatError, ImageFileError, read_ground_truth
from retina_edu.device import prepare_device

# The twelve numbers of ``COCOeval.summarize()``, in its order: AP averaged over IoU 0.50:0.95,
# at IoU 0.50 and 0.75, for small / medium / large objects; AR at 1, 10, 100 detections per
# image, and for small / medium / large objects at 100. -1 means "no ground truth of that kind".
STAT_NAMES = (
    "AP",
    "AP50",
    "AP75",
    "APs",
    "APm",
    "APl",
    "AR1",
    "AR10",
    "AR100",
    "ARs",
    "ARm",
    "ARl",
)
BBOX_DECIMALS = 2  # results files keep boxes to 1/100 pixel
SCORE_DECIMALS = 5


@dataclass
class CocoEvalResult:
    """What ``COCOeval`` found: the summary numbers and the full ``COCOeval`` object.

    ``stats`` maps the names in ``STAT_NAMES`` to pycocotools' twelve numbers (-1 where the
    ground truth has no object of that kind, e.g. ``APs`` without small objects); ``summary`` is
    the text ``COCOeval.summarize()`` printed; ``results`` the COCO results evaluated (e.g. for
    ``write_results``). ``coco_eval.eval["precision"]`` has shape (T=10 IoU thresholds, R=101
    recall thresholds, K categories, A=4 areas, M=3 max detections).
    """

    stats: dict[str, float]
    summary: str
    results: list[dict[str, Any]]
    coco_eval: COCOeval

    def per_class_ap(self, by_name: bool = True) -> dict[str | int, float]:
        """AP averaged over IoU 0.50:0.95 for each category with ground truth (area all, 100 dets).

        Keys are the category names of the ground-truth file, or its category ids with
        ``by_name=False``. A category with no ground truth has no AP and is left out.
        """
        coco_gt = self.coco_eval.cocoGt
        precision = self.coco_eval.eval["precision"][:, :, :, 0, -1]  # (T, R, K)
        out: dict[str | int, float] = {}
        for k, cat_id in enumerate(self.coco_eval.params.catIds):
            p = precision[:, :, k]
            if (p > -1).any():  # -1 marks a category with no ground truth
                key = coco_gt.cats[cat_id]["name"] if by_name else cat_id
                out[key] = float(p[p > -1].mean())
        return out

    def precision_recall(
        self,
        category_id: int | None = None,
        iou: float = 0.5,
        area: str = "all",
        max_dets: int = 100,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The interpolated precision–recall curve that AP averages, for plotting.

        Returns ``recall`` (101,), the recall thresholds 0, 0.01, …, 1, and ``precision`` (101,),
        the interpolated precision at each (0 beyond the highest recall reached). With
        ``category_id=None`` the precision is the mean over categories with ground truth.
        ``iou`` must be one of COCO's thresholds 0.50, 0.55, …, 0.95; ``area`` one of "all",
        "small", "medium", "large"; ``max_dets`` one of 1, 10, 100.
        """
        params = self.coco_eval.params
        t = np.flatnonzero(np.isclose(params.iouThrs, iou))
        if t.size != 1:
            raise ValueError(f"iou must be one of {params.iouThrs.round(2).tolist()}, got {iou}")
        if area not in params.areaRngLbl:
            raise ValueError(f"area must be one of {params.areaRngLbl}, got {area!r}")
        if max_dets not in params.maxDets:
            raise ValueError(f"max_dets must be one of {params.maxDets}, got {max_dets}")
        a, m = params.areaRngLbl.index(area), params.maxDets.index(max_dets)
        precision = self.coco_eval.eval["precision"][t[0], :, :, a, m]  # (R, K)
        if category_id is not None:
            if category_id not in params.catIds:
                raise ValueError(f"category_id {category_id} is not in {params.catIds}")
            precision = precision[:, [params.catIds.index(category_id)]]
        present = (precision > -1).all(axis=0)  # (K,): categories with ground truth here
        if not present.any():
            which = "any category" if category_id is None else f"category {category_id}"
            raise ValueError(f"{which} has no ground truth for area={area!r}")
        return params.recThrs.copy(), precision[:, present].mean(axis=1)


def detections_to_coco_results(
    detections: list[dict[str, torch.Tensor]],
    image_ids: list[int],
    label_to_category_id: Sequence[int],
) -> list[dict[str, Any]]:
    """Model outputs → COCO results: one dict per detection, in the file's category ids.

    ``detections[i]`` belongs to image ``image_ids[i]`` and holds ``boxes`` (N, 4) xyxy in pixels,
    ``scores`` (N,) and ``labels`` (N,) in ``0..K-1``; label ``k`` is written as category
    ``label_to_category_id[k]``. Each result is ``{"image_id", "category_id", "bbox": [x, y, w,
    h], "score"}``, boxes rounded to 1/100 pixel and scores to 5 decimals.
    """
    if len(detections) != len(image_ids):
        raise ValueError(
            f"need one image id per detections dict, got {len(detections)} dicts "
            f"and {len(image_ids)} image ids"
        )
    category_ids = torch.as_tensor(list(label_to_category_id), dtype=torch.int64)
    results: list[dict[str, Any]] = []
    for det, image_id in zip(detections, image_ids, strict=True):
        boxes, scores, labels = (det[key].detach().cpu() for key in ("boxes", "scores", "labels"))
        n = labels.numel()
        if boxes.shape != (n, 4) or scores.shape != (n,) or labels.shape != (n,):
            raise ValueError(
                f"image {image_id}: need boxes (N, 4), scores (N,), labels (N,), got "
                f"{tuple(boxes.shape)}, {tuple(scores.shape)}, {tuple(labels.shape)}"
            )
        if not (torch.isfinite(boxes).all() and torch.isfinite(scores).all()):
            raise ValueError(f"image {image_id}: boxes or scores contain NaN or infinity")
        if labels.is_floating_point() or (n and (labels.min() < 0 or labels.max() >= len(category_ids))):
            raise ValueError(
                f"image {image_id}: labels must be integers in 0..{len(category_ids) - 1}, "
                f"got {labels.tolist()}"
            )
        xywh = xyxy_to_xywh(boxes.double()).round(decimals=BBOX_DECIMALS)  # (N, 4)
        if (xywh[:, 2:] < 0).any():
            raise ValueError(f"image {image_id}: boxes need x2 >= x1 and y2 >= y1")
        results += [
            {"image_id": int(image_id), "category_id": c, "bbox": b, "score": s}
            for b, s, c in zip(
                xywh.tolist(),
                scores.double().round(decimals=SCORE_DECIMALS).tolist(),
                category_ids[labels].tolist(),
                strict=True,
            )
        ]
    return results


def write_results(results: list[dict[str, Any]], path: str | Path) -> Path:
    """Write COCO results (a JSON list, as the COCO evaluation server takes it) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results))
    return path


def ground_truth_coco(ground_truth: dict[str, Any]) -> COCO:
    """A pycocotools ``COCO`` over a COCO dict (e.g. what ``read_ground_truth`` returns)."""
    coco = COCO()
    coco.dataset = ground_truth
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints "creating index..."
        coco.createIndex()
    return coco


def batches_of_one_size(sizes: Sequence[tuple[int, int]], batch_size: int) -> list[list[int]]:
    """Indices ``0..n-1`` cut into batches of at most ``batch_size`` images of one size each.

    ``sizes[i]`` is image ``i``'s ``(height, width)``. Images of a size keep their order, and the
    sizes come in the order of their first image; with a single size the batches are the
    consecutive slices of ``0..n-1``.
    """
    groups: dict[tuple[int, int], list[int]] = {}
    for i, size in enumerate(sizes):
        groups.setdefault(tuple(size), []).append(i)
    return [g[start : start + batch_size] for g in groups.values() for start in range(0, len(g), batch_size)]


def _load_results(coco_gt: COCO, results: list[dict[str, Any]]) -> COCO:
    """``coco_gt.loadRes`` that also takes an empty list (pycocotools indexes ``results[0]``)."""
    if results:
        return coco_gt.loadRes([dict(r) for r in results])  # loadRes adds keys to each dict
    coco_dt = COCO()
    coco_dt.dataset = {
        "images": list(coco_gt.dataset["images"]),
        "categories": copy.deepcopy(coco_gt.dataset["categories"]),
        "annotations": [],
    }
    coco_dt.createIndex()
    return coco_dt


def coco_evaluate(
    coco_gt: COCO | str | Path,
    results: list[dict[str, Any]],
    iou_type: str = "bbox",
    verbose: bool = True,
) -> CocoEvalResult:
    """Run ``COCOeval`` on COCO ``results`` against the ground truth (a ``COCO`` or its file).

    All images of the ground truth are evaluated; no detections at all gives AP 0, not an error.
    A file is read with ``read_ground_truth``: checked (errors name file and entry), ``area`` and
    ``iscrowd`` filled in where absent, boxes with no area in the image marked as crowd regions
    (ignored), as training treats them. A ``COCO`` object is used as it is.
    Results on categories the ground truth does not have are dropped with a warning (as
    ``COCOeval`` would silently do): usually a sign of a wrong label → category map.
    ``verbose`` prints pycocotools' summary table; otherwise pycocotools prints nothing.
    """
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be 'bbox' or 'segm', got {iou_type!r}")
    if not isinstance(coco_gt, COCO):
        coco_gt = ground_truth_coco(read_ground_truth(coco_gt))
    chatter = io.StringIO()  # pycocotools prints progress lines we do not need
    unknown_images = {r["image_id"] for r in results} - set(coco_gt.getImgIds())
    if unknown_images:
        raise ValueError(f"results name image ids not in the ground truth: {sorted(unknown_images)[:10]}")
    known_cats = set(coco_gt.getCatIds())
    kept = [r for r in results if r["category_id"] in known_cats]
    if len(kept) < len(results):
        unknown_cats = sorted({r["category_id"] for r in results} - known_cats)
        warnings.warn(
            f"dropped {len(results) - len(kept)} results with category ids {unknown_cats[:10]} "
            f"that the ground truth does not have (its ids: {sorted(known_cats)[:10]}...)",
            stacklevel=2,
        )
    with contextlib.redirect_stdout(chatter):
        coco_eval = COCOeval(coco_gt, _load_results(coco_gt, kept), iouType=iou_type)
        coco_eval.evaluate()
        coco_eval.accumulate()
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        coco_eval.summarize()
    if verbose:
        print(summary.getvalue(), end="")
    stats = {name: float(v) for name, v in zip(STAT_NAMES, coco_eval.stats, strict=True)}
    return CocoEvalResult(stats, summary.getvalue(), results, coco_eval)


def evaluate_model(
    model: nn.Module,
    dataset: Any,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    progress: bool = True,
    label_to_category_id: Sequence[int] | None = None,
    num_workers: int = 0,
    verbose: bool = True,
) -> CocoEvalResult:
    """Detect on every image of a COCO-format ``dataset`` and evaluate against its ``ann_file``.

    ``dataset[i]`` is ``(image (3, H, W) float in [0, 1], target)`` for image
    ``dataset.image_ids[i]``; ``model(list_of_images)`` returns one dict per image with ``boxes``
    (N, 4) xyxy in that image's pixels, ``scores`` (N,) and ``labels`` (N,) in ``0..K-1``. Labels
    map to categories through ``label_to_category_id`` (default: the dataset's). The model runs
    on ``device`` (default: where its weights are; given, the model is moved there) in eval mode
    under ``torch.inference_mode()``; its training flag is restored afterwards.

    The detections do not depend on ``batch_size`` (beyond float rounding, ~1e-5 in a score):
    a batch only ever holds images of one size (grouped by the sizes the annotation file gives,
    and split again by the sizes the images have), so no padding enters the network, whose
    GroupNorm layers would see it. Results keep the data set's order. The ground truth is read
    and checked (``read_ground_truth``) before any image is.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if label_to_category_id is None:
        label_to_category_id = dataset.label_to_category_id
    coco_gt = ground_truth_coco(read_ground_truth(dataset.ann_file))
    image_ids = [int(i) for i in dataset.image_ids]
    unknown = [i for i in image_ids if i not in coco_gt.imgs]
    if unknown:
        raise ValueError(f"the dataset has image ids that {dataset.ann_file} does not: {unknown[:10]}")
    sizes = [(coco_gt.imgs[i]["height"], coco_gt.imgs[i]["width"]) for i in image_ids]
    batches = batches_of_one_size(sizes, batch_size)
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=batches, num_workers=num_workers, collate_fn=list
    )
    was_training = model.training
    device = device if device is not None else next(model.parameters()).device
    model.to(device).eval()
    try:
        with torch.inference_mode():
            detections = detect(model, loader, batches, len(image_ids), device, progress)
    finally:
        model.train(was_training)
    results = detections_to_coco_results(detections, image_ids, label_to_category_id)
    return coco_evaluate(coco_gt, results, verbose=verbose)


def detect(
    model: nn.Module,
    loader: Iterable[list],
    batches: list[list[int]],
    num_images: int,
    device: str | torch.device,
    progress: bool,
) -> list[dict[str, torch.Tensor]]:
    """Run ``model`` on every batch of ``loader`` (``batches[b]`` holds batch b's data set
    indices) and return the ``num_images`` detection dicts in data set order, on the CPU."""
    detections: list[dict[str, torch.Tensor]] = [{} for _ in range(num_images)]
    for indices, batch in zip(
        batches, tqdm(loader, desc="evaluate", unit="batch", disable=not progress), strict=True
    ):
        by_shape: dict[tuple[int, ...], list[int]] = {}  # in case transforms changed sizes
        for j, (image, _) in enumerate(batch):
            by_shape.setdefault(tuple(image.shape), []).append(j)
        for js in by_shape.values():
            outputs = model([batch[j][0].to(device) for j in js])
            if len(outputs) != len(js):
                raise ValueError(f"model gave {len(outputs)} outputs for {len(js)} images")
            for j, out in zip(js, outputs, strict=True):
                detections[indices[j]] = {k: v.cpu() for k, v in out.items()}
    return detections


def format_per_class_ap(per_class: dict[str | int, float]) -> str:
    """A two-column text table of AP per category."""
    width = max([len(str(k)) for k in per_class] + [len("category")])
    lines = [f"{'category':<{width}}  AP[.5:.95]"]
    lines += [f"{str(k):<{width}}  {ap:10.3f}" for k, ap in per_class.items()]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command line; every argument is checked by argparse before any work starts."""
    parser = argparse.ArgumentParser(
        prog="python -m retina_edu.evaluate",
        description="COCO evaluation (pycocotools) of a RetinaNet checkpoint on a COCO data set.",
    )
    parser.add_argument(
        "--checkpoint", type=cli.existing_file, required=True, help="checkpoint written by training"
    )
    parser.add_argument("--ann-file", type=cli.existing_file, required=True, help="COCO annotation JSON")
    parser.add_argument("--image-dir", type=cli.existing_folder, required=True, help="folder of the images")
    parser.add_argument("--batch-size", type=cli.integer_at_least(1), default=8)
    parser.add_argument(
        "--results-out", type=cli.writable_file, default=None, help="also write COCO results JSON here"
    )
    cli.add_device_argument(parser)
    parser.add_argument(
        "--num-workers", type=cli.integer_at_least(0), default=0, help="data loader worker processes"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> CocoEvalResult:
    """Command line: evaluate a checkpoint on a COCO-format data set and print the AP table.

    Bad arguments and bad files (annotation file, image files, checkpoint, a checkpoint made for
    other categories) end with one line on stderr and exit status 2 before any inference.
    """
    parser = build_parser()
    args = parser.parse_args(argv)

    # imported here: only the command line needs them
    from retina_edu.checkpoint import CheckpointError, check_labels, load_checkpoint, model_from_checkpoint

    try:
        dataset = CocoDetection(ann_file=args.ann_file, image_dir=args.image_dir)
        dataset.check_files()
        state = load_checkpoint(args.checkpoint, map_location="cpu")
        check_labels(args.checkpoint, state, dataset.label_to_category_id, dataset.class_names, args.ann_file)
        model = model_from_checkpoint(args.checkpoint, state)
        prepare_device(args.device)
        result = evaluate_model(
            model,
            dataset,
            batch_size=args.batch_size,
            device=args.device,
            num_workers=args.num_workers,
        )
    except (CocoFormatError, ImageFileError, FileNotFoundError, CheckpointError) as error:
        cli.fail(parser, str(error))
    if args.results_out is not None:
        path = write_results(result.results, args.results_out)
        print(f"wrote {len(result.results)} results to {path}")
    print()
    for names in (STAT_NAMES[:6], STAT_NAMES[6:]):  # the AP numbers, then the AR numbers
        print("  ".join(f"{name}={result.stats[name]:.3f}" for name in names))
    print()
    print(format_per_class_ap(result.per_class_ap()))
    return result


if __name__ == "__main__":
    main()
