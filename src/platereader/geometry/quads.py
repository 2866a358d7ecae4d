"""Quad geometry: polygon IoU of two convex quads and corner errors (metrics), convexity and the
rows of a two-row plate (reading)."""

from __future__ import annotations

import numpy as np
import torch


# Plates that print their text on two rows (motorcycle plates, square European plates) are read
# row by row: ROWS are the bands of the plate's height (0 top, 1 bottom) the rows sit in, which the
# generator's two-row layouts keep to and prepare_ocr cuts its row crops from. The reader reads the
# rows of every quad TWO_ROW_ASPECTS = (least, most) times as wide as high: a 1.2:1 motorcycle plate
# seen at an angle narrows towards the least, a 2:1 US plate seen at an angle is under the most, a
# 4.5:1 European plate never.
ROWS = ((0.04, 0.46), (0.54, 0.96))
TWO_ROW_ASPECTS = (0.6, 1.75)


def row_quad(quads, row: tuple[float, float]):
    """The part of quads (..., 4, 2: TL, TR, BR, BL; numpy or torch) between shares `row` = (top,
    bottom) of their height, interpolated along the left and right sides."""
    top, bottom = row
    tl, tr, br, bl = (quads[..., i, :] for i in range(4))
    corners = (tl + top * (bl - tl), tr + top * (br - tr), tr + bottom * (br - tr), tl + bottom * (bl - tl))
    return torch.stack(corners, -2) if isinstance(quads, torch.Tensor) else np.stack(corners, -2)


def quad_aspect(quads: torch.Tensor) -> torch.Tensor:
    """(B, 4, 2) -> (B,): the mean of the top and bottom sides over the mean of the left and right."""
    sides = (quads.roll(-1, 1) - quads).norm(dim=2)  # top, right, bottom, left
    return (sides[:, 0] + sides[:, 2]) / (sides[:, 1] + sides[:, 3]).clamp_min(1e-6)


def is_convex(quads: torch.Tensor) -> torch.Tensor:
    """(B, 4, 2) -> (B,) bool: finite corners that turn the same way at all four (no fold, no spike)."""
    edges = quads.roll(-1, 1) - quads
    following = edges.roll(-1, 1)
    turns = edges[:, :, 0] * following[:, :, 1] - edges[:, :, 1] * following[:, :, 0]
    return quads.isfinite().all((1, 2)) & ((turns > 0).all(1) | (turns < 0).all(1))


def _area(poly: np.ndarray) -> float:
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _orient_ccw(poly: np.ndarray) -> np.ndarray:
    x, y = poly[:, 0], poly[:, 1]
    signed = np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))
    return poly if signed >= 0 else poly[::-1]


def _clip(subject: np.ndarray, clipper: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: the part of polygon `subject` inside convex CCW polygon `clipper`."""
    output = list(subject)
    for i in range(len(clipper)):
        a, b = clipper[i], clipper[(i + 1) % len(clipper)]
        inputs, output = output, []
        if not inputs:
            break
        def inside(p):
            return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) >= 0
        def cross_point(p, q):
            d1, d2 = q - p, b - a
            denom = d1[0] * d2[1] - d1[1] * d2[0]
            t = ((a[0] - p[0]) * d2[1] - (a[1] - p[1]) * d2[0]) / denom if denom else 0.0
            return p + t * d1
        prev = inputs[-1]
        for cur in inputs:
            if inside(cur):
                if not inside(prev):
                    output.append(cross_point(prev, cur))
                output.append(cur)
            elif inside(prev):
                output.append(cross_point(prev, cur))
            prev = cur
    return np.array(output).reshape(-1, 2)


def quad_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two convex quads (4, 2); a self-crossing prediction scores low."""
    a, b = _orient_ccw(np.asarray(a, np.float64)), _orient_ccw(np.asarray(b, np.float64))
    inter = _area(_clip(a, b))
    union = _area(a) + _area(b) - inter
    return inter / union if union > 0 else 0.0


def corner_errors(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Mean Euclidean distance between matching corners, per sample: (N, 4, 2) x2 -> (N,)."""
    return np.linalg.norm(np.asarray(pred) - np.asarray(true), axis=-1).mean(-1)
