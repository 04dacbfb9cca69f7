"""Worked answers to the exercises of 09_coco_evaluation."""

import numpy as np


# Exercise 1
def ap_101(is_tp, num_gt):
    """COCO's 101-point interpolated AP from TP/FP flags sorted best score first."""
    tp = np.asarray(is_tp, dtype=bool)
    if tp.size == 0:
        return 0.0
    tp_cum, fp_cum = np.cumsum(tp), np.cumsum(~tp)
    recall = tp_cum / num_gt
    precision = tp_cum / (tp_cum + fp_cum)
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # non-increasing
    levels = np.linspace(0, 1, 101)
    first = np.searchsorted(recall, levels, side="left")  # first rank that reaches each recall level
    values = [precision[i] if i < len(precision) else 0.0 for i in first]
    return float(np.mean(values))


# Exercise 2: areas (a) 900, (b) pi * 20² = 1257, (c) 2 * 40 * 40/3 - (40/3)² = 889, (d) 10000,
# against the limits 32² = 1024 and 96² = 9216. The circle's and the cross's boxes are the same size,
# but the cross covers less of its box.
answer_areas = ("small", "medium", "small", "large")


# Exercise 3
def ap_at(coco_eval, category_id, iou):
    """AP of one category at one IoU threshold (area "all", 100 detections) from the precision array."""
    params = coco_eval.params
    t = int(np.flatnonzero(np.isclose(params.iouThrs, iou))[0])
    k = params.catIds.index(category_id)
    a = params.areaRngLbl.index("all")
    m = params.maxDets.index(100)
    return float(coco_eval.eval["precision"][t, :, k, a, m].mean())
