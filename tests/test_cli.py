"""The command lines: every bad argument or file gets one line naming it, exit status 2, and no
work (no data set made, no model built, no inference) happens before the checks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

import retina_edu.evaluate as evaluate_module
import retina_edu.train as train_module
from retina_edu import RetinaNet
from retina_edu.checkpoint import load_checkpoint, save_checkpoint
from retina_edu.data import CocoDetection
from retina_edu.device import DEVICE_ENV, default_device
from retina_edu.train import FIELD_ARGUMENTS, TrainConfig, build_parser

from .conftest import TINY


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory) -> tuple[Path, list[str]]:
    """A finished two-step run of the command line: its checkpoint and its arguments."""
    out = tmp_path_factory.mktemp("run")
    args = train_args(data, out)
    train_module.main(args)
    return out / "last.pt", args


@pytest.fixture
def no_work(monkeypatch):
    """Make building a model, making the synthetic data set or evaluating fail the test."""

    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the inputs were checked")

    monkeypatch.setattr(train_module, "ensure_synthetic_dataset", forbidden)
    monkeypatch.setattr(train_module, "RetinaNet", forbidden)
    monkeypatch.setattr(evaluate_module, "evaluate_model", forbidden)


def train_args(data: CocoDetection, out: Path) -> list[str]:
    return [
        "--ann-file", str(data.ann_file), "--image-dir", str(data.image_dir), "--out", str(out),
        "--steps", "2", "--batch-size", "2", "--warmup-steps", "1", "--device", "cpu",
    ]  # fmt: skip


def error_line(main, argv: list[str], capsys) -> str:
    """Run a command line that must fail: check exit status 2 and return its error line."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "no message"
    assert "Traceback" not in "\n".join(err)
    return err[-1]


