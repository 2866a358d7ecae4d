"""Plate texts from the OCR's output that fit the accepted formats.

The OCR's likeliest text (its best path, `ctc_greedy_decode`) often misses a format by a character
that looks like another one, where the format allows only the other: O for 0, I for 1, B for 8 in
the digits of a Brazilian plate. `fit_format` looks, among the texts the OCR finds almost as
likely, for one that fits: each character of the best path may be replaced by its next likeliest
classes over the same time steps (never added or dropped), and the texts are tried from the
likeliest down to `margin` (natural log) under the best path.
"""

from __future__ import annotations

import heapq
import math

import torch

from platereader import formats
from platereader.nets.networks import BLANK, ctc_greedy_decode

ALTERNATIVES = 4  # classes tried per character of the best path
MAX_TEXTS = 64  # texts tried per crop at most


def character_options(prob: torch.Tensor) -> list[tuple[list[float], list[str]]]:
    """Per character of the best path of one crop's (T, C) class probabilities: the log
    probabilities and characters of its ALTERNATIVES likeliest classes (blank excluded), each
    class scored by its highest probability over the character's time steps; the best path's
    own character first."""
    best = prob.argmax(-1).tolist()
    spans: list[list[int]] = []
    previous = BLANK
    for t, k in enumerate(best):
        if k != BLANK:
            if k == previous:
                spans[-1][1] = t + 1
            else:
                spans.append([t, t + 1, k])
        previous = k
    options = []
    for start, end, k in spans:
        scores = prob[start:end].max(0).values.clone()
        scores[BLANK] = 0.0
        scores[k] = scores.max() + 1.0  # the best path's own character first, whatever the ties
        classes = scores.topk(ALTERNATIVES).indices.tolist()
        peak = prob[start:end].max(0).values
        options.append(([math.log(max(float(peak[c]), 1e-12)) for c in classes],
                        [formats.ALPHABET[c - 1] for c in classes]))
    return options


def fit_format(prob: torch.Tensor, accepted, margin: float) -> tuple[str, float] | None:
    """The text of one crop's (T, C) class probabilities that fits the first of the formats
    `accepted` any of its likely texts fit (see the module), and its log probability relative to
    the best path's (<= 0); None when none within `margin` fits."""
    options = character_options(prob)
    start = (0,) * len(options)
    heap, seen = [(0.0, start)], {start}
    found: dict[int, tuple[str, float]] = {}  # format position in `accepted` -> first text fitting it
    tried = 0
    while heap and tried < MAX_TEXTS:
        drop, choice = heapq.heappop(heap)
        if drop > margin:
            break
        tried += 1
        text = "".join(options[i][1][j] for i, j in enumerate(choice))
        for position, name in enumerate(accepted):
            if position not in found and formats.FORMATS[name].parse(text) is not None:
                found[position] = (text, -drop)
        if 0 in found:
            break
        for i, j in enumerate(choice):
            if j + 1 < len(options[i][0]):
                nxt = choice[:i] + (j + 1,) + choice[i + 1:]
                if nxt not in seen:
                    seen.add(nxt)
                    cost = sum(options[k][0][0] - options[k][0][c] for k, c in enumerate(nxt))
                    heapq.heappush(heap, (cost, nxt))
    return found[min(found)] if found else None


def read_texts(logits: torch.Tensor, accepted, margin: float, fit: list[bool]) -> list[tuple[str, float]]:
    """(text, confidence) per crop of the OCR's (T, B, C) logits: the best path, or where `fit`
    is true and a likely text fits an earlier format of `accepted` than the best path does (or the
    best path fits none), that text. The confidence stays the best path's: how surely the OCR
    saw the characters, which the format only tells apart (scaled down by the drop, fitted
    readings of real plates fell under the reporting floors; docs/history.md)."""
    texts = ctc_greedy_decode(logits)
    if margin <= 0 or not any(fit):
        return texts
    prob = logits.float().softmax(-1)
    for b, (text, conf) in enumerate(texts):
        if fit[b] and formats.FORMATS[accepted[0]].parse(text) is None:
            fitted = fit_format(prob[:, b], accepted, margin)
            if fitted is not None:
                texts[b] = (fitted[0], conf)
    return texts
