"""From dense outputs to detections (§4.1 "Inference").

"To improve speed, we only decode box predictions from at most 1k top-scoring predictions per
FPN level, after thresholding detector confidence at 0.05. The top predictions from all levels
are merged and non-maximum suppression with a threshold of 0.5 is applied to yield the final
detections."
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchvision.ops import batched_nms

from retina_edu.boxes import BoxCoder, box_iou
from retina_edu.config import DETECTIONS_PER_IMG, NMS_THRESH, SCORE_THRESH, TOPK_CANDIDATES


def nms(boxes: Tensor, scores: Tensor, iou_thresh: float) -> Tensor:
    """Greedy non-maximum suppression, written out to teach; ``torchvision.ops.nms`` runs it.

    boxes ``(N, 4)`` xyxy, scores ``(N,)``. Repeatedly keep the highest-scoring box left and drop
    every remaining box that overlaps it with IoU > ``iou_thresh``. Returns the kept indices
    ``(M,)`` int64, highest score first.
    """
    order = scores.argsort(descending=True, stable=True)
    iou = box_iou(boxes[order], boxes[order])  # (N, N), rows and columns in score order
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=boxes.device)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_thresh
    return order[torch.tensor(keep, dtype=torch.int64, device=boxes.device)]


def postprocess_detections(
    class_logits: Tensor,
    box_deltas: Tensor,
    anchors: Tensor,
    anchors_per_level: Sequence[int],
    image_sizes: Sequence[tuple[int, int]],
    *,
    box_coder: BoxCoder,
    score_thresh: float = SCORE_THRESH,
    topk_candidates: int = TOPK_CANDIDATES,
    nms_thresh: float = NMS_THRESH,
    detections_per_img: int = DETECTIONS_PER_IMG,
) -> list[dict[str, Tensor]]:
    """Detections for a batch, all images at once.

    class_logits ``(B, N, K)``, box_deltas ``(B, N, 4)``, anchors ``(N, 4)`` xyxy;
    ``anchors_per_level`` splits N into the pyramid levels; ``image_sizes`` are each image's
    ``(H, W)`` (boxes are clipped to it). Per level: scores above ``score_thresh``, at most
    ``topk_candidates`` of them; decode; then class-wise NMS per image and the best
    ``detections_per_img``. Returns per image ``{"boxes": (D, 4) xyxy, "scores": (D,),
    "labels": (D,) int64 in 0..K-1}``, highest score first. Boxes and scores are float32 even
    when the network ran in 16-bit mixed precision (float64 for float64 inputs).
    """
    dtype = torch.promote_types(class_logits.dtype, torch.float32)
    class_logits, box_deltas, anchors = class_logits.to(dtype), box_deltas.to(dtype), anchors.to(dtype)
    batch, _, num_classes = class_logits.shape
    scores, anchor_index, labels = [], [], []
    start = 0
    for count in anchors_per_level:
        level_scores = class_logits[:, start : start + count].sigmoid().flatten(1)  # (B, n_l·K)
        # the top k of each image, where k covers every score above the threshold (at most topk)
        k = min(topk_candidates, int((level_scores > score_thresh).sum(dim=1).max()))
        top_scores, top_index = level_scores.topk(k, dim=1)  # (B, k), best first
        scores.append(top_scores)
        anchor_index.append(start + top_index // num_classes)
        labels.append(top_index % num_classes)
        start += count
    scores, anchor_index, labels = (
        torch.cat(scores, 1),
        torch.cat(anchor_index, 1),
        torch.cat(labels, 1),
    )

    image_index = torch.arange(batch, device=scores.device)[:, None].expand_as(scores)  # (B, C)
    keep = scores > score_thresh  # (B, C)
    scores, labels, image_index = scores[keep], labels[keep], image_index[keep]  # (M,)
    anchor_index = anchor_index[keep]
    boxes = box_coder.decode(box_deltas[image_index, anchor_index], anchors[anchor_index])  # (M, 4)
    sizes = torch.as_tensor(image_sizes, dtype=boxes.dtype, device=boxes.device)[image_index]  # (M, 2)
    boxes = torch.minimum(boxes.clamp(min=0), sizes[:, [1, 0, 1, 0]])  # clip to each image

    # One NMS call for the whole batch: boxes of another image or class never suppress each other.
    kept = batched_nms(boxes, scores, image_index * num_classes + labels, nms_thresh)  # best first
    detections = []
    for b in range(batch):
        mine = kept[image_index[kept] == b][:detections_per_img]
        detections.append({"boxes": boxes[mine], "scores": scores[mine], "labels": labels[mine]})
    return detections
