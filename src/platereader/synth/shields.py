"""Shields drawn as shapes: the Swiss cross and a generic canton shield with a random pattern.

Nothing is copied from real coats of arms: the canton shield is a plain shield outline split into
two tones (vertical, horizontal, diagonal, quartered, a band or a disc), which is enough for the
models to learn "a shield is not a character".
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

# Shield outline in a unit box (x right, y down): flat top, straight sides to 45 % of the height,
# then an elliptic curve to the point at the bottom centre.
_ANGLES = np.linspace(0.0, np.pi, 13)
_OUTLINE = np.concatenate([
    [[0.0, 0.0], [1.0, 0.0]],
    np.stack([0.5 + 0.5 * np.cos(_ANGLES), 0.45 + 0.55 * np.sin(_ANGLES)], 1),
])
PATTERNS = ("vertical", "horizontal", "diagonal", "quartered", "band", "disc")


def outline_points(x: float, y: float, w: float, h: float) -> list[tuple[float, float]]:
    return [(x + w * px, y + h * py) for px, py in _OUTLINE]


@lru_cache(maxsize=256)
def shield_mask(w: int, h: int) -> Image.Image:
    """Filled shield outline (255 inside) of w x h pixels, cached per size."""
    img = Image.new("L", (w, h), 0)
    ImageDraw.Draw(img).polygon(outline_points(0, 0, w - 1, h - 1), fill=255)
    return img


def draw_swiss(plate: Image.Image, x: int, y: int, w: int, h: int, field: int, cross: int, ink: int) -> None:
    """Swiss shield: a (red) field with a white cross, dark outline."""
    draw = ImageDraw.Draw(plate)
    draw.polygon(outline_points(x, y, w - 1, h - 1), fill=field, outline=ink)
    cx, cy = x + (w - 1) / 2, y + (h - 1) * 0.46
    arm = max(1.0, 0.30 * w)  # half length of a cross arm
    half = max(0.5, 0.10 * w)  # half width of a cross arm
    draw.rectangle((cx - half, cy - arm, cx + half, cy + arm), fill=cross)
    draw.rectangle((cx - arm, cy - half, cx + arm, cy + half), fill=cross)


def draw_canton(plate: Image.Image, x: int, y: int, w: int, h: int, pattern: int, tone_a: int,
                tone_b: int, ink: int, param: float) -> None:
    """A canton-like shield: two tones split by `PATTERNS[pattern]`; `param` in [0, 1) varies it."""
    field = Image.new("L", (w, h), tone_a)
    draw = ImageDraw.Draw(field)
    kind = PATTERNS[pattern % len(PATTERNS)]
    if kind == "vertical":
        draw.rectangle((0, 0, (w - 1) / 2, h), fill=tone_b)
    elif kind == "horizontal":
        draw.rectangle((0, 0, w, (h - 1) * (0.35 + 0.3 * param)), fill=tone_b)
    elif kind == "diagonal":
        if param < 0.5:
            draw.polygon([(0, 0), (w, 0), (0, h)], fill=tone_b)
        else:
            draw.polygon([(0, 0), (w, 0), (w, h)], fill=tone_b)
    elif kind == "quartered":
        draw.rectangle((0, 0, (w - 1) / 2, (h - 1) / 2), fill=tone_b)
        draw.rectangle(((w - 1) / 2, (h - 1) / 2, w, h), fill=tone_b)
    elif kind == "band":
        draw.rectangle((0, h * 0.33, w, h * 0.6), fill=tone_b)
    else:  # disc
        r = w * (0.2 + 0.12 * param)
        cx, cy = (w - 1) / 2, (h - 1) * 0.42
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=tone_b)
    plate.paste(field, (x, y), shield_mask(w, h))
    ImageDraw.Draw(plate).polygon(outline_points(x, y, w - 1, h - 1), outline=ink)