def only_line(main, argv: list[str], capsys) -> str:
    """Like ``error_line`` for errors found in files: the message is the one line on stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# ---------------------------------------------------------------- train: arguments


def test_every_training_setting_has_a_checked_argument():
    assert set(FIELD_ARGUMENTS) == {f.name for f in TrainConfig.__dataclass_fields__.values()}


BAD_TRAIN_ARGUMENTS = {
    # case: (arguments, what the line must say after "argument ")
    "zero steps": (["--steps", "0"], "--steps: must be an integer >= 1, got '0'"),
    "steps not a number": (["--steps", "ten"], "--steps: must be an integer >= 1, got 'ten'"),
    "zero batch": (["--batch-size", "0"], "--batch-size: must be an integer >= 1, got '0'"),
    "negative lr": (["--lr", "-1"], "--lr: must be a number > 0, got '-1'"),
    "zero lr": (["--lr", "0"], "--lr: must be a number > 0, got '0'"),
    "nan lr": (["--lr", "nan"], "--lr: must be a finite number, got 'nan'"),
    "unknown optimizer": (["--optimizer", "adam"], "--optimizer: invalid choice: 'adam'"),
    "unknown schedule": (["--schedule", "linear"], "--schedule: invalid choice: 'linear'"),
    "zero grad clip": (["--grad-clip", "0"], "--grad-clip: must be a number > 0, got '0' (or 'none'"),
    "negative grad clip": (["--grad-clip", "-1"], "--grad-clip: must be a number > 0, got '-1'"),
    "negative warm-up": (["--warmup-steps", "-1"], "--warmup-steps: must be an integer >= 0"),
    "flip probability 2": (["--hflip-prob", "2"], "--hflip-prob: must be a number in [0, 1], got '2'"),
    "momentum 1": (["--momentum", "1"], "--momentum: must be a number in [0, 0.999]"),
    "zero time limit": (["--time-limit", "0"], "--time-limit: must be a number > 0"),
    "malformed device": (["--device", "gpu0"], "--device: not a device: 'gpu0'"),
    "unknown preset": (["--preset", "large"], "--preset: invalid choice: 'large'"),
}


@pytest.mark.parametrize("case", BAD_TRAIN_ARGUMENTS)
def test_bad_training_arguments_get_one_line_before_any_work(case, data, tmp_path, capsys, no_work):
    argv, expected = BAD_TRAIN_ARGUMENTS[case]
    line = error_line(train_module.main, [*train_args(data, tmp_path / "out"), *argv], capsys)
    assert line.startswith("python -m retina_edu.train: error: argument ")
    assert expected in line
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_refused(data, tmp_path, capsys, no_work):
    line = error_line(train_module.main, [*train_args(data, tmp_path), "--device", "cuda"], capsys)
    assert "argument --device: 'cuda': CUDA is not available on this machine" in line
    line = error_line(evaluate_module.main, ["--device", "cuda:0"], capsys)
    assert "argument --device: 'cuda:0': CUDA is not available" in line


def test_the_device_variable_chooses_the_default_device(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    assert default_device() == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert default_device() == "cpu"
    assert build_parser().parse_args([]).device == "cpu"


@pytest.mark.parametrize(
    "value,expected",
    [("gpu0", "RETINA_EDU_DEVICE='gpu0' is not a device"), ("cuda", "CUDA is not available on this machine")],
)
def test_a_bad_device_variable_is_named_before_any_work(value, expected, monkeypatch, capsys, no_work):
    if value == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.setenv(DEVICE_ENV, value)
    with pytest.raises(ValueError, match=expected):
        default_device()
    for main in (train_module.main, evaluate_module.main):
        assert expected in error_line(main, [], capsys)


def test_missing_and_wrong_kinds_of_paths_are_named(data, tmp_path, capsys, no_work):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    cases = [
        (["--ann-file", str(tmp_path / "nope.json")], f"argument --ann-file: no file {tmp_path}/nope.json"),
        (["--ann-file", str(tmp_path)], f"argument --ann-file: {tmp_path} is a folder, expected a file"),
        (["--image-dir", str(tmp_path / "nope")], f"argument --image-dir: no folder {tmp_path}/nope"),
        (["--resume", str(tmp_path / "last.pt")], f"argument --resume: no file {tmp_path}/last.pt"),
        (["--out", str(a_file)], f"argument --out: {a_file} is a file, expected a folder"),
        (["--out", str(a_file / "run")], f"argument --out: cannot create {a_file}/run: {a_file} is a file"),
    ]
    for argv, expected in cases:
        assert expected in error_line(train_module.main, [*train_args(data, tmp_path / "out"), *argv], capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_out_folder_is_refused_before_training(data, tmp_path, capsys, no_work):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    line = error_line(train_module.main, train_args(data, locked / "run"), capsys)
    assert f"argument --out: cannot write to {locked}: permission denied" in line


def test_grad_clip_none_turns_clipping_off(data, tmp_path, capsys):
    assert build_parser().parse_args(["--grad-clip", "none"]).grad_clip is None
    assert build_parser().parse_args([]).grad_clip == TrainConfig().grad_clip
    train_module.main([*train_args(data, tmp_path), "--grad-clip", "none"])
    assert load_checkpoint(tmp_path / "last.pt")["train_config"]["grad_clip"] is None
    assert "saved" in capsys.readouterr().out


@pytest.mark.parametrize("field, value", [("grad_clip", 0.0), ("grad_clip", -1.0), ("lr", 0.0)])
def test_the_library_refuses_what_the_command_line_refuses(field, value):
    with pytest.raises(ValueError, match=f"{field} must be > 0"):
        TrainConfig(**{field: value})


# ---------------------------------------------------------------- train: the files they name


def test_resuming_a_finished_run_says_so(finished, capsys, no_work):
    checkpoint, args = finished
    assert train_module.main([*args, "--resume", str(checkpoint)]) is None
    assert (
        capsys.readouterr().out.strip()
        == f"{checkpoint} is already finished: it did all 2 steps, nothing to do"
    )


def test_resuming_with_other_settings_names_them(finished, capsys, no_work):
    checkpoint, args = finished
    line = only_line(train_module.main, [*args, "--resume", str(checkpoint), "--lr", "0.5"], capsys)
    assert f"{checkpoint} was made with other training settings: lr 0.001 in the checkpoint, 0.5 here" in line


def test_resuming_with_another_preset_names_the_differences(finished, capsys, no_work):
    checkpoint, args = finished
    line = only_line(train_module.main, [*args, "--resume", str(checkpoint), "--preset", "paper"], capsys)
    assert f"{checkpoint} was made for another model: " in line
    assert "head_norm 'group' in the checkpoint, 'none' here" in line  # the cpu preset's, the paper's


def _edited_copy(data: CocoDetection, tmp_path: Path, edit) -> Path:
    """The data set's annotation file with ``edit(coco_dict)`` applied, beside the original."""
    coco = json.loads(data.ann_file.read_text())
    edit(coco)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(coco))
    return path


def _drop_last_category(coco: dict) -> None:
    last = coco["categories"].pop()["id"]
    coco["annotations"] = [a for a in coco["annotations"] if a["category_id"] != last]


def _renumber_categories(coco: dict) -> None:
    for entry in coco["categories"]:
        entry["id"] += 10
    for a in coco["annotations"]:
        a["category_id"] += 10


