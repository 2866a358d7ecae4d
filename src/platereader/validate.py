"""Parameter checks run when a stage starts, before anything is written.

Each check raises UserError naming the parameter (as spelled in params.py) and what is allowed.
`cls` is the params class holding the value (or the params module for the global switches).
"""

from __future__ import annotations

import math
import os
from numbers import Real

from platereader.errors import UserError


def name(cls, attr: str) -> str:
    owner = getattr(cls, "__name__", "")
    return f"params.py:{owner}.{attr}" if isinstance(cls, type) else f"params.py:{attr}"


def fail(cls, attr: str, message: str):
    raise UserError(f"{name(cls, attr)} {message}")


def get(cls, attr: str):
    if not hasattr(cls, attr):
        fail(cls, attr, f"is missing: add it to {getattr(cls, '__name__', 'params.py')}")
    return getattr(cls, attr)


def _is_number(value, integer: bool = False) -> bool:
    return (not isinstance(value, bool) and isinstance(value, int if integer else Real)
            and math.isfinite(value))


def integer(cls, attr: str, low: int = 0, high: int | None = None) -> int:
    value = get(cls, attr)
    if not _is_number(value, integer=True) or value < low or (high is not None and value > high):
        allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        fail(cls, attr, f"= {value!r}: expected {allowed}")
    return value


def number(cls, attr: str, low: float, high: float, low_open: bool = False, high_open: bool = False) -> float:
    value = get(cls, attr)
    ok = _is_number(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        fail(cls, attr, f"= {value!r}: expected a number in {interval}")
    return float(value)


def boolean(cls, attr: str) -> bool:
    value = get(cls, attr)
    if not isinstance(value, bool):
        fail(cls, attr, f"= {value!r}: expected True or False")
    return value


def choice(cls, attr: str, allowed) -> str:
    """One name of `allowed`, written ['name']: `dvc exp run -S` can rewrite a list in params.py,
    not a string."""
    value = get(cls, attr)
    if not (isinstance(value, list) and len(value) == 1 and value[0] in allowed):
        fail(cls, attr, f"= {value!r}: expected a one-element list of one of "
                        f"{', '.join(repr(a) for a in allowed)}, e.g. [{allowed[0]!r}]")
    return value[0]


def model_path(cls, attr: str) -> str:
    """An optional path to an existing model file, written [path] or [] for none ("" returned):
    `dvc exp run -S` can rewrite a list in params.py, not a string."""
    value = get(cls, attr)
    if not isinstance(value, list) or len(value) > 1 or not all(isinstance(v, str) and v for v in value):
        fail(cls, attr, f"= {value!r}: expected a one-element list such as ['out/models/ocr/model.pt'] "
                        "(a list: `dvc exp run -S` cannot write a string into params.py), or [] for none")
    path = value[0] if value else ""
    if path and not os.path.isfile(path):
        fail(cls, attr, f"= {value!r}: no such model file; give the path of a trained model.pt "
                        "(e.g. ['out/models/ocr/model.pt']) or [] to train from scratch")
    return path


def table(value):
    """A name -> value table of params.py as a dict: params.py writes one as a class, one entry per
    line (`dvc exp run -S` can set those, not a dict's); tests and the library may pass a dict."""
    if isinstance(value, type):
        return {k: v for k, v in vars(value).items() if not k.startswith("_")}
    return value


def pair(cls, attr: str, low: float, high: float, integer: bool = False, ordered: bool = False) -> tuple:
    """Two numbers in [low, high]: a range [lo, hi] when `ordered`, else an (x, y) pair such as
    shares of a plate's width and height."""
    value = get(cls, attr)
    kind = "integers" if integer else "numbers"
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(
        _is_number(v, integer) and low <= v <= high for v in value)
    if not ok:
        fail(cls, attr, f"= {value!r}: expected {'[lo, hi], ' if ordered else '[x, y], '}two {kind} "
                        f"in [{low:g}, {high:g}]")
    if ordered and value[0] > value[1]:
        fail(cls, attr, f"= {value!r}: lo must not exceed hi")
    return tuple(value)


def weights(cls, attr: str, values, allow_all_zero: bool = False) -> None:
    """Sampling weights (the values of a list or dict): numbers >= 0, at least one > 0."""
    for v in values:
        if not _is_number(v):
            fail(cls, attr, f"has weight {v!r}: weights must be numbers >= 0")
        if v < 0:
            fail(cls, attr, f"has negative weight {v!r}: weights must be >= 0")
    if not allow_all_zero and sum(values) <= 0:
        fail(cls, attr, "has no positive weight: at least one weight must be > 0")


def subset(cls, attr: str, allowed, empty_means: str = "") -> list:
    """A list of values from `allowed`; empty only where `empty_means` says what [] stands for."""
    value = get(cls, attr)
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or (not value and not empty_means):
        fail(cls, attr, f"= {value!r}: expected a {'' if empty_means else 'non-empty '}list of values from "
                        f"{', '.join(allowed)}{f' ([] = {empty_means})' if empty_means else ''}")
    for v in value:
        if v not in allowed:
            fail(cls, attr, f"has unknown value {v!r}: allowed are {', '.join(allowed)}")
    return list(value)
