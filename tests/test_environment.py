"""The set-up files agree with each other: environment.yml (conda) and pyproject.toml (pip)
describe the same environment, the Makefile registers the kernel the notebooks store, and the
package metadata a course needs (licence, citation, supported Pythons) is there."""

import importlib.metadata
import json
import re
import tomllib
from pathlib import Path

import pytest
import torch
import torchvision

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
NOTEBOOKS = sorted((ROOT / "notebooks").rglob("*.ipynb"))


def pyproject_requirements() -> set[str]:
    reqs = PROJECT["dependencies"] + PROJECT["optional-dependencies"]["dev"]
    return {re.sub(r"\s+", "", r) for r in reqs}


def conda_pip_requirements() -> set[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    reqs = {line.strip()[2:].strip() for line in lines[start + 1 :] if line.strip().startswith("- ")}
    return {r for r in reqs if not r.startswith("--")}


def test_same_packages_and_pins():
    assert conda_pip_requirements() == pyproject_requirements()


@pytest.mark.parametrize("package", ["torch", "torchvision"])
def test_installed_torch_pair_is_the_pinned_one(package):
    # Only one torch/torchvision pair installs and imports together (see the README): the
    # environment under test must be the one both files pin, exactly.
    pins = [r for r in pyproject_requirements() if r.split("==")[0] == package]
    assert len(pins) == 1 and "==" in pins[0], f"{package} must be pinned to one version, got {pins}"
    installed = importlib.metadata.version(package).split("+")[0]  # "2.14.1+cu130" → "2.14.1"
    assert installed == pins[0].split("==")[1]


def test_torchvision_ops_run_beside_torch():
    # A mismatched pair imports but fails in the compiled ops: run one.
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [20.0, 20.0, 30.0, 30.0]])
    assert torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 2]


def test_python_3_11_to_3_13_everywhere():
    # Colab and Ubuntu 24.04 run 3.12; torch 2.14.1 has wheels for 3.11-3.13.
    assert PROJECT["requires-python"] == ">=3.11,<3.14"
    assert "python>=3.11,<3.14" in (ROOT / "environment.yml").read_text()
    classifiers = {c.rsplit(" :: ", 1)[-1] for c in PROJECT["classifiers"] if "Python :: 3." in c}
    assert classifiers == {"3.11", "3.12", "3.13"}
    makefile = (ROOT / "Makefile").read_text()
    assert "(3, 11) <= sys.version_info[:2] <= (3, 13)" in makefile


def test_licence_is_a_pep_639_expression_with_its_file():
    assert PROJECT["license"] == "MIT"  # a table ({text = ...}) is deprecated by setuptools
    assert PROJECT["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert (ROOT / "retina_edu" / "py.typed").is_file()


def test_citation_names_the_paper():
    cff = (ROOT / "CITATION.cff").read_text()
    assert "cff-version: 1.2.0" in cff and "Focal Loss for Dense Object Detection" in cff
    assert "1708.02002" in cff
    readme = (ROOT / "README.md").read_text()
    assert "@inproceedings{lin2017focal," in readme and "1708.02002" in readme


def registered_kernel() -> tuple[str, str]:
    """The kernel name and display name that `make setup` registers."""
    makefile = (ROOT / "Makefile").read_text()
    found = re.findall(r'ipykernel install .*--name (\S+) --display-name "([^"]+)"', makefile)
    assert len(found) == 1, "the Makefile should register exactly one kernel"
    return found[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT / "notebooks")))
def test_notebook_stores_the_kernel_make_registers(path):
    # A notebook whose stored display name differs from the registered one is marked modified
    # (and rewritten by autosave) as soon as JupyterLab opens it.
    name, display_name = registered_kernel()
    kernelspec = json.loads(path.read_text())["metadata"]["kernelspec"]
    assert (kernelspec["name"], kernelspec["display_name"]) == (name, display_name)