def _resume_args(args: list[str], ann_file: Path, checkpoint: Path, image_dir: Path) -> list[str]:
    return [*args, "--ann-file", str(ann_file), "--image-dir", str(image_dir), "--resume", str(checkpoint)]


def test_resuming_on_data_with_another_class_count_is_refused(finished, data, tmp_path, capsys, no_work):
    checkpoint, args = finished
    ann_file = _edited_copy(data, tmp_path, _drop_last_category)
    line = only_line(train_module.main, _resume_args(args, ann_file, checkpoint, data.image_dir), capsys)
    assert f"{checkpoint} was made for another model: num_classes 5 in the checkpoint, 4 here" in line


def test_resuming_on_renumbered_categories_is_refused(finished, data, tmp_path, capsys, no_work):
    checkpoint, args = finished
    ann_file = _edited_copy(data, tmp_path, _renumber_categories)
    line = only_line(train_module.main, _resume_args(args, ann_file, checkpoint, data.image_dir), capsys)
    assert f"{checkpoint} and {ann_file} disagree on what the labels mean" in line
    assert "label 0: category 1 'circle' in the checkpoint, category 11 'circle' in the file" in line


def test_a_corrupt_checkpoint_gets_one_line_without_torchs_advice(data, tmp_path, capsys, no_work):
    checkpoint = tmp_path / "random.pt"
    checkpoint.write_bytes(os.urandom(2000))
    line = only_line(train_module.main, [*train_args(data, tmp_path), "--resume", str(checkpoint)], capsys)
    assert f"{checkpoint} is not a readable checkpoint" in line
    assert "weights_only" not in line


def test_a_malformed_annotation_file_gets_one_line(data, tmp_path, capsys, no_work):
    ann_file = _edited_copy(data, tmp_path, lambda coco: coco["annotations"][2].pop("bbox"))
    argv = [*train_args(data, tmp_path), "--ann-file", str(ann_file)]
    line = only_line(train_module.main, argv, capsys)
    assert f"{ann_file}: annotations[2] (id 3) has no bbox" in line


def test_a_missing_image_is_found_before_training(data, tmp_path, capsys, no_work):
    ann_file = _edited_copy(data, tmp_path, lambda coco: coco["images"][3].update(file_name="gone.png"))
    line = only_line(train_module.main, [*train_args(data, tmp_path), "--ann-file", str(ann_file)], capsys)
    assert f"{ann_file}: 1 of 4 image files are missing: {data.image_dir}/gone.png" in line
    assert not (tmp_path / "last.pt").exists()


def test_an_undecodable_image_is_named_with_its_entry(data, tmp_path, capsys):
    image_dir = tmp_path / "images"
    image_dir.mkdir()
    for path in data.image_dir.iterdir():
        (image_dir / path.name).write_bytes(path.read_bytes())
    broken = image_dir / "000002.png"
    broken.write_bytes(broken.read_bytes()[:200])  # truncated
    argv = [*train_args(data, tmp_path), "--image-dir", str(image_dir)]
    line = error_line(train_module.main, argv, capsys)  # the last line, under the progress bar
    assert f"{data.ann_file}: images[2] (id 3): cannot decode {broken}" in line


# ---------------------------------------------------------------- evaluate


