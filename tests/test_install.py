"""The package works outside the clone, as `pip install .` or Colab leave it.

The wheel is built from a copy of the sources, installed with ``--no-deps`` into a fresh folder,
and run from an unrelated working directory with this environment's torch on ``PYTHONPATH``:
it must find its shipped checkpoint, train with its command line, run notebook 01, and keep the
data it makes in the data home (``~/.cache/retina_edu``), never in site-packages.
"""

import email
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "README.md", "LICENSE", "retina_edu", "data/checkpoints", "data/results"]


def _setuptools_builds_offline() -> bool:
    """Whether this environment's setuptools reads PEP 639 licences (77+): then the wheel is
    built without an isolated build environment, which pip would fill from the index."""
    try:
        major = int(importlib.metadata.version("setuptools").split(".")[0])
    except importlib.metadata.PackageNotFoundError:
        return False
    return major >= 77


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:  # a copy: building in the clone would leave build/ and stale files there
        if (ROOT / name).is_dir():
            # (data/results/models/: the study's intermediate weights, which the wheel does not ship)
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "models")
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    isolation = ["--no-build-isolation"] if _setuptools_builds_offline() else []
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-cache-dir", *isolation]
    subprocess.run([*cmd, "-w", str(out), str(src)], check=True, capture_output=True, text=True)
    (path,) = out.glob("retina_edu-*.whl")
    return path


@pytest.fixture(scope="module")
def target(wheel, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-cache-dir", "--target"]
    subprocess.run([*cmd, str(folder), str(wheel)], check=True, capture_output=True, text=True)
    return folder


def run_installed(target: Path, cwd: Path, home: Path, args: list[str], timeout: float = 300):
    """``python -S args`` with only the installed wheel and this environment's packages on the
    path (``-S``: no .pth files, so not the clone's editable install), HOME moved to ``home``."""
    paths = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RETINA_EDU_HOME", "RETINA_EDU_RESULTS"))}
    env.pop("XDG_CACHE_HOME", None)
    env.update(HOME=str(home), PYTHONPATH=os.pathsep.join([str(target), *paths]), OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-S", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_wheel_holds_the_package_its_data_and_metadata(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "retina_edu/py.typed" in names
    assert "retina_edu/_shipped/checkpoints/retinanet_cpu.pt" in names
    for kind, suffixes in (("checkpoints", {".pt", ".json"}), ("results", {".json", ".csv", ".png"})):
        folder = ROOT / "data" / kind  # with its subfolders (results/steps1600), but not models/
        shipped = [
            p.relative_to(folder).as_posix()
            for p in folder.rglob("*")
            if p.suffix in suffixes and "models" not in p.relative_to(folder).parts
        ]
        assert shipped and all(f"retina_edu/_shipped/{kind}/{name}" in names for name in shipped), (
            kind,
            shipped,
        )
    assert not any(n.startswith(("data/", "tests/", "notebooks/")) for n in names)
    # every package of the source tree is listed in pyproject.toml's explicit package list
    packages = {p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "retina_edu").rglob("__init__.py")}
    assert packages and all(f"{p}/__init__.py" in names for p in packages), sorted(packages)
    (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    metadata = email.message_from_bytes(zipfile.ZipFile(wheel).read(meta))
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Requires-Python"] in (">=3.11,<3.14", "<3.14,>=3.11")
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_installed_package_finds_its_checkpoint_and_data_home(target, tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    script = (
        "import json, retina_edu, retina_edu.paths as p\n"
        "from retina_edu.checkpoint import load_model\n"
        "from retina_edu.data.synthetic import DEFAULT_ROOT\n"
        "model, meta = load_model(p.shipped_checkpoint_path())\n"
        "print(json.dumps({'package': retina_edu.__file__, 'checkpoint': str(p.shipped_checkpoint_path()),"
        " 'results': str(p.results_dir()), 'home': str(p.data_home()), 'default_root': str(DEFAULT_ROOT),"
        " 'clone': p.clone_root()}))\n"
    )
    done = run_installed(target, work, home, ["-c", script])
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert Path(found["package"]).is_relative_to(target)
    assert Path(found["checkpoint"]).is_relative_to(target)
    assert Path(found["results"]).is_relative_to(target)
    assert found["clone"] is None
    assert found["home"] == str(home / ".cache" / "retina_edu")
    assert found["default_root"] == str(home / ".cache" / "retina_edu" / "synthetic")


def test_installed_training_cli_runs_from_an_unrelated_folder(target, tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    before = sorted(p.relative_to(target) for p in target.rglob("*") if "__pycache__" not in p.parts)
    args = ["-m", "retina_edu.train", "--steps", "2", "--batch-size", "2", "--warmup-steps", "1"]
    done = run_installed(target, work, home, [*args, "--out", "runs"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "saved" in done.stdout
    assert (work / "runs" / "last.pt").is_file()
    data = home / ".cache" / "retina_edu" / "synthetic"
    assert (data / "annotations" / "instances_train.json").is_file()
    assert len(list((data / "train").glob("*.png"))) == 2000
    after = sorted(p.relative_to(target) for p in target.rglob("*") if "__pycache__" not in p.parts)
    assert after == before, "the installed package wrote into site-packages"


def test_installed_package_runs_notebook_01(target, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    nb = nbformat.read(ROOT / "notebooks" / "01_boxes_and_iou.ipynb", as_version=4)
    check = f"import retina_edu\nassert retina_edu.__file__.startswith({str(target)!r}), retina_edu.__file__"
    nb.cells.append(nbformat.v4.new_code_cell(check))
    nbformat.write(nb, work / "01.ipynb")
    # The kernel is this environment's Python (without -S); PYTHONPATH puts the wheel first.
    script = (
        "import nbformat, nbclient, sys\n"
        "nb = nbformat.read('01.ipynb', as_version=4)\n"
        "nbclient.NotebookClient(nb, timeout=300, kernel_name='python3',"
        " resources={'metadata': {'path': '.'}}).execute()\n"
        "print('executed', len(nb.cells))\n"
    )
    done = run_installed(target, work, home, ["-c", script], timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "executed" in done.stdout
