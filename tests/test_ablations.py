"""The ablation study's machinery (benchmarks/ablations.py) on a tiny model and data set."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from retina_edu import RetinaNet, RetinaNetConfig
from retina_edu.data import CocoDetection, make_synthetic_coco

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "ablations.py"
spec = importlib.util.spec_from_file_location("ablations", PATH)
ablations = importlib.util.module_from_spec(spec)
sys.modules["ablations"] = ablations  # dataclasses look their module up there
spec.loader.exec_module(ablations)


def test_settings_cover_the_paper_tables_and_share_identical_runs():
    groups = {s.group for s in ablations.SETTINGS}
    assert len(groups) == 4
    by_name = {s.name: s for s in ablations.SETTINGS}
    # Table 1b's γ=2, α=.25 row is the default model, which is also Table 1c's 3 scales × 3 ratios
    assert ablations.same_run(by_name["FL gamma=2.0 alpha=0.25"]) == ablations.same_run(
        by_name["3 scale(s) x 3 ratio(s)"]
    )
    assert ablations.same_run(by_name["FL gamma=0.0 alpha=0.75"]) == ablations.same_run(
        by_name["CE alpha=0.75"]
    )
    # the prior rows train with SGD, so they are different runs from the AdamW ones
    assert ablations.same_run(by_name["FL pi=0.01"]) != ablations.same_run(by_name["FL gamma=2.0 alpha=0.25"])
    one_scale = RetinaNetConfig.cpu().replace(**by_name["1 scale(s) x 1 ratio(s)"].changes)
    assert one_scale.num_anchors_per_location == 1


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    ann = make_synthetic_coco(root, "val", num_images=6, seed=1)
    torch.manual_seed(0)
    return RetinaNet(RetinaNetConfig.cpu()), CocoDetection(ann, root / "val")


def test_figure4_curves_are_distributions(tiny):
    model, dataset = tiny
    curves = ablations.figure4(model, dataset, images=6)
    assert curves["counts"]["positive"] > 0 and curves["counts"]["negative"] > 1000
    for key, values in curves.items():
        if key.startswith("gamma"):
            v = torch.tensor(values)
            assert v[0] >= 0 and abs(v[-1] - 1) < 1e-4 and (v.diff() >= -1e-6).all(), key
    # a larger γ concentrates the negatives' loss on fewer samples: the curve lies lower
    assert sum(curves["gamma=2.0 negative"]) < sum(curves["gamma=0.0 negative"])


def test_run_one_records_loss_and_ap(tiny):
    _, dataset = tiny
    setting = ablations.SETTINGS[0]
    record = ablations.run_one(setting, seed=0, steps=2, train_set=dataset, val_set=dataset)
    assert record["loss_step0"] > 0 and 0 <= record["AP"] <= 1 and not record["diverged"]
    rows = ablations.summarise([record])
    assert rows[0]["seeds"] == 1 and rows[0]["AP_mean"] == round(record["AP"], 4)
