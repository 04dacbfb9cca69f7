"""Worked answers to the exercises of 10_paper_ablations."""

import math
import statistics

import numpy as np


# Exercise 1
def mean_ap(runs, key, seeds):
    """Mean AP of the runs of one setting (its ``run_key``) over the given seeds only."""
    seeds = set(seeds)
    return statistics.mean(r["AP"] for r in runs if r["key"] == key and r["seed"] in seeds)


# Exercise 2
def hardest_share(fig4, gamma, kind, fraction):
    """Share of the loss carried by the hardest ``fraction`` of the samples: the curve gives the
    share of the easiest x, so read it at x = 1 - fraction and take the rest."""
    curve = fig4[f"gamma={float(gamma)} {kind}"]
    return 1.0 - float(np.interp(1.0 - fraction, fig4["fraction"], curve))


# Exercise 3
def negative_loss_at_init(prior_prob, alpha, gamma):
    """One negative's loss when p = π: α_t = 1 − α, p_t = 1 − π, so −(1 − α) π^γ log(1 − π)."""
    return -(1 - alpha) * prior_prob**gamma * math.log(1 - prior_prob)
