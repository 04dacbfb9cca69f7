"""Saving and loading checkpoints safely.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, read back with
``torch.load(..., weights_only=True)``: loading never runs code from the file. It holds the
model's weights and config, and, for exact resumption, the optimizer, the schedule, the step
and the loss history.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

from retina_edu.config import RetinaNetConfig
from retina_edu.model import RetinaNet

FORMAT_VERSION = 1


def config_to_dict(config: RetinaNetConfig) -> dict[str, Any]:
    """A ``RetinaNetConfig`` as plain Python values (tuples become lists)."""
    return dataclasses.asdict(config)


def config_from_dict(values: dict[str, Any]) -> RetinaNetConfig:
    """Inverse of ``config_to_dict``; unknown keys are an error that names them."""
    fields = {f.name for f in dataclasses.fields(RetinaNetConfig)}
    unknown = set(values) - fields
    if unknown:
        raise ValueError(f"checkpoint config has unknown fields {sorted(unknown)}")

    def as_tuple(value):
        return tuple(as_tuple(v) for v in value) if isinstance(value, list | tuple) else value

    return RetinaNetConfig(**{k: as_tuple(v) for k, v in values.items()})


def save_checkpoint(path: str | Path, model: RetinaNet, **extra: Any) -> Path:
    """Write ``model`` (weights and config) and ``extra`` entries to ``path``.

    The file is written next to its destination and then renamed, so a run killed while
    saving leaves the previous checkpoint intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format_version": FORMAT_VERSION,
        "config": config_to_dict(model.config),
        "model": model.state_dict(),
        **extra,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint`` with ``weights_only=True``.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file for one
    that is corrupt, not a retina_edu checkpoint, or of another format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - whatever failed, the file is unreadable
        raise ValueError(f"{path} is not a readable checkpoint (corrupt or truncated?): {error}") from error
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise ValueError(f"{path} is not a retina_edu checkpoint (no 'model' and 'config' entries)")
    if state.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} has format version {state.get('format_version')}, expected {FORMAT_VERSION}"
        )
    return state


def load_model(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[RetinaNet, dict[str, Any]]:
    """A ``RetinaNet`` in eval mode with the checkpoint's weights, and the checkpoint's other entries."""
    state = load_checkpoint(path, map_location)
    model = RetinaNet(config_from_dict(state["config"]))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        raise ValueError(f"{path}: weights do not fit the model its config describes: {error}") from error
    meta = {k: v for k, v in state.items() if k != "model"}
    meta["config"] = model.config
    return model.eval(), meta
