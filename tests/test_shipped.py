"""The files the project ships or generates are what data/README.md says they are."""

import hashlib
import json
from pathlib import Path

import pytest
import torch

from retina_edu import RetinaNetConfig
from retina_edu.checkpoint import load_shipped_model
from retina_edu.data import ensure_synthetic_dataset, load_split
from retina_edu.evaluate import evaluate_model

DATA = Path(__file__).resolve().parents[1] / "data"
CHECKPOINT = DATA / "checkpoints" / "retinanet_cpu.pt"
EXPECTED = {
    "train": (2000, 10057, "91c4359393bae3fb719fbb742a4fb6856778f904cce101f0d8e661b959870fc6"),
    "val": (300, 1504, "aa23dc7c35a6c47d4bc4ee9088e999018c6eee087ca924a0704aaef43cdd69ab"),
}


@pytest.fixture(scope="module")
def paths():
    return ensure_synthetic_dataset()


@pytest.mark.parametrize("split", ["train", "val"])
def test_default_dataset_is_the_recorded_one(paths, split):
    images, objects, digest = EXPECTED[split]
    content = json.loads(paths[split].read_text())
    assert (len(content["images"]), len(content["annotations"])) == (images, objects)
    assert hashlib.sha256(paths[split].read_bytes()).hexdigest() == digest


def test_shipped_checkpoint_matches_its_record(paths):
    record = json.loads(CHECKPOINT.with_suffix(".json").read_text())
    assert hashlib.sha256(CHECKPOINT.read_bytes()).hexdigest() == record["sha256"]
    model, meta = load_shipped_model()
    assert meta["config"] == RetinaNetConfig.cpu(num_classes=5)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    val = load_split("val")
    assert val.ann_file == paths["val"]
    assert meta["label_to_category_id"] == val.label_to_category_id
    stats = evaluate_model(model, val, progress=False, verbose=False).stats
    assert stats["AP"] == pytest.approx(record["val_stats"]["AP"], abs=1e-3)
    assert stats["AP"] > 0.5


def test_load_split_names_a_bad_split():
    with pytest.raises(ValueError, match="split must be 'train' or 'val', got 'test'"):
        load_split("test")
