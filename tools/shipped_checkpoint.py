"""Make, or re-make and compare, the trained CPU-preset checkpoint shipped in data/checkpoints/.

    python tools/shipped_checkpoint.py make        # train (seed 0), write retinanet_cpu.pt + .json
    python tools/shipped_checkpoint.py reproduce   # train again into runs/reproduce and compare:
                                                   # passes when the AP is within 0.01 of the record
    python tools/shipped_checkpoint.py make --loss ce   # the same recipe with α-balanced
                                                        # cross-entropy: retinanet_cpu_ce.pt + .json

The CE variant (focal_gamma = 0, focal_alpha = 0.75, the best α of the paper's Table 1a) is the
model notebook 06 asks "who carries the loss" of, beside the focal-loss one.

The weights are stored in float16 (half the size; the AP recorded is that of the stored file).
Training runs on one CPU thread, so the result does not depend on how many cores a machine has.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import torch

from retina_edu import RetinaNet, RetinaNetConfig
from retina_edu.checkpoint import load_model, save_checkpoint
from retina_edu.data import load_split
from retina_edu.evaluate import evaluate_model
from retina_edu.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "data" / "checkpoints"
SEED = 0
# loss variant → (file name, RetinaNetConfig changes); "focal" is the preset's own loss
VARIANTS = {
    "focal": ("retinanet_cpu.pt", {}),
    "ce": ("retinanet_cpu_ce.pt", {"focal_gamma": 0.0, "focal_alpha": 0.75}),  # Table 1a's best α
}
AP_TOLERANCE = 0.01  # the recorded AP counts as reproduced within this


def git_revision() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def train_and_export(path: Path, command: str, config_changes: dict) -> dict:
    train_set = load_split("train")
    cfg = TrainConfig(seed=SEED)
    torch.manual_seed(SEED)
    model = RetinaNet(RetinaNetConfig.cpu(num_classes=train_set.num_classes).replace(**config_changes))
    result = train(model, train_set, cfg)
    save_checkpoint(
        path,
        copy.deepcopy(result.model).half(),
        step=len(result.history),
        history=result.history,
        train_config=dataclasses.asdict(cfg),
        class_names=train_set.class_names,
        label_to_category_id=train_set.label_to_category_id,
        command=command,
        git_revision=git_revision(),
        train_seconds=round(result.seconds, 1),
    )
    shipped, _ = load_model(path)
    val_set = load_split("val")
    evaluation = evaluate_model(shipped, val_set, progress=False, verbose=False)
    record = {
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "command": command,
        "git_revision": git_revision(),
        "train_seconds": round(result.seconds, 1),
        "steps": len(result.history),
        "seed": SEED,
        "val_stats": {k: round(v, 4) for k, v in evaluation.stats.items()},
        "val_per_class_ap": {k: round(v, 4) for k, v in evaluation.per_class_ap().items()},
    }
    path.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["make", "reproduce"])
    parser.add_argument("--loss", choices=sorted(VARIANTS), default="focal", help="default: focal")
    args = parser.parse_args()
    torch.set_num_threads(1)
    name, changes = VARIANTS[args.loss]
    shipped_path, again_path = CHECKPOINTS / name, ROOT / "runs" / "reproduce" / name
    command = f"python tools/shipped_checkpoint.py {args.action}"
    if args.loss != "focal":
        command += f" --loss {args.loss}"
    if args.action == "make":
        record = train_and_export(shipped_path, command, changes)
        print(json.dumps(record, indent=2))
        return
    shipped = json.loads(shipped_path.with_suffix(".json").read_text())
    again = train_and_export(again_path, command, changes)
    a, _ = load_model(shipped_path)
    b, _ = load_model(again_path)
    diff = max(
        (p - q).abs().max().item()
        for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )
    ap_shipped, ap_again = shipped["val_stats"]["AP"], again["val_stats"]["AP"]
    print(f"largest weight difference: {diff:.3g} ({'bit-identical' if diff == 0 else 'not identical'})")
    print(f"AP shipped {ap_shipped:.4f} (made at {shipped['git_revision']})")
    print(f"AP re-trained {ap_again:.4f} (at {again['git_revision']})")
    if diff != 0:
        print("Weights are bit-identical only for the same code: a change that reorders floating-point")
        print("arithmetic anywhere in the step (even an equivalent formula) makes runs drift apart.")
    sys.exit(0 if abs(ap_again - ap_shipped) <= AP_TOLERANCE else 1)


if __name__ == "__main__":
    main()
