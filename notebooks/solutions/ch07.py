"""Worked answers to the exercises of 07_training."""

from torch import nn

from retina_edu.train import TrainConfig

# Exercise 1: an epoch of the 2000 training images is 2000 // 16 = 125 steps (the last partial batch
# is dropped), so the default TrainConfig() with its 1000 steps makes 1000 / 125 = 8 epochs.
epochs = TrainConfig().steps / (2000 // TrainConfig().batch_size)


# Exercise 2
def paper_lr(step):
    """The paper's learning rate (§4.1): 0.01, divided by 10 at 60k and again at 80k iterations."""
    if step < 60_000:
        return 0.01
    if step < 80_000:
        return 0.001
    return 0.0001


# Exercise 3
def train_step(model, optimizer, images, targets, max_norm):
    """One training step; returns the loss before the update as a float."""
    losses = model(images, targets)  # {"classification": (), "box_regression": ()}
    loss = sum(losses.values())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item()
