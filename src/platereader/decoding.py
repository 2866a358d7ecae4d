"""Plate texts from the OCR's output that fit the accepted formats.

The OCR's likeliest text (its best path, `ctc_best_path`) often misses a format by a character
that looks like another one, where the format allows only the other: O for 0, I for 1, B for 8 in
the digits of a Brazilian plate. `fit_format` looks, among the texts the OCR finds almost as
likely, for one that fits: each character of the best path may be replaced by its next likeliest
classes over the same time steps (never added or dropped), and the texts are tried from the
likeliest down to `margin` (natural log) under the best path. A format with serials (the shapes
most of its plates are issued in) is tried in them first: a US reading 3MVV25Z whose Z was almost
a 2 reads 3MVV252.
"""

from __future__ import annotations

import heapq
import numpy as np
import torch

from platereader import formats
from platereader.nets.networks import BLANK, ctc_best_path

ALTERNATIVES = 4  # classes tried per character of the best path
MAX_TEXTS = 16  # texts tried per crop at most: the time of a garbage crop stays small


def character_options(prob: np.ndarray, margin: float) -> list[tuple[list[float], str]]:
    """Per character of the best path of one crop's (T, C) class probabilities: how much less
    likely (natural log, the first 0) each of its likeliest classes is, and those characters; a
    class is scored by its highest probability over the character's time steps, the best path's
    own character comes first, and at most ALTERNATIVES classes within `margin` are kept."""
    best = prob.argmax(1)
    starts = np.flatnonzero((best != BLANK) & np.concatenate(([True], best[1:] != best[:-1])))
    options = []
    for start in starts.tolist():
        k, end = best[start], start + 1
        while end < len(best) and best[end] == k:
            end += 1
        peak = prob[start:end].max(0)
        peak[BLANK] = 0.0
        others = [c for c in np.argsort(-peak, kind="stable")[:ALTERNATIVES].tolist() if c != k]
        classes = [int(k)] + others[:ALTERNATIVES - 1]
        drops = np.log(peak[k]) - np.log(np.maximum(peak[classes], 1e-12))
        keep = int(np.searchsorted(drops, margin, side="right"))  # drops grow along `classes`
        options.append((drops[:keep].tolist(), "".join(formats.ALPHABET[c - 1] for c in classes[:keep])))
    return options


def fit_format(prob: np.ndarray, accepted, margin: float) -> tuple[str, float] | None:
    """The text of one crop's (T, C) class probabilities that fits the first of `preferences(accepted)`
    any of its likely texts fit (see the module), and its log probability relative to
    the best path's (<= 0); None when none within `margin` fits."""
    options = character_options(prob, margin)
    if not any(_length_fits(name, len(options)) for name in accepted):
        return None  # characters are never added or dropped
    parsers = preferences(accepted)
    start = (0,) * len(options)
    heap, seen = [(0.0, start)], {start}
    found: dict[int, tuple[str, float]] = {}  # format position in `accepted` -> first text fitting it
    tried = 0
    while heap and tried < MAX_TEXTS:
        drop, choice = heapq.heappop(heap)
        if drop > margin:
            break
        tried += 1
        text = "".join(chars[j] for (_, chars), j in zip(options, choice))
        for position, parse in enumerate(parsers):
            if position not in found and parse(text) is not None:
                found[position] = (text, -drop)
        if 0 in found:
            break
        for i, j in enumerate(choice):
            drops = options[i][0]
            if j + 1 < len(drops):
                nxt = choice[:i] + (j + 1,) + choice[i + 1:]
                if nxt not in seen:
                    seen.add(nxt)
                    heapq.heappush(heap, (drop + drops[j + 1] - drops[j], nxt))
    return found[min(found)] if found else None


def preferences(accepted) -> list:
    """What a text is tried against, most preferred first: per format of `accepted`, in order, its
    serials (if it has any), then the format."""
    parsers = []
    for name in accepted:
        plate_format = formats.FORMATS[name]
        if plate_format.serials:
            parsers.append(plate_format.parse_serial)
        parsers.append(plate_format.parse)
    return parsers


def _length_fits(name: str, length: int) -> bool:
    low, high = formats.FORMATS[name].lengths
    return low <= length <= high


def read_texts(logits: torch.Tensor, accepted, margin: float, fit: list[bool]) -> list[tuple[str, float]]:
    """(text, confidence) per crop of the OCR's (T, B, C) logits: the best path, or where `fit`
    is true and a likely text fits an earlier one of `preferences(accepted)` than the best path
    does (or the best path fits none), that text. The confidence stays the best path's: how surely the OCR
    saw the characters, which the format only tells apart (scaled down by the drop, fitted
    readings of real plates fell under the reporting floors; docs/history.md)."""
    prob = logits.float().softmax(-1)
    texts = ctc_best_path(prob)
    if margin <= 0 or not any(fit):
        return texts
    prob = prob.numpy()
    first = preferences(accepted)[0]
    for b, (text, conf) in enumerate(texts):
        if fit[b] and first(text) is None:
            fitted = fit_format(prob[:, b], accepted, margin)
            if fitted is not None:
                texts[b] = (fitted[0], conf)
    return texts
