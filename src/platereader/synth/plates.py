"""Swiss licence plates drawn with Pillow and numpy: no templates, no downloads.

A plate is described by a `PlateStyle` (text and every random look parameter, drawn once from the
scene's rng) and rendered by `render_plate(style, height)` at a chosen pixel height. The scene
compositor picks the height close to the plate's final size, so the warp never shrinks it much.

Proportions are the real ones: a front plate is 300 x 80 mm with one line "ZH·123456"; a back plate is
500 x 110 mm with the Swiss shield, "ZH·123456" and the canton's shield. Dark glyphs on a white
plate with a dark border; the text read by OCR is canton + digits ("ZH123456").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from platereader.formats import SWISS_CANTONS, SWISS_MAX_DIGITS
from platereader.synth import fonts, shields

FRONT_MM = (300.0, 80.0)  # width, height
BACK_MM = (500.0, 110.0)
FRONT_ASPECT = FRONT_MM[0] / FRONT_MM[1]
BACK_ASPECT = BACK_MM[0] / BACK_MM[1]
# Pixel heights a plate is rendered at (the compositor takes the smallest one >= the final size).
RENDER_HEIGHTS = (20, 28, 40, 56, 80, 112, 160)
CAP_RATIOS = (0.56, 0.62, 0.68)  # cap height / plate height (quantised: glyph caches stay small)
PAD = 2  # transparent pixels around the rendered plate, so the warp's edges are anti-aliased


def plate_text(canton: str, number: str) -> str:
    """What OCR reads: canton + digits (the separator dot and the shields are not characters)."""
    return canton + number


def aspect(back_style: bool) -> float:
    return BACK_ASPECT if back_style else FRONT_ASPECT


@dataclass(frozen=True)
class PlateStyle:
    canton: str
    number: str
    back_style: bool
    font: int
    stroke: int  # glyph weight level (0 or 1): thicker strokes, see fonts.glyph
    cap: int  # index into CAP_RATIOS
    condense: float  # text block width factor (0.7..1)
    gap: float  # letter spacing, share of cap height
    dot: float  # dot diameter, share of cap height
    paper: int
    ink: int
    border_inset: float  # shares of plate height
    border_width: float
    radius: float
    margin: float
    shift: float  # vertical text offset, share of plate height
    swiss_field: int
    pattern: int
    tone_a: int
    tone_b: int
    pattern_param: float
    shield_size: float  # shield height, share of plate height

    @property
    def text(self) -> str:
        return plate_text(self.canton, self.number)

    @property
    def aspect(self) -> float:
        return aspect(self.back_style)

    @property
    def format(self) -> str:  # platereader.formats name (plate_formats.py draws the others)
        return "swiss"

    @property
    def rows(self) -> tuple[str, ...]:  # Swiss plates are drawn on one row
        return ()

    @property
    def variant(self) -> str:
        return "back" if self.back_style else "front"


def draw_style(rng: np.random.Generator, gen) -> PlateStyle:
    """Draw a plate's text and look. Always consumes the same number of draws."""
    cantons = list(gen.CANTONS or SWISS_CANTONS)  # [] draws every canton
    cum = np.cumsum(np.asarray(gen.DIGIT_WEIGHTS, dtype=np.float64))
    canton = cantons[int(rng.integers(len(cantons)))]
    ndigits = 1 + min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), len(cum) - 1)
    digits = rng.integers(0, 10, SWISS_MAX_DIGITS)
    digits[0] = 1 + digits[0] % 9  # no leading zero
    number = "".join(str(d) for d in digits[:ndigits])
    back = bool(rng.random() < gen.BACK_STYLE_RATE)
    u = rng.random(16)
    paper = 175 + int(u[5] * 81)
    return PlateStyle(
        canton=canton, number=number, back_style=back,
        font=int(rng.integers(fonts.num_fonts())),
        stroke=int(u[0] < 0.3),
        cap=int(u[1] * len(CAP_RATIOS)),
        condense=0.7 + 0.3 * float(u[2]),
        gap=0.05 + 0.15 * float(u[3]),
        dot=0.12 + 0.08 * float(u[4]),
        paper=paper,
        ink=int(u[6] * 70),
        border_inset=0.06 * float(u[7]),
        border_width=0.02 + 0.03 * float(u[8]),
        radius=0.1 * float(u[9]),
        margin=0.08 + 0.1 * float(u[10]),
        shift=0.06 * (float(u[11]) - 0.5),
        swiss_field=60 + int(u[12] * 80),
        pattern=int(u[13] * len(shields.PATTERNS)),
        tone_a=int(u[14] * 256),
        tone_b=int((u[14] + 0.3 + 0.4 * u[15]) % 1.0 * 256),
        pattern_param=float(u[15]),
        shield_size=0.55 + 0.15 * float(u[2]),
    )


