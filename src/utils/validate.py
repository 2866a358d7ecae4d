"""Parameter checks run when a stage starts, before anything is written.

Each check raises UserError naming the parameter (as spelled in params.py) and what is allowed.
"""

from __future__ import annotations

import math
import os

from src.utils.errors import UserError


def _name(cls, attr: str) -> str:
    return f"params.py:{cls.__name__}.{attr}" if isinstance(cls, type) else f"params.py:{attr}"


def integer(cls, attr: str, low: int = 0, high: int | None = None) -> int:
    value = getattr(cls, attr)
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        raise UserError(f"{_name(cls, attr)} = {value!r}: expected {allowed}")
    return value


def number(cls, attr: str, low: float, high: float, low_open: bool = False, high_open: bool = False) -> float:
    value = getattr(cls, attr)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise UserError(f"{_name(cls, attr)} = {value!r}: expected a number in {interval}")
    return float(value)


def boolean(cls, attr: str) -> bool:
    value = getattr(cls, attr)
    if not isinstance(value, bool):
        raise UserError(f"{_name(cls, attr)} = {value!r}: expected True or False")
    return value


def model_path(cls, attr: str) -> str:
    """An optional path to an existing model file ("" = none)."""
    value = getattr(cls, attr)
    if not isinstance(value, str):
        raise UserError(f"{_name(cls, attr)} = {value!r}: expected a path string, or \"\" for none")
    if value and not os.path.isfile(value):
        raise UserError(f"{_name(cls, attr)} = {value!r}: no such model file; give the path of a trained "
                        "model.pt (e.g. out/models/ocr/model.pt) or \"\" to train from scratch")
    return value


def pair(cls, attr: str, low: float, high: float) -> tuple[float, float]:
    """Two numbers [x, y] in [low, high] (a share of a plate's width, then of its height)."""
    value = getattr(cls, attr)
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and low <= v <= high
        for v in value)
    if not ok:
        raise UserError(f"{_name(cls, attr)} = {value!r}: expected [x, y], two numbers in [{low}, {high}] "
                        "(shares of the plate's width and height)")
    return float(value[0]), float(value[1])
