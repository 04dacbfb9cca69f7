"""Shared test helpers: small random boxes and images with fixed seeds."""

import os

import pytest
import torch

# The notebooks read this to run their long cells in a short mode under test.
os.environ.setdefault("RETINA_EDU_QUICK", "1")


def random_boxes(n: int, height: float, width: float, generator: torch.Generator, min_size: float = 4.0):
    """``(n, 4)`` xyxy boxes inside a ``height × width`` image, each side at least ``min_size``."""
    wh = min_size + torch.rand(n, 2, generator=generator) * torch.tensor([width, height]) * 0.4
    xy = torch.rand(n, 2, generator=generator) * (torch.tensor([width, height]) - wh)
    return torch.cat([xy, xy + wh], dim=1)


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)
