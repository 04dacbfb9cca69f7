"""The data home (retina_edu.paths): where made files go and where shipped files are found."""

from pathlib import Path

import pytest

import retina_edu.data.synthetic as synthetic
from retina_edu import paths
from retina_edu.data import data_home, ensure_synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_env(monkeypatch):
    for name in ("RETINA_EDU_HOME", "RETINA_EDU_RESULTS", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)


def test_in_a_clone_the_home_is_the_clones_data_folder(no_env):
    assert paths.clone_root() == ROOT
    assert data_home() == ROOT / "data"
    assert synthetic.DEFAULT_ROOT == ROOT / "data" / "synthetic"  # still importable, as before
    assert paths.shipped_checkpoint_path() == ROOT / "data" / "checkpoints" / "retinanet_cpu.pt"
    assert paths.results_dir() == ROOT / "data" / "results"


def test_the_environment_variable_wins(no_env, monkeypatch, tmp_path):
    monkeypatch.setenv("RETINA_EDU_HOME", str(tmp_path / "home"))
    assert data_home() == tmp_path / "home"
    assert synthetic.DEFAULT_ROOT == tmp_path / "home" / "synthetic"  # read when used, not at import
    paths_made = ensure_synthetic_dataset(train_images=2, val_images=1, workers=1)
    assert paths_made["root"] == tmp_path / "home" / "synthetic"
    assert paths_made["train"].is_file() and paths_made["val"].is_file()


def test_outside_a_clone_the_home_is_a_per_user_cache(no_env, monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "clone_root", lambda: None)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data_home() == tmp_path / ".cache" / "retina_edu"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_home() == tmp_path / "xdg" / "retina_edu"


def test_results_folder_can_be_moved(no_env, monkeypatch, tmp_path):
    monkeypatch.setenv("RETINA_EDU_RESULTS", str(tmp_path))
    assert paths.results_dir() == tmp_path


def test_missing_shipped_files_say_what_to_do(no_env, monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "clone_root", lambda: None)
    monkeypatch.setattr(paths, "_SHIPPED", tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="reinstall the package"):
        paths.shipped_checkpoint_path()
    with pytest.raises(FileNotFoundError, match="no shipped checkpoint 'other.pt'"):
        monkeypatch.setattr(paths, "_SHIPPED", ROOT / "data")  # a folder with checkpoints/ in it
        paths.shipped_checkpoint_path("other.pt")
