"""Where to run: the GPU when there is one, else the CPU, with one helper for every entry point.

    device = default_device()  # "cuda" on a machine with an NVIDIA GPU, else "cpu"
    prepare_device(device)     # cuDNN picks its fastest convolution algorithms on CUDA

The model keeps its trunk and FPN channels-last on every device (``RetinaNet.__init__``);
cuDNN, like oneDNN on the CPU, runs channels-last convolutions fastest.
"""

from __future__ import annotations

import os

import torch

# Set to a device ("cpu", "cuda", "cuda:1") to choose it for every entry point. `make test` and
# tools/execute_notebooks.py set it to "cpu": the notebooks' stored outputs are the CPU's, and
# nbval compares a run with them on any machine.
DEVICE_ENV = "RETINA_EDU_DEVICE"


def default_device() -> str:
    """``$RETINA_EDU_DEVICE`` when set; else ``"cuda"`` if a CUDA GPU is available, else
    ``"cpu"``. The command lines' default and the notebooks' device. Raises ``ValueError``,
    naming the variable, for a value that is not a device or a CUDA device this machine lacks."""
    chosen = os.environ.get(DEVICE_ENV)
    if not chosen:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(chosen)
    except (RuntimeError, ValueError):
        raise ValueError(f"{DEVICE_ENV}={chosen!r} is not a device (expected cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{DEVICE_ENV}={chosen!r}, but CUDA is not available on this machine")
    return chosen


def prepare_device(device: str | torch.device) -> None:
    """Settings for fast training on ``device``: on CUDA, ``cudnn.benchmark`` (time each
    convolution's algorithms once per input shape, then use the fastest). Nothing on the CPU."""
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.benchmark = True
