"""Library functions refuse bad inputs with exceptions that name what is wrong, before any work:
checkpoints that are unreadable or made for another model, data sets with missing images."""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch

from retina_edu import RetinaNet
from retina_edu.checkpoint import (
    CheckpointError,
    check_config,
    check_labels,
    load_checkpoint,
    save_checkpoint,
)
from retina_edu.train import TrainConfig, train

from .conftest import TINY

CFG = TrainConfig(steps=1, batch_size=2, warmup_steps=0)


def never_called(step: int, record: dict) -> None:
    raise AssertionError("a training step ran")


@pytest.mark.parametrize("content", ["random", "pickled code"])
def test_an_unreadable_checkpoint_is_refused_without_torchs_advice(tmp_path, content):
    class Evil:
        def __reduce__(self):
            return (print, ("ran code from a checkpoint",))

    path = tmp_path / "bad.pt"
    if content == "random":
        path.write_bytes(os.urandom(2000))
    else:
        torch.save({"model": Evil(), "config": {}, "format_version": 1}, path)
    with pytest.raises(CheckpointError, match=f"{path} is not a readable checkpoint") as error:
        load_checkpoint(path)
    assert "weights_only" not in str(error.value)
    assert error.value.__cause__ is None and error.value.__suppress_context__  # torch's text hidden


def test_check_config_and_check_labels_say_what_differs(tmp_path):
    path = save_checkpoint(
        tmp_path / "m.pt", RetinaNet(TINY), label_to_category_id=[1, 2], class_names=["a", "b"]
    )
    state = load_checkpoint(path)
    check_config(path, state, TINY)  # the same: no error
    with pytest.raises(CheckpointError, match=r"another model: fpn_channels 32 in the checkpoint, 64 here$"):
        check_config(path, state, TINY.replace(fpn_channels=64))
    with pytest.raises(CheckpointError, match=r"has 5 classes but x\.json has 2 categories"):
        check_labels(path, state, [1, 2], ["a", "b"], "x.json")
    state["config"]["num_classes"] = 2
    check_labels(path, state, [1, 2], ["a", "b"], "x.json")  # the same: no error
    with pytest.raises(CheckpointError, match=r"label 1: category 2 'b' in the checkpoint, category 3 'b'"):
        check_labels(path, state, [1, 3], ["a", "b"], "x.json")
    with pytest.raises(CheckpointError, match=r"label 0: category 1 'a' in the checkpoint, category 1 'c'"):
        check_labels(path, state, [1, 2], ["c", "b"], "x.json")


def test_resuming_a_model_of_another_config_is_refused_before_loading(data, tmp_path):
    torch.manual_seed(0)
    train(RetinaNet(TINY), data, CFG, out_dir=tmp_path, progress=False)
    other = RetinaNet(TINY.replace(head_convs=3))
    with pytest.raises(CheckpointError, match="another model: head_convs 2 in the checkpoint, 3 here"):
        train(other, data, CFG, resume=tmp_path / "last.pt", progress=False, on_step=never_called)
    with pytest.raises(
        CheckpointError, match="other training settings: lr 0.001 in the checkpoint, 0.5 here"
    ):
        train(
            RetinaNet(TINY),
            data,
            dataclasses.replace(CFG, lr=0.5),
            resume=tmp_path / "last.pt",
            progress=False,
            on_step=never_called,
        )


def test_training_checks_every_image_file_before_the_first_step(data, tmp_path):
    missing = data.image_path(3)
    moved = tmp_path / "moved.png"
    missing.rename(moved)
    try:
        with pytest.raises(FileNotFoundError, match=f"1 of 4 image files are missing: {missing}"):
            train(RetinaNet(TINY), data, CFG, progress=False, on_step=never_called)
    finally:
        moved.rename(missing)
