"""Saving and loading checkpoints safely.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, read back with
``torch.load(..., weights_only=True)``: loading never runs code from the file. It holds the
model's weights and config, and, for exact resumption, the optimizer, the schedule, the step
and the loss history.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import pickle
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from retina_edu.config import RetinaNetConfig
from retina_edu.model import RetinaNet
from retina_edu.paths import shipped_checkpoint_path

FORMAT_VERSION = 1
MAX_LISTED_DIFFERENCES = 5  # a mismatch message names this many differences, then counts the rest


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, not retina_edu's, or not made for this data
    or these settings. The message names the file and what is wrong."""


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


def _unpickling_detail(error: Exception) -> str:
    """What torch's weights-only unpickler refused, without torch's advice to turn the check off."""
    found = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\. |\n\n|$)", str(error), flags=re.DOTALL)
    return " ".join(found.group(1).split()) if found else type(error).__name__


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint`` with ``weights_only=True``.

    Raises ``FileNotFoundError`` for a missing file and ``CheckpointError`` naming the file for
    one that is corrupt, holds anything but tensors and plain values (never unpickled), is not a
    retina_edu checkpoint, or is of another format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path} is not a readable checkpoint: it is corrupt or holds objects other than tensors "
            f"and plain values, which retina_edu never loads ({_unpickling_detail(error)})"
        ) from None
    except Exception as error:  # noqa: BLE001 - whatever failed, the file is unreadable
        reason = str(error).split(". ")[0]  # torch's first sentence; the rest is advice
        if "weights_only" in reason:  # never suggest loading without the weights-only check
            reason = type(error).__name__
        raise CheckpointError(
            f"{path} is not a readable checkpoint (corrupt or truncated?): {reason}"
        ) from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"{path} is not a retina_edu checkpoint (no 'model' and 'config' entries)")
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format version {state.get('format_version')}, expected {FORMAT_VERSION}"
        )
    return state


def _differences(saved: dict[str, Any], wanted: dict[str, Any]) -> str:
    """``"lr 0.001 in the checkpoint, 0.002 here; ..."`` for the keys whose values differ."""
    keys = [k for k in sorted(saved.keys() | wanted.keys()) if saved.get(k) != wanted.get(k)]
    text = "; ".join(
        f"{k} {saved.get(k)!r} in the checkpoint, {wanted.get(k)!r} here"
        for k in keys[:MAX_LISTED_DIFFERENCES]
    )
    more = len(keys) - MAX_LISTED_DIFFERENCES
    return text + (f"; and {more} more" if more > 0 else "")


def _config_of(path: str | Path, state: dict[str, Any]) -> RetinaNetConfig:
    """The checkpoint's model config, or ``CheckpointError`` naming the file."""
    try:
        return config_from_dict(state["config"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: {error}") from None


def check_config(path: str | Path, state: dict[str, Any], config: RetinaNetConfig) -> None:
    """Raise ``CheckpointError`` naming the fields where the checkpoint's model config differs
    from ``config`` (e.g. another ``num_classes`` or preset), before any weights are loaded."""
    saved, wanted = config_to_dict(_config_of(path, state)), config_to_dict(config)
    if saved != wanted:
        raise CheckpointError(f"{path} was made for another model: {_differences(saved, wanted)}")


def _category(pair: tuple[int, str] | None) -> str:
    return "nothing" if pair is None else f"category {pair[0]} {pair[1]!r}"


def check_labels(
    path: str | Path,
    state: dict[str, Any],
    label_to_category_id: Sequence[int],
    class_names: Sequence[str],
    ann_file: str | Path,
) -> None:
    """Raise ``CheckpointError`` unless the checkpoint's labels mean the categories of ``ann_file``.

    Label ``k`` of the checkpoint is category ``state["label_to_category_id"][k]`` named
    ``state["class_names"][k]``; both must equal the data set's, label for label, or label ``k``
    would be scored as another class. A checkpoint without a label map is compared by its
    ``num_classes`` alone.
    """
    num_classes = _config_of(path, state).num_classes
    wanted = list(zip(label_to_category_id, class_names, strict=True))
    if num_classes != len(wanted):
        raise CheckpointError(f"{path} has {num_classes} classes but {ann_file} has {len(wanted)} categories")
    saved = list(zip(state.get("label_to_category_id") or [], state.get("class_names") or [], strict=False))
    if saved and saved != wanted:
        differ = [
            f"label {k}: {_category(s)} in the checkpoint, {_category(w)} in the file"
            for k, (s, w) in enumerate(itertools.zip_longest(saved, wanted))
            if s != w
        ]
        more = len(differ) - MAX_LISTED_DIFFERENCES
        raise CheckpointError(
            f"{path} and {ann_file} disagree on what the labels mean: "
            + "; ".join(differ[:MAX_LISTED_DIFFERENCES])
            + (f"; and {more} more" if more > 0 else "")
        )


def model_from_checkpoint(path: str | Path, state: dict[str, Any]) -> RetinaNet:
    """A ``RetinaNet`` in eval mode built from a loaded checkpoint's config and weights."""
    model = RetinaNet(_config_of(path, state))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit the model its config describes: {first}") from None
    return model.eval()


def load_model(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[RetinaNet, dict[str, Any]]:
    """A ``RetinaNet`` in eval mode with the checkpoint's weights, and the checkpoint's other entries."""
    state = load_checkpoint(path, map_location)
    model = model_from_checkpoint(path, state)
    meta = {k: v for k, v in state.items() if k != "model"}
    meta["config"] = model.config
    return model, meta


def load_shipped_model() -> tuple[RetinaNet, dict[str, Any]]:
    """The trained CPU-preset model that ships with the package, in eval mode, and its
    checkpoint's other entries (``load_model(shipped_checkpoint_path())``)."""
    return load_model(shipped_checkpoint_path())
