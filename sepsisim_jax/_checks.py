"""Argument checks shared by the whole package: one message per kind of mistake.

Imports nothing of the package, so any layer may use it.
"""

from __future__ import annotations

import math
import numbers
from typing import Any


def positive_int(name: str, value: Any, *, optional: bool = False) -> None:
    """``ValueError`` unless ``value`` is an int >= 1 (or ``None`` when ``optional``)."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        valid = "a positive int or None" if optional else "a positive int"
        raise ValueError(f"{name} must be {valid}, got {value!r}")


def number_in(name: str, value: Any, low: float, high: float) -> None:
    """``ValueError`` unless ``value`` is a real number in ``[low, high]``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or math.isnan(value)
        or not low <= value <= high
    ):
        raise ValueError(f"{name} must be a number in [{low:g}, {high:g}], got {value!r}")


def instance(name: str, value: Any, cls: type | tuple[type, ...], what: str) -> None:
    """``TypeError`` unless ``value`` is an instance of ``cls`` (``what`` names it for people)."""
    if not isinstance(value, cls):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}")


def policy(name: str, value: Any, *, optional: bool = False) -> None:
    """``TypeError`` unless ``value`` is callable as ``policy(key, obs, params)``."""
    if optional and value is None:
        return
    if not callable(value):
        valid = "a policy(key, obs, params) or None" if optional else "a policy(key, obs, params)"
        raise TypeError(f"{name} must be {valid}, got {value!r}")
