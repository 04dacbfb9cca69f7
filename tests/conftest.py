"""Shared test helpers: small random boxes and images with fixed seeds."""

import functools
import importlib.util
import os
from pathlib import Path

import pytest
import torch

from retina_edu import RetinaNetConfig
from retina_edu.config import QUICK_ENV
from retina_edu.data import CocoDetection, make_synthetic_coco

# The notebooks read this to run their long cells in a short mode under test.
os.environ.setdefault(QUICK_ENV, "1")


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


# A RetinaNet small enough to train a step in a fraction of a second on 64-pixel images.
TINY = RetinaNetConfig.tiny(num_classes=5)


def tiny_synthetic(tmp_path_factory, num_images: int) -> CocoDetection:
    """``num_images`` 64-pixel synthetic images of the five classes (seed 3), the data for TINY."""
    root = tmp_path_factory.mktemp("synthetic")
    ann = make_synthetic_coco(
        root, "train", num_images=num_images, seed=3, image_size=64, min_object_size=8, max_object_size=40
    )
    return CocoDetection(ann, root / "train")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> CocoDetection:
    """Four 64-pixel synthetic images of the five classes, for TINY (the command-line and input tests)."""
    return tiny_synthetic(tmp_path_factory, 4)
