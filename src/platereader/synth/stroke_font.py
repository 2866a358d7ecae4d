"""Plate typefaces built from strokes, as DIN 1451 and its kin are: straight lines and rounded
corners on a grid, one stroke width, condensed.

The installed font packages are text faces: round O beside narrow D, a 1 with a long flag, a 4
closed at the top. Plates in photos print O as a stadium or a rounded square that looks like D,
1 as a bar with a small flag or none, a 4 open at the top. Each `StrokeStyle` draws A-Z and 0-9
from the same skeletons (`SKELETONS`) with its own corner radius, width, stroke and second forms
(`VARIANTS`), so the OCR learns the skeleton of a character rather than one face. Rendering is
Pillow line drawing only: deterministic, no file read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

# A path is a list of (x, y) points on the glyph's box, x in [0, 1] left to right, y in [0, 1] top
# to bottom (cap line to baseline); a point with a third value 0 keeps a sharp corner where the
# style would round it. A closed path repeats its first point last.
Point = tuple
Path = list[Point]


def _box(x0=0.0, y0=0.0, x1=1.0, y1=1.0) -> Path:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]


def _mirror(paths: list[Path]) -> list[Path]:
    """Turned by half a turn (6 -> 9)."""
    return [[(1 - p[0], 1 - p[1], *p[2:]) for p in path] for path in paths]


SIX_ROUND = [[(1, 0.12), (1, 0), (0, 0), (0, 1), (1, 1), (1, 0.46), (0, 0.46)]]
SIX_DIAGONAL = [[(0.85, 0), (0.05, 0.52, 0)], _box(0, 0.42, 1, 1)]

# Character -> (relative width, paths); VARIANTS below holds second forms of some characters.
SKELETONS: dict[str, tuple[float, list[Path]]] = {
    "0": (1.0, [_box()]),
    "1": (0.55, [[(0.1, 0.22), (0.8, 0, 0), (0.8, 1)]]),
    "2": (1.0, [[(0, 0.2), (0, 0), (1, 0), (1, 0.42), (0, 1, 0), (1, 1)]]),
    "3": (1.0, [[(0, 0), (1, 0), (1, 0.48), (0.3, 0.48)], [(1, 0.48), (1, 1), (0, 1), (0, 0.85)]]),
    "4": (1.0, [[(0.75, 1), (0.75, 0, 0), (0, 0.68, 0), (1, 0.68)]]),
    "5": (1.0, [[(1, 0), (0, 0, 0), (0, 0.45, 0), (1, 0.45), (1, 1), (0, 1), (0, 0.85)]]),
    "6": (1.0, SIX_DIAGONAL),
    "7": (1.0, [[(0, 0), (1, 0, 0), (0.3, 1)]]),
    "8": (1.0, [_box(0.06, 0, 0.94, 0.47), _box(0, 0.47, 1, 1)]),
    "9": (1.0, _mirror(SIX_DIAGONAL)),
    "A": (1.05, [[(0, 1), (0.5, 0, 0), (1, 1)], [(0.2, 0.64), (0.8, 0.64)]]),
    "B": (1.0, [[(0, 1, 0), (0, 0, 0), (0.85, 0), (0.85, 0.47), (0, 0.47, 0)],
                [(0, 0.47, 0), (1, 0.47), (1, 1), (0, 1, 0)]]),
    "C": (1.0, [[(1, 0.02), (1, 0, 0), (0, 0), (0, 1), (1, 1, 0), (1, 0.98)]]),
    "D": (1.0, [[(0, 0, 0), (1, 0), (1, 1), (0, 1, 0), (0, 0, 0)]]),
    "E": (0.9, [[(1, 0), (0, 0, 0), (0, 1, 0), (1, 1)], [(0, 0.48), (0.85, 0.48)]]),
    "F": (0.9, [[(1, 0), (0, 0, 0), (0, 1)], [(0, 0.48), (0.85, 0.48)]]),
    "G": (1.0, [[(1, 0.15), (1, 0), (0, 0), (0, 1), (1, 1), (1, 0.55, 0), (0.5, 0.55)]]),
    "H": (1.0, [[(0, 0), (0, 1)], [(1, 0), (1, 1)], [(0, 0.48), (1, 0.48)]]),
    "I": (0.3, [[(0.5, 0), (0.5, 1)]]),
    "J": (0.9, [[(1, 0), (1, 1), (0, 1), (0, 0.72)]]),
    "K": (1.0, [[(0, 0), (0, 1)], [(1, 0), (0, 0.62)], [(0.32, 0.42), (1, 1)]]),
    "L": (0.85, [[(0, 0), (0, 1, 0), (1, 1)]]),
    "M": (1.25, [[(0, 1), (0, 0, 0), (0.5, 0.62, 0), (1, 0, 0), (1, 1)]]),
    "N": (1.0, [[(0, 1), (0, 0, 0), (1, 1, 0), (1, 0)]]),
    "O": (1.1, [_box()]),
    "P": (1.0, [[(0, 1), (0, 0, 0), (1, 0), (1, 0.55), (0, 0.55, 0)]]),
    "Q": (1.1, [_box(), [(0.6, 0.72), (1, 1)]]),
    "R": (1.0, [[(0, 1), (0, 0, 0), (1, 0), (1, 0.52), (0, 0.52, 0)], [(0.45, 0.52), (1, 1)]]),
    "S": (1.0, [[(1, 0.12), (1, 0), (0, 0), (0, 0.48), (1, 0.48), (1, 1), (0, 1), (0, 0.88)]]),
    "T": (1.0, [[(0, 0), (1, 0)], [(0.5, 0), (0.5, 1)]]),
    "U": (1.0, [[(0, 0), (0, 1), (1, 1), (1, 0)]]),
    "V": (1.05, [[(0, 0), (0.5, 1, 0), (1, 0)]]),
    "W": (1.4, [[(0, 0), (0.23, 1, 0), (0.5, 0.25, 0), (0.77, 1, 0), (1, 0)]]),
    "X": (1.0, [[(0, 0), (1, 1)], [(1, 0), (0, 1)]]),
    "Y": (1.05, [[(0, 0), (0.5, 0.5, 0), (1, 0)], [(0.5, 0.5), (0.5, 1)]]),
    "Z": (1.0, [[(0, 0), (1, 0, 0), (0, 1, 0), (1, 1)]]),
}

def _bowl_two() -> list[Path]:
    """A 2 with a half-round top over a straight diagonal, as US state faces print it."""
    arc = [(0.5 + 0.5 * np.cos(t), 0.27 - 0.27 * np.sin(t)) for t in np.linspace(np.pi, -np.pi / 5, 9)]
    return [[*arc, (0, 1, 0), (1, 1)]]


# Second forms seen on plates, by name: (character, relative width, paths).
VARIANTS: dict[str, tuple[str, float, list[Path]]] = {
    "open 4": ("4", 1.0, [[(0.1, 0), (0, 0.68, 0), (1, 0.68)], [(0.75, 0.3), (0.75, 1)]]),
    "round 6": ("6", 1.0, SIX_ROUND),
    "round 9": ("9", 1.0, _mirror(SIX_ROUND)),
    "barred 7": ("7", 1.0, [[(0, 0), (1, 0, 0), (0.3, 1)], [(0.3, 0.5), (0.85, 0.5)]]),
    "footed 1": ("1", 0.75, [[(0.1, 0.22), (0.6, 0, 0), (0.6, 1)], [(0.15, 1), (1, 1)]]),
    "bar 1": ("1", 0.3, [[(0.5, 0), (0.5, 1)]]),  # as a plain I: faces with it have a serifed I
    "serif I": ("I", 0.6, [[(0.5, 0), (0.5, 1)], [(0, 0), (1, 0)], [(0, 1), (1, 1)]]),
    "flat A": ("A", 1.05, [[(0, 1), (0.3, 0, 0), (0.7, 0, 0), (1, 1)], [(0.16, 0.64), (0.84, 0.64)]]),
    "slashed 0": ("0", 1.0, [_box(), [(0.85, 0.1), (0.15, 0.9)]]),
    "bowl 2": ("2", 1.0, _bowl_two()),
    "square O": ("O", 1.0, [_box()]),  # as Brazil's grey plates print it: a D with round left corners
}


# Corner radius of a character however square its face (a square 0 would be a D); a second form
# listed by name here has its own instead.
MIN_RADIUS = {"0": 0.22, "O": 0.22, "Q": 0.22, "square O": 0.13}


@dataclass(frozen=True)
class StrokeStyle:
    """One stroke typeface: how wide, how bold, how round, and which second forms it uses."""

    width: float  # glyph width of a 1.0-wide character, share of the cap height
    stroke: float  # stroke width, share of the cap height
    radius: float  # corner radius, share of the cap height (0: square corners)
    variants: tuple[str, ...] = ()  # names of the VARIANTS it draws instead of the SKELETONS


# A few faces spanning what plates print: DIN-like (narrow, round), square (UK / Brazil style),
# condensed US state faces, a heavy one.
STYLES: tuple[StrokeStyle, ...] = (
    StrokeStyle(0.55, 0.13, 0.22),
    StrokeStyle(0.6, 0.15, 0.08, ("open 4", "round 9", "bar 1", "serif I", "square O")),
    StrokeStyle(0.45, 0.12, 0.18, ("round 6", "footed 1", "bowl 2")),
    StrokeStyle(0.62, 0.19, 0.3, ("barred 7", "serif I", "flat A", "bar 1")),
    StrokeStyle(0.5, 0.16, 0.12, ("open 4", "slashed 0")),
    StrokeStyle(0.42, 0.14, 0.25, ("open 4", "round 6", "round 9", "bowl 2")),
)
FONT_PREFIX = "stroke:"  # a font name fonts.py hands here: "stroke:<index in STYLES>"


def names() -> tuple[str, ...]:
    return tuple(f"{FONT_PREFIX}{i}" for i in range(len(STYLES)))


def _closed(path: Path) -> bool:
    return len(path) > 2 and tuple(path[0][:2]) == tuple(path[-1][:2])


def _rounded(path: Path, radius: float, steps: int = 8) -> list[tuple[float, float]]:
    """The path in pixels with each corner not marked sharp replaced by a curve (a quadratic
    Bezier from and to points `radius` along its two sides, at most half of each side)."""
    closed = _closed(path)
    points = [np.asarray(p[:2], np.float64) for p in path]
    round_at = [len(p) < 3 or p[2] != 0 for p in path]
    out = []
    count = len(points) - 1 if closed else len(points)
    for k in range(count):
        p = points[k]
        has_neighbours = closed or 0 < k < count - 1
        if not (has_neighbours and round_at[k] and radius > 0):
            out.append(tuple(p))
            continue
        before, after = points[k - 1] if k else points[-2], points[k + 1]
        a, b = before - p, after - p
        la, lb = np.linalg.norm(a), np.linalg.norm(b)
        d = min(radius, la / 2, lb / 2)
        start, end = p + a / la * d, p + b / lb * d
        for t in np.linspace(0, 1, steps):
            out.append(tuple((1 - t) ** 2 * start + 2 * (1 - t) * t * p + t * t * end))
    if closed:
        out.append(out[0])
    return out


def render(name: str, char: str, cap: int, extra_stroke: int) -> tuple[np.ndarray, int]:
    """Tight (h, w) uint8 ink mask of `char` in the stroke face `name` at cap height `cap` pixels,
    strokes `extra_stroke` pixels bolder, and how many rows below the cap line its ink starts.
    Uncached: fonts.py caches every glyph it asks for."""
    style = STYLES[int(name[len(FONT_PREFIX):])]
    form = next((v for v in style.variants if VARIANTS[v][0] == char), char)
    relative, paths = VARIANTS[form][1:] if form != char else SKELETONS[char]
    line = max(1, round(style.stroke * cap) + extra_stroke)
    width = max(line + 1, style.width * relative * cap)
    pad = line  # room for the square ends, cut off below
    size = (int(np.ceil(width)) + 2 * pad, cap + 2 * pad)
    image = Image.new("L", size, 0)
    draw = ImageDraw.Draw(image)
    half = line / 2
    radius = max(style.radius, MIN_RADIUS.get(form, MIN_RADIUS.get(char, 0.0))) * cap
    for path in paths:
        pixels = [(pad + half + p[0] * (width - line), pad + half + p[1] * (cap - line), *p[2:]) for p in path]
        for x, y, *sharp in pixels:
            if sharp or radius == 0:  # a square corner, not the round joint of the line below
                draw.rectangle([x - half, y - half, x + half - 1, y + half - 1], fill=255)
        points = [np.asarray(p) for p in _rounded(pixels, radius)]
        if not _closed(path):  # square ends, as a broad pen leaves them
            for end, inner in ((0, 1), (-1, -2)):
                direction = points[end] - points[inner]
                points[end] = points[end] + direction / max(np.linalg.norm(direction), 1e-9) * half
        draw.line([tuple(p) for p in points], fill=255, width=line, joint="curve")
    # Ends past the box are cut along it: flat on the baseline and cap line, as plates print them.
    mask = np.asarray(image)[pad:pad + cap, pad:pad + int(np.ceil(width))]
    rows, cols = np.flatnonzero(mask.max(1)), np.flatnonzero(mask.max(0))
    mask = np.ascontiguousarray(mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
    return mask, int(rows[0])
