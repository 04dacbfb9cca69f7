"""The README's "Beyond the laptop" recipe end to end on the CPU: train with a data loader's
workers and fp16 mixed precision on a COCO-format set of JPEG images with real COCO's quirks,
then evaluate the checkpoint, each as its command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from retina_edu import default_device
from retina_edu.train import main as train_main

# Real COCO's quirks: category ids with gaps (COCO's run 1..90 for 80 classes), a crowd region
# (ignored in training, matched as "ignore" in evaluation), an image without any object, and
# images of two shapes.
CATEGORIES = [{"id": 3, "name": "car"}, {"id": 7, "name": "train"}, {"id": 12, "name": "stop sign"}]
SIZES = [(80, 64), (64, 80)]  # (width, height)


def make_coco_jpegs(root: Path, num_images: int = 8) -> Path:
    """``num_images`` JPEG files under ``root/images`` and their ``root/annotations.json``.

    Image 0 has no objects; the others one filled rectangle per category (the third crosses the
    right edge of the 64-px-wide images, as COCO boxes may), and image 1 also a crowd region."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    images, annotations = [], []
    for n in range(num_images):
        width, height = SIZES[n % 2]
        image = Image.fromarray(rng.integers(0, 80, (height, width, 3), dtype=np.uint8))
        draw = ImageDraw.Draw(image)
        objects = (
            []
            if n == 0
            else [(c["id"], [4 + 20 * k, 6 + 18 * k, 22, 20], 0) for k, c in enumerate(CATEGORIES)]
        )
        if n == 1:
            objects.append((3, [50, 40, 25, 20], 1))  # a crowd of cars, drawn like one object
        for category_id, (x, y, w, h), crowd in objects:
            draw.rectangle([x, y, x + w, y + h], fill=tuple(int(v) for v in rng.integers(120, 256, 3)))
            annotations.append(
                {"id": len(annotations) + 1, "image_id": 1000 + n, "category_id": category_id,
                 "bbox": [x, y, w, h], "area": w * h, "iscrowd": crowd}
            )  # fmt: skip
        name = f"{1000 + n:012d}.jpg"
        image.save(root / "images" / name, quality=90)
        images.append({"id": 1000 + n, "file_name": name, "width": width, "height": height})
    ann_file = root / "annotations.json"
    ann_file.write_text(json.dumps({"images": images, "annotations": annotations, "categories": CATEGORIES}))
    return ann_file


def run(module: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


# bf16 is the README's recipe; fp16 is its fallback for GPUs without bfloat16 (a GradScaler).
# On the CPU, bf16 runs on PyTorch's own convolution kernels (train.bf16_cpu_workaround): oneDNN's
# bf16 backward now and then left a row of NaN in P7's weight gradient.
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_train_with_workers_and_amp_then_evaluate(tmp_path, amp):
    ann_file = make_coco_jpegs(tmp_path / "coco")
    data = ["--ann-file", str(ann_file), "--image-dir", str(tmp_path / "coco" / "images")]
    out = tmp_path / "run"
    printed = run(
        "retina_edu.train", *data, "--preset", "tiny", "--out", str(out), "--workers", "2",
        "--amp", amp, "--steps", "3", "--batch-size", "2", "--warmup-steps", "1",
        "--device", default_device(),
    )  # fmt: skip
    assert "3 steps" in printed and (out / "last.pt").is_file()
    # batches of 2 of each shape: the tiny preset cannot take one 64-px image alone (its 1x1 P7
    # leaves GroupNorm one value per group)
    printed = run("retina_edu.evaluate", "--checkpoint", str(out / "last.pt"), *data, "--batch-size", "2")
    assert "AP=" in printed and "stop sign" in printed  # the AP line and the per-category table


@pytest.mark.parametrize(
    "argument,value,says",
    [("--amp", "fp8", "invalid choice: 'fp8'"), ("--workers", "-1", "must be an integer >= 0")],
)
def test_bad_amp_and_workers_get_one_line(tmp_path, capsys, argument, value, says):
    with pytest.raises(SystemExit) as exit_info:
        train_main(["--out", str(tmp_path), argument, value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert says in err[-1] and argument in err[-1]


def test_a_batch_that_torchrun_cannot_share_equally_gets_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "0")  # as torchrun --nproc-per-node 3 sets them
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(SystemExit) as exit_info:
        train_main(["--out", str(tmp_path), "--batch-size", "16"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("--batch-size 16: not a multiple of the 3 processes torchrun started")
    assert not (tmp_path / "last.pt").exists()
