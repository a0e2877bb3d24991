"""Fixed-width text tables for the command line and the benchmark scripts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Column = tuple[str, str, Callable[[Any], str]]  # title, alignment and width (e.g. ">9"), cell


def text_table(rows: Sequence[Any], columns: Sequence[Column]) -> str:
    """A header, a rule as wide as the header, and one line per row."""
    header = " ".join(f"{title:{spec}}" for title, spec, _ in columns)
    lines = [header, "-" * len(header)]
    lines += [" ".join(f"{cell(row):{spec}}" for _, spec, cell in columns) for row in rows]
    return "\n".join(lines)
