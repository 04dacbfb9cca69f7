"""Checks for the notebooks' exercises: one module per notebook (``ch02`` for ``02_anchors``).

A check prints one line — correct, not yet (with a hint), or not answered yet — and returns
whether the answer is right. It never raises, so a notebook with unanswered exercises still
runs from top to bottom. The worked answers live in ``notebooks/solutions/``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def verdict(name: str, answer: Any, is_right: Callable[[Any], bool], hint: str) -> bool:
    """Print and return whether ``is_right(answer)``; ``None`` (or a function that returns
    ``None``) counts as not answered yet, and an exception as a wrong answer."""
    if answer is None:
        print(f"{name}: not answered yet: fill in the cell above and run it")
        return False
    try:
        ok = bool(is_right(answer))
    except NotImplementedError:
        print(f"{name}: not answered yet: fill in the cell above and run it")
        return False
    except Exception as error:  # noqa: BLE001 - any failure of the learner's code is "not yet"
        ok, hint = False, f"{hint} (your code raised {type(error).__name__}: {error})"
    print(f"{name}: correct" if ok else f"{name}: not yet. Hint: {hint}")
    return ok
