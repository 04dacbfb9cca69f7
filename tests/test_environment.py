"""environment.yml (conda) and pyproject.toml (pip) must describe the same environment."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return {re.sub(r"\s+", "", r) for r in reqs}


def conda_pip_requirements() -> set[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    reqs = {line.strip()[2:].strip() for line in lines[start + 1 :] if line.strip().startswith("- ")}
    return {r for r in reqs if not r.startswith("--")}


def test_same_packages_and_pins():
    assert conda_pip_requirements() == pyproject_requirements()


def test_torch_pair_is_pinned_exactly():
    reqs = pyproject_requirements()
    assert "torch==2.14.1" in reqs and "torchvision==0.29.1" in reqs


def test_same_python():
    env = (ROOT / "environment.yml").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "python=3.11" in env and project["requires-python"] == ">=3.11,<3.12"
