"""Checks for the notebooks' exercises: one module per notebook (``ch02`` for ``02_anchors``).

A check returns a ``Verdict``: its repr is the one line a learner reads (correct, not yet with a
hint, not answered yet), and ``bool(verdict)`` says whether the answer is right, so the last line
of a cell shows it with no trailing ``;``. A check never raises, so a notebook with unanswered
exercises still runs from top to bottom, and it blames the learner only for the learner's code:
the package's reference is computed first, outside any guard, and an error there is reported as
the checker's. The worked answers live in ``notebooks/solutions/``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

NOT_ANSWERED = "not answered yet: fill in the cell above and run it"


class Verdict:
    """The outcome of one check. ``repr`` is the line to read; ``bool`` is whether it is right."""

    def __init__(self, name: str, ok: bool, message: str) -> None:
        self.name, self.ok, self.message = name, ok, message

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return f"{self.name}: {self.message}"


def judge(
    name: str,
    answer: Any,
    reference: Callable[[], Any],
    attempt: Callable[[Any], Any],
    compare: Callable[[Any, Any], str | None],
    hint: str,
) -> Verdict:
    """Check ``answer`` against the package and return the verdict.

    ``reference()`` computes the expected result with the package; ``attempt(answer)`` runs the
    learner's code (calls their function on the check's cases, or converts their number);
    ``compare(result, expected)`` returns what is wrong with the result, or ``None`` when it is
    right. ``None`` as an answer, or a function that raises ``NotImplementedError``, is "not
    answered yet"; an error in ``attempt`` or ``compare`` is the learner's ("not yet" with the
    error and ``hint``); an error in ``reference`` is the checker's, and the verdict says so.
    """
    if answer is None:
        return Verdict(name, False, NOT_ANSWERED)
    try:
        expected = reference()
    except Exception as error:  # noqa: BLE001 - reported, not raised: the learner did nothing wrong
        return Verdict(
            name,
            False,
            f"could not check: the checker itself failed ({type(error).__name__}: {error}); "
            "this is a fault of retina_edu.exercises, not of your answer",
        )
    try:
        result = attempt(answer)
        problem = compare(result, expected)
    except NotImplementedError:
        return Verdict(name, False, NOT_ANSWERED)
    except Exception as error:  # noqa: BLE001 - any failure of the learner's code is "not yet"
        problem = f"your code raised {type(error).__name__}: {error}"
    if problem is None:
        return Verdict(name, True, "correct")
    return Verdict(name, False, f"not yet: {problem}. Hint: {hint}")


def number_problem(got: Any, expected: float, rel_tol: float = 0.0, abs_tol: float = 0.0) -> str | None:
    """What is wrong with the number ``got`` against ``expected``, or ``None``. The message says
    which way it is off, not the expected value: a single-number exercise would be given away."""
    got = float(got)
    if math.isclose(got, expected, rel_tol=rel_tol, abs_tol=abs_tol):
        return None
    if not math.isfinite(got):
        return f"you gave {got}, a number that is not finite"
    return f"you gave {got:.6g}, which is too {'large' if got > expected else 'small'}"


def values_problem(
    got: Sequence[Any],
    expected: Sequence[float],
    cases: Sequence[str],
    rel_tol: float = 0.0,
    abs_tol: float = 0.0,
) -> str | None:
    """The first case (named by ``cases``) where the number in ``got`` differs from ``expected``:
    what was given and what was expected; ``None`` when every case agrees."""
    for value, truth, case in zip(got, expected, cases, strict=True):
        if not math.isclose(float(value), truth, rel_tol=rel_tol, abs_tol=abs_tol):
            return f"for {case} you gave {float(value):.6g}, expected {truth:.6g}"
    return None


def tensor_problem(got: Any, expected: Any, what: str, rtol: float = 1e-5, atol: float = 1e-6) -> str | None:
    """What is wrong with the tensor ``got`` against ``expected`` (type, shape, values), or ``None``."""
    if not isinstance(got, torch.Tensor):
        return f"{what} should be a tensor, got {type(got).__name__}"
    if tuple(got.shape) != tuple(expected.shape):
        return f"{what} should have shape {tuple(expected.shape)}, got {tuple(got.shape)}"
    if expected.dtype in (torch.int64, torch.bool):
        if not torch.equal(got.to(expected.dtype), expected):
            wrong = int((got.to(expected.dtype) != expected).sum())
            return f"{what}: {wrong} of {expected.numel()} entries differ"
        return None
    got = got.to(expected.dtype)
    if not torch.isfinite(got).all():
        return f"{what} holds inf or NaN"
    if not torch.allclose(got, expected, rtol=rtol, atol=atol):
        worst = int((got - expected).abs().argmax())
        return (
            f"{what}: largest difference {(got - expected).abs().max().item():.3g} "
            f"(flat index {worst}: {got.flatten()[worst].item():.6g}, expected "
            f"{expected.flatten()[worst].item():.6g})"
        )
    return None