@pytest.fixture(scope="module")
def checkpoint(data, tmp_path_factory) -> Path:
    """A tiny untrained model saved with the data set's label map."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("checkpoint") / "tiny.pt"
    return save_checkpoint(
        path,
        RetinaNet(TINY),
        class_names=data.class_names,
        label_to_category_id=data.label_to_category_id,
    )


def eval_args(data: CocoDetection, checkpoint: Path, ann_file: Path | None = None) -> list[str]:
    ann = str(ann_file or data.ann_file)
    return ["--checkpoint", str(checkpoint), "--ann-file", ann, "--image-dir", str(data.image_dir)]


def test_bad_evaluation_arguments_get_one_line_before_any_work(data, checkpoint, tmp_path, capsys, no_work):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    cases = [
        (["--batch-size", "0"], "argument --batch-size: must be an integer >= 1, got '0'"),
        (["--num-workers", "-1"], "argument --num-workers: must be an integer >= 0, got '-1'"),
        (["--checkpoint", str(tmp_path / "x.pt")], f"argument --checkpoint: no file {tmp_path}/x.pt"),
        (["--ann-file", str(tmp_path)], f"argument --ann-file: {tmp_path} is a folder, expected a file"),
        (["--image-dir", str(a_file)], f"argument --image-dir: no folder {a_file} (it is a file)"),
        (
            ["--results-out", str(tmp_path)],
            f"argument --results-out: {tmp_path} is a folder, expected a file",
        ),
        (
            ["--results-out", str(a_file / "r.json")],
            f"argument --results-out: cannot create {a_file}/r.json: {a_file} is a file",
        ),
        (["--device", "cuda:x"], "argument --device: not a device: 'cuda:x'"),
    ]
    for argv, expected in cases:
        line = error_line(evaluate_module.main, [*eval_args(data, checkpoint), *argv], capsys)
        assert line.startswith("python -m retina_edu.evaluate: error: ") and expected in line


def test_evaluating_a_checkpoint_of_another_class_count_is_refused(
    data, checkpoint, tmp_path, capsys, no_work
):
    ann_file = _edited_copy(data, tmp_path, _drop_last_category)
    line = only_line(evaluate_module.main, eval_args(data, checkpoint, ann_file), capsys)
    assert f"{checkpoint} has 5 classes but {ann_file} has 4 categories" in line


def test_evaluating_on_renumbered_categories_is_refused(data, checkpoint, tmp_path, capsys, no_work):
    ann_file = _edited_copy(data, tmp_path, _renumber_categories)
    line = only_line(evaluate_module.main, eval_args(data, checkpoint, ann_file), capsys)
    assert f"{checkpoint} and {ann_file} disagree on what the labels mean: label 0: category 1" in line


def test_evaluating_a_corrupt_checkpoint_gets_one_line(data, checkpoint, tmp_path, capsys, no_work):
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(checkpoint.read_bytes()[:3000])
    line = only_line(evaluate_module.main, eval_args(data, truncated), capsys)
    assert f"{truncated} is not a readable checkpoint (corrupt or truncated?)" in line
    assert "weights_only" not in line


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda coco: coco["annotations"][0].pop("id"), "annotations[0] has no id"),
        (lambda coco: coco["images"][1].update(id="2"), "images[1] (id '2'): the id must be an integer"),
        (lambda coco: coco["annotations"][1].update(id=1), "annotations[1] (id 1) repeats the id"),
    ],
)
def test_an_annotation_file_evaluation_cannot_use_is_refused_first(
    data, checkpoint, tmp_path, capsys, no_work, edit, expected
):
    ann_file = _edited_copy(data, tmp_path, edit)
    line = only_line(evaluate_module.main, eval_args(data, checkpoint, ann_file), capsys)
    assert f"{ann_file}: {expected}" in line


def test_evaluation_with_a_missing_image_is_refused_first(data, checkpoint, tmp_path, capsys, no_work):
    ann_file = _edited_copy(data, tmp_path, lambda coco: coco["images"][0].update(file_name="gone.png"))
    line = only_line(evaluate_module.main, eval_args(data, checkpoint, ann_file), capsys)
    assert f"1 of 4 image files are missing: {data.image_dir}/gone.png" in line


def test_evaluation_runs_and_names_an_undecodable_image(data, checkpoint, tmp_path, capsys):
    results = tmp_path / "out" / "results.json"
    result = evaluate_module.main([*eval_args(data, checkpoint), "--results-out", str(results)])
    assert len(json.loads(results.read_text())) == len(result.results)
    capsys.readouterr()
    image_dir = tmp_path / "images"
    image_dir.mkdir()
    for path in data.image_dir.iterdir():
        (image_dir / path.name).write_bytes(path.read_bytes())
    broken = image_dir / "000001.png"
    broken.write_bytes(broken.read_bytes()[:200])  # truncated
    argv = [*eval_args(data, checkpoint)[:-1], str(image_dir)]
    line = error_line(evaluate_module.main, argv, capsys)  # the last line, under the progress bar
    assert f"{data.ann_file}: images[1] (id 2): cannot decode {broken}: image file is truncated" in line


def test_an_error_in_a_data_loader_worker_is_shown_as_its_own_line(data, tmp_path, capsys):
    from torch.utils.data import DataLoader

    from retina_edu import cli
    from retina_edu.data.coco import ImageFileError

    image_dir = tmp_path / "images"
    image_dir.mkdir()
    for path in data.image_dir.iterdir():
        (image_dir / path.name).write_bytes(path.read_bytes()[:200])  # every image truncated
    dataset = CocoDetection(data.ann_file, image_dir)
    with pytest.raises(ImageFileError) as error:
        list(DataLoader(dataset, batch_size=1, num_workers=1, collate_fn=list))
    assert "Original Traceback" in str(error.value)  # what torch re-raises: the worker's traceback
    with pytest.raises(SystemExit) as exit_info:
        cli.fail(evaluate_module.build_parser(), str(error.value))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        f"python -m retina_edu.evaluate: error: {data.ann_file}: images[0] (id 1): "
        f"cannot decode {image_dir}/000000.png: image file is truncated\n"
    )
