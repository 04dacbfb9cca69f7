"""Training: same seed same curve, exact resume, safe checkpoints, the loss goes down."""

import dataclasses

import pytest
import torch

from retina_edu import RetinaNet, RetinaNetConfig
from retina_edu.checkpoint import load_checkpoint, load_model, save_checkpoint
from retina_edu.train import (
    TrainConfig,
    batch_indices,
    load_batch,
    lr_factor,
    main,
    make_optimizer,
    train,
    train_step,
)

from .conftest import tiny_synthetic

TINY = RetinaNetConfig.tiny()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return tiny_synthetic(tmp_path_factory, 24)


def fresh_model(seed: int = 0) -> RetinaNet:
    torch.manual_seed(seed)
    return RetinaNet(TINY)


def run(dataset, cfg, **kwargs):
    return train(fresh_model(), dataset, cfg, progress=False, **kwargs)


CFG = TrainConfig(steps=6, batch_size=4, warmup_steps=2, lr=2e-3, seed=1)


def test_same_seed_same_curve(dataset):
    a, b = run(dataset, CFG), run(dataset, CFG)
    assert [r["loss"] for r in a.history] == [r["loss"] for r in b.history]
    c = run(dataset, dataclasses.replace(CFG, seed=2))
    assert [r["loss"] for r in a.history] != [r["loss"] for r in c.history]


def loop_in_process(dataset, cfg):
    """Training as the loop did before the DataLoader: each step's batch built in this process."""
    model = fresh_model()
    optimizer = make_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
    model.train()
    history = []
    for step in range(cfg.steps):
        images, targets = load_batch(dataset, step, cfg, 0, 1, torch.device("cpu"))
        history.append(train_step(model, optimizer, scheduler, images, targets, cfg, step))
    return history, model


def test_the_data_loader_changes_no_number(dataset):
    # bit-identical histories and weights with 0 and 2 workers (checked once against the commit
    # before the DataLoader, too: the same 6 records and weights)
    history, model = loop_in_process(dataset, CFG)
    for workers in (0, 2):
        result = train(fresh_model(), dataset, CFG, progress=False, workers=workers)
        assert result.history == history, workers
        for (name, p), q in zip(model.state_dict().items(), result.model.state_dict().values(), strict=True):
            assert torch.equal(p, q), (workers, name)


def test_killed_and_resumed_equals_uninterrupted(dataset, tmp_path):
    straight = run(dataset, CFG)

    def kill_at_step_4(step, record):
        if step == 4:
            raise KeyboardInterrupt

    cfg = dataclasses.replace(CFG, checkpoint_every=3)
    with pytest.raises(KeyboardInterrupt):
        run(dataset, cfg, out_dir=tmp_path, on_step=kill_at_step_4)
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 3
    resumed = train(
        fresh_model(seed=99), dataset, cfg, out_dir=tmp_path, resume=tmp_path / "last.pt", progress=False
    )
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in straight.history]
    for (name, p), q in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(p, q), name


def test_resume_with_other_settings_is_refused(dataset, tmp_path):
    run(dataset, CFG, out_dir=tmp_path)
    with pytest.raises(ValueError, match="other training settings"):
        train(
            fresh_model(),
            dataset,
            dataclasses.replace(CFG, lr=1.0),
            resume=tmp_path / "last.pt",
            progress=False,
        )


def test_loss_goes_down(dataset):
    cfg = TrainConfig(steps=40, batch_size=8, warmup_steps=5, lr=3e-3)
    history = run(dataset, cfg).history
    first, last = sum(r["loss"] for r in history[:5]) / 5, sum(r["loss"] for r in history[-5:]) / 5
    assert last < 0.7 * first


def test_batches_cover_each_epoch_once():
    cfg = TrainConfig(batch_size=4, seed=5)
    seen = sum((batch_indices(s, 10, cfg) for s in range(2)), [])  # 2 full batches of a 10-image epoch
    assert len(set(seen)) == 8
    assert batch_indices(2, 10, cfg) != batch_indices(0, 10, cfg)  # a new permutation for epoch 1


def test_lr_schedule_by_hand():
    cfg = TrainConfig(steps=1000, warmup_steps=100, schedule="cosine")
    assert lr_factor(0, cfg) == pytest.approx(1e-3)
    assert lr_factor(100, cfg) == pytest.approx(1.0)
    assert lr_factor(550, cfg) == pytest.approx(0.5)
    step = dataclasses.replace(cfg, schedule="step")
    assert [lr_factor(s, step) for s in (500, 700, 900)] == pytest.approx([1.0, 0.1, 0.01])


def test_checkpoint_round_trip_and_bad_files(tmp_path):
    model = fresh_model()
    path = save_checkpoint(tmp_path / "m.pt", model, class_names=["a", "b"])
    loaded, meta = load_model(path)
    assert meta["config"] == TINY and meta["class_names"] == ["a", "b"]
    for p, q in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(p, q)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="corrupt"):
        load_model(corrupt)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match="not a retina_edu checkpoint"):
        load_model(foreign)


def test_checkpoint_with_code_is_not_unpickled(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("ran code from a checkpoint",))

    path = tmp_path / "evil.pt"
    torch.save({"model": Evil(), "config": {}, "format_version": 1}, path)
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_model(path)


def cli_args(dataset, out, batch_size: int) -> list[str]:
    """A two-step run of ``python -m retina_edu.train`` on the tiny data set."""
    return [
        "--ann-file", str(dataset.ann_file), "--image-dir", str(dataset.image_dir), "--out", str(out),
        "--steps", "2", "--batch-size", str(batch_size), "--warmup-steps", "1",
    ]  # fmt: skip


def test_command_line(dataset, tmp_path, capsys):
    out = tmp_path / "run"
    main(cli_args(dataset, out, batch_size=2))
    assert "2 steps" in capsys.readouterr().out
    model, meta = load_model(out / "last.pt")
    assert meta["step"] == 2 and meta["class_names"] == dataset.class_names


def test_torchrun_with_two_processes(dataset, tmp_path):
    """DistributedDataParallel on the CPU (gloo): each process takes half of every batch."""
    import subprocess
    import sys

    out = tmp_path / "ddp"
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "-m",
        "retina_edu.train",
    ]
    command = torchrun + cli_args(dataset, out, batch_size=4) + ["--device", "cpu"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("saved") == 1  # only rank 0 writes
    assert load_checkpoint(out / "last.pt")["step"] == 2
