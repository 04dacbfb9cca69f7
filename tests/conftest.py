"""Shared test helpers: small random boxes and images with fixed seeds."""

import functools
import importlib.util
import os
from pathlib import Path

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


SOLUTIONS = Path(__file__).resolve().parents[1] / "notebooks" / "solutions"


@functools.cache
def load_solution(name: str):
    """The worked answers of ``notebooks/solutions/{name}.py`` as a module."""
    spec = importlib.util.spec_from_file_location(f"solutions_{name}", SOLUTIONS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stub(*args):
    raise NotImplementedError  # what a notebook's exercise cell holds before the learner answers