@lru_cache(maxsize=64)
def _dot(diameter: int) -> np.ndarray:
    r = diameter / 2
    yy, xx = np.mgrid[0:diameter, 0:diameter] + 0.5
    return (((xx - r) ** 2 + (yy - r) ** 2) <= r * r).astype(np.uint8) * 255


def _text_block(style: PlateStyle, cap: int) -> tuple[np.ndarray, int]:
    """Ink mask of 'ZH·123456' (uncondensed) and the row of its cap line."""
    gap = max(1, round(style.gap * cap))
    dot_d = max(2, round(style.dot * cap))
    items = [fonts.glyph(style.font, cap, c, style.stroke) for c in style.canton]
    digits = [fonts.glyph(style.font, cap, c, style.stroke) for c in style.number]
    width = sum(g.width for g in items + digits) + gap * (len(items) + len(digits) - 2) + 2 * gap + dot_d
    extra = max(2, cap // 5)
    block = np.zeros((cap + 2 * extra, width), np.uint8)
    x = 0

    def put(mask: np.ndarray, top: int, x: int) -> None:
        y0 = top + extra
        h, w = mask.shape
        r0, r1 = max(0, y0), min(block.shape[0], y0 + h)
        if r1 > r0:
            view = block[r0:r1, x:x + w]
            np.maximum(view, mask[r0 - y0:r1 - y0, :view.shape[1]], out=view)

    for i, g in enumerate(items):
        put(g.mask, g.top, x)
        x += g.width + (gap if i < len(items) - 1 else 0)
    x += gap
    put(_dot(dot_d), round(cap / 2 - dot_d / 2), x)
    x += dot_d + gap
    for g in digits:
        put(g.mask, g.top, x)
        x += g.width + gap
    return block, extra


@lru_cache(maxsize=512)
def _alpha(width: int, height: int, radius: int) -> Image.Image:
    alpha = Image.new("L", (width + 2 * PAD, height + 2 * PAD), 0)
    ImageDraw.Draw(alpha).rounded_rectangle((PAD, PAD, PAD + width - 1, PAD + height - 1), radius=radius, fill=255)
    return alpha


@dataclass
class RenderedPlate:
    image: Image.Image  # "La": gray plate (not premultiplied) and its alpha, PAD transparent pixels around
    width: int  # plate body in pixels (without PAD)
    height: int


def render_plate(style: PlateStyle, height: int) -> RenderedPlate:
    """Draw the plate `height` pixels high; its body spans [PAD, PAD + width] x [PAD, PAD + height]."""
    h = int(height)
    w = round(h * style.aspect)
    plate = Image.new("L", (w + 2 * PAD, h + 2 * PAD), style.paper)
    draw = ImageDraw.Draw(plate)
    radius = round(style.radius * h)
    inset = round(style.border_inset * h)
    bw = max(1, round(style.border_width * h))
    draw.rounded_rectangle((PAD + inset, PAD + inset, PAD + w - 1 - inset, PAD + h - 1 - inset),
                           radius=max(0, radius - inset), outline=style.ink, width=bw)
    inner = inset + bw + max(1, round(style.margin * h))  # free space from the plate edge

    cap = max(6, round(CAP_RATIOS[style.cap] * h))
    block, extra = _text_block(style, cap)
    left, right = inner, w - inner
    if style.back_style:
        sh = max(6, round(style.shield_size * h))
        sw = max(5, round(sh * 0.8))
        sy = PAD + (h - sh) // 2
        shields.draw_swiss(plate, PAD + inner, sy, sw, sh, style.swiss_field, style.paper, style.ink)
        shields.draw_canton(plate, PAD + w - inner - sw, sy, sw, sh, style.pattern, style.tone_a,
                            style.tone_b, style.ink, style.pattern_param)
        gap = max(2, round(0.15 * h))
        left, right = inner + sw + gap, w - inner - sw - gap
    avail = max(4, right - left)
    target = min(avail, max(1, round(block.shape[1] * style.condense)))
    mask = Image.fromarray(block)
    if target != block.shape[1]:
        mask = mask.resize((target, block.shape[0]), Image.BILINEAR)
    x = PAD + left + (avail - target) // 2
    y = PAD + round((h - cap) / 2 + style.shift * h) - extra
    plate.paste(style.ink, (x, y), mask)
    # "La" (Pillow's premultiplied mode) only so that Image.transform does not convert the image to
    # premultiplied alpha and back: the gray band is *not* premultiplied. That is safe because the
    # transparent padding has the paper's gray, so interpolating across the edge never darkens it.
    image = Image.merge("La", (plate, _alpha(w, h, radius)))
    return RenderedPlate(image, w, h)
