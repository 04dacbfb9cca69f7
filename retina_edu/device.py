"""Where to run: the GPU when there is one, else the CPU, with one helper for every entry point.

    device = default_device()  # "cuda" on a machine with an NVIDIA GPU, else "cpu"
    prepare_device(device)     # cuDNN picks its fastest convolution algorithms on CUDA

The model keeps its trunk and FPN channels-last on every device (``RetinaNet.__init__``);
cuDNN, like oneDNN on the CPU, runs channels-last convolutions fastest.
"""

from __future__ import annotations

import torch


def default_device() -> str:
    """``"cuda"`` if a CUDA GPU is available, else ``"cpu"`` (the command lines' default)."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def prepare_device(device: str | torch.device) -> None:
    """Settings for fast training on ``device``: on CUDA, ``cudnn.benchmark`` (time each
    convolution's algorithms once per input shape, then use the fastest). Nothing on the CPU."""
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.benchmark = True
