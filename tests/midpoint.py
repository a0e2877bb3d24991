"""A stand-in for numpy's random generator that makes the reference simulator deterministic."""

from __future__ import annotations


class MidpointGenerator:
    """A ``numpy.random.Generator`` stand-in: ``normal`` gives its mean, ``uniform`` its centre."""

    def __init__(self, seed: object = None) -> None:
        del seed

    def normal(self, loc: float = 0.0, scale: float = 1.0, size: object = None) -> float:
        return loc

    def uniform(self, low: float = 0.0, high: float = 1.0, size: object = None) -> float:
        return (low + high) / 2
