"""Argument checks shared by the command lines (``retina_edu.train``, ``retina_edu.evaluate``).

A command line is a user interface: each check is an argparse ``type=`` function, so a bad value
is answered by argparse with one line that names the argument (``argument --steps: must be an
integer >= 1, got '0'``) and exit status 2, before any data is read or any model is built.
Errors found later, in the files the arguments name (a malformed annotation file, a corrupt
checkpoint), go through ``fail``: one line, exit status 2, no traceback.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import torch

from retina_edu.device import DEVICE_ENV, default_device


def integer_at_least(minimum: int) -> Callable[[str], int]:
    """A ``type=`` for integers ``>= minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
        return value

    return parse


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_number(text: str) -> float:
    """A ``type=`` for finite numbers ``> 0`` (learning rates, time limits)."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def number_in(low: float, high: float) -> Callable[[str], float]:
    """A ``type=`` for numbers in ``[low, high]`` (probabilities, momentum, weight decay)."""

    def parse(text: str) -> float:
        value = _number(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a number in [{low:g}, {high:g}], got {text!r}")
        return value

    return parse


def positive_number_or_none(text: str) -> float | None:
    """A ``type=`` for a threshold that ``none`` turns off (``--grad-clip none``)."""
    if text.lower() == "none":
        return None
    try:
        return positive_number(text)
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"{error} (or 'none' to turn it off)") from None


def existing_file(text: str) -> Path:
    """A ``type=`` for a file that must exist (annotation files, checkpoints)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a folder, expected a file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no file {path}")
    return path


def existing_folder(text: str) -> Path:
    """A ``type=`` for a folder that must exist (image folders)."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"no folder {path}" + (" (it is a file)" if path.exists() else ""))
    return path


def _check_can_create(path: Path) -> None:
    """Raise unless ``path`` could be created: its nearest existing ancestor is a writable folder."""
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise argparse.ArgumentTypeError(f"cannot create {path}: {ancestor} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write to {ancestor}: permission denied")


def writable_folder(text: str) -> Path:
    """A ``type=`` for an output folder that exists and is writable, or can be created."""
    path = Path(text)
    if path.exists():
        if not path.is_dir():
            raise argparse.ArgumentTypeError(f"{path} is a file, expected a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise argparse.ArgumentTypeError(f"cannot write to {path}: permission denied")
    else:
        _check_can_create(path)
    return path


def writable_file(text: str) -> Path:
    """A ``type=`` for an output file that can be (over)written."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a folder, expected a file name")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise argparse.ArgumentTypeError(f"cannot write to {path}: permission denied")
    else:
        _check_can_create(path)
    return path


def device(text: str) -> str:
    """A ``type=`` for a torch device that this machine has: ``cpu``, ``cuda``, ``cuda:N``, ``mps``."""
    try:
        parsed = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"not a device: {text!r} (expected cpu, cuda, cuda:N or mps)"
        ) from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text!r}: CUDA is not available on this machine (use cpu)")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(
                f"{text!r}: this machine has {torch.cuda.device_count()} CUDA device(s), numbered from 0"
            )
    elif parsed.type == "mps":
        if not torch.backends.mps.is_available():
            raise argparse.ArgumentTypeError(f"{text!r}: MPS is not available on this machine (use cpu)")
    elif parsed.type != "cpu":
        raise argparse.ArgumentTypeError(f"not a device: {text!r} (expected cpu, cuda, cuda:N or mps)")
    return str(parsed)


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device``, checked by ``device``, with ``default_device()`` as its default. A bad
    ``$RETINA_EDU_DEVICE`` ends the command with one line that names the variable, exit status 2."""
    try:
        default = default_device()
    except ValueError as error:
        fail(parser, str(error))
    parser.add_argument(
        "--device",
        type=device,
        default=default,
        help=f"cpu, cuda, cuda:N or mps (default: ${DEVICE_ENV} if set, else cuda if there is one, "
        f"else cpu; here {default})",
    )


def fail(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    """Stop with ``prog: error: message`` on one line of stderr and exit status 2, argparse's
    convention, for bad input found in the files the arguments name (no usage, no traceback).

    An error raised in a ``DataLoader`` worker carries the worker's traceback in its message;
    only its last line, the original message, is shown.
    """
    lines = message.strip().splitlines()
    if len(lines) > 1 and lines[0].startswith("Caught ") and "Original Traceback" in message:
        message = lines[-1].split(": ", 1)[-1]
    parser.exit(2, f"{parser.prog}: error: {' '.join(message.split())}\n")
