"""The data pipeline: a DataLoader over the steps gives the batches of the in-process loop,
whatever the number of workers, from any step on, and each rank's share of them."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from retina_edu import RetinaNet, RetinaNetConfig
from retina_edu.checkpoint import load_checkpoint
from retina_edu.data import CocoDetection
from retina_edu.train import TrainConfig, batch_indices, batch_loader, step_batch, train

from .conftest import tiny_synthetic

CFG = TrainConfig(steps=6, batch_size=4, warmup_steps=2, lr=2e-3, seed=1, checkpoint_every=3)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> CocoDetection:
    return tiny_synthetic(tmp_path_factory, 10)


def assert_same_batch(a, b) -> None:
    (images_a, targets_a), (images_b, targets_b) = a, b
    assert len(images_a) == len(images_b)
    for x, y in zip(images_a, images_b, strict=True):
        assert torch.equal(x, y)
    for s, t in zip(targets_a, targets_b, strict=True):
        assert s.keys() == t.keys()
        for key in s:
            assert torch.equal(s[key], t[key]) if torch.is_tensor(s[key]) else s[key] == t[key], key


@pytest.mark.parametrize("workers", [0, 2])
def test_the_loader_gives_the_batches_of_the_loop(dataset, workers):
    # 10 images, batch 4: epochs of 2 steps, so steps 0..5 cross two epoch boundaries
    loaded = list(batch_loader(dataset, CFG, workers=workers))
    assert len(loaded) == CFG.steps
    for step, batch in enumerate(loaded):
        assert_same_batch(batch, step_batch(dataset, step, CFG))
        assert [t["image_id"] for t in batch[1]] == [
            dataset.image_ids[i] for i in batch_indices(step, len(dataset), CFG)
        ]


def test_a_loader_started_mid_epoch_continues_the_sequence(dataset):
    whole = list(batch_loader(dataset, CFG))
    for step, batch in enumerate(batch_loader(dataset, CFG, start=3, workers=2), 3):
        assert_same_batch(batch, whole[step])


def test_two_ranks_share_each_batch(dataset):
    # The images, not their flips: each rank draws its own share's coins from the (seed, step)
    # generator, so a flip under torchrun is not the flip of the one-process run.
    def ids(targets):
        return [t["image_id"] for t in targets]

    whole = batch_loader(dataset, CFG)
    shares = [batch_loader(dataset, CFG, rank=r, world=2) for r in range(2)]
    for (_, targets), (_, first), (_, second) in zip(whole, *shares, strict=True):
        assert ids(first) == ids(targets)[0::2] and ids(second) == ids(targets)[1::2]


def test_killed_and_resumed_with_two_workers_equals_uninterrupted(dataset, tmp_path):
    def fresh(seed: int) -> RetinaNet:
        torch.manual_seed(seed)
        return RetinaNet(RetinaNetConfig.tiny())

    straight = train(fresh(0), dataset, dataclasses.replace(CFG, checkpoint_every=0), progress=False)

    def kill_at_step_4(step, record):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(fresh(0), dataset, CFG, out_dir=tmp_path, on_step=kill_at_step_4, progress=False, workers=2)
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 3
    resumed = train(fresh(99), dataset, CFG, resume=tmp_path / "last.pt", progress=False, workers=2)
    assert resumed.history == straight.history
    for (name, p), q in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(p, q), name
