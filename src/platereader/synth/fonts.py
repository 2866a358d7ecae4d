"""Fonts from installed packages and a per-process cache of pre-rendered glyph bitmaps.

Fonts: Pillow's own FreeType default (`ImageFont.load_default(size)`), TrueType files shipped
with matplotlib (DejaVu, STIX, Computer Modern) and, for the plates of other formats than Swiss,
the sans-serif faces of a few font packages (OFL, installed from PyPI with the project: plain
'1's, narrow digits, the grotesques most plates are printed in) and the stroke faces of
`stroke_font` (DIN-like, drawn from skeletons). Nothing is downloaded at run
time. A glyph is rendered once per (font, char, weight) at a large size, scaled once to each cap
height and kept as a uint8 ink mask (0 = paper, 255 = ink), so a scene only pastes small cached
arrays. The caches are keyed by every
argument that shapes the glyph, so they never change what is drawn, only how fast.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from platereader.errors import UserError
from platereader.formats import ALPHABET
from platereader.synth import stroke_font

# Candidate files in matplotlib/mpl-data/fonts/ttf (missing ones are skipped; the order is fixed
# because the generator draws a font by index).
MPL_FONT_FILES = [
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneral.ttf",
    "cmss10.ttf",
    "cmtt10.ttf",
    "DejaVuSerif-Bold.ttf",
]
DEFAULT_FONT = "pillow-default"
# Packaged faces, (module, file in its files/ folder), after the ones above. Swiss plates and
# distractor text draw only from the fonts above (`num_fonts`), other formats from all
# (`num_format_fonts`): Swiss scenes stayed byte for byte what they were when these came.
PACKAGE_FONT_FILES = [
    ("font_fjallaone", "FjallaOne-Regular.ttf"),
    ("font_roboto", "Roboto-Regular.ttf"),
    ("font_roboto", "Roboto-Medium.ttf"),
    ("font_roboto", "Roboto-Bold.ttf"),
    ("font_source_sans_pro", "SourceSansPro-Semibold.ttf"),
    ("font_manrope", "Manrope-SemiBold.ttf"),
    ("font_rhd", "RedHatDisplay-Medium.ttf"),
    ("font_lato", "Lato-Bold.ttf"),
    ("font_hanken_grotesk", "HankenGrotesk-Medium.otf"),
    ("font_roboto", "Roboto-Black.ttf"),
    ("font_source_sans_pro", "SourceSansPro-Regular.ttf"),
    ("font_source_sans_pro", "SourceSansPro-Black.ttf"),
    ("font_manrope", "Manrope-ExtraBold.ttf"),
    ("font_rhd", "RedHatDisplay-Black.ttf"),
    ("font_lato", "Lato-Regular.ttf"),
    ("font_lato", "Lato-Black.ttf"),
    ("font_hanken_grotesk", "HankenGrotesk-Bold.otf"),
]


@dataclass(frozen=True)
class Glyph:
    mask: np.ndarray  # (h, w) uint8 ink mask, cropped to the ink
    top: int  # rows from the cap line to the first row of `mask` (may be negative)
    image: Image.Image  # the same mask as a Pillow "L" image (for Image.paste)

    @property
    def width(self) -> int:
        return self.mask.shape[1]


def mpl_font_dir() -> str | None:
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        return None
    return os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf")


def package_font(module: str, name: str) -> str:
    """The path of a font file shipped in an installed package's files/ folder."""
    try:
        package = importlib.import_module(module)
    except ImportError:
        raise UserError(f"the font package {module} is not installed: pip install -e . installs "
                        f"it (pyproject.toml lists it)") from None
    return os.path.join(os.path.dirname(package.__file__), "files", name)


@lru_cache(maxsize=1)
def base_fonts() -> tuple[str, ...]:
    """Pillow's and matplotlib's fonts: what Swiss plates and distractor text are drawn in."""
    names = [DEFAULT_FONT]
    folder = mpl_font_dir()
    if folder:
        names += [os.path.join(folder, f) for f in MPL_FONT_FILES if os.path.exists(os.path.join(folder, f))]
    return tuple(names)


@lru_cache(maxsize=1)
def training_fonts() -> tuple[str, ...]:
    """The fonts the pipeline draws plates in, in a fixed order (the generator draws an index):
    `base_fonts`, the packaged ones, then the stroke faces."""
    return base_fonts() + tuple(package_font(m, f) for m, f in PACKAGE_FONT_FILES) + stroke_font.names()


_chosen_fonts: tuple[str, ...] | None = None


def font_names() -> tuple[str, ...]:
    """The fonts the generator draws from: the training fonts, unless `use_fonts` chose others."""
    return _chosen_fonts or training_fonts()


def use_fonts(names: tuple[str, ...] | None) -> None:
    """Draw every plate and distractor in these font files from now on, in this process (None: the
    training fonts again). scripts/robustness.py reads plates in typefaces the models never saw."""
    global _chosen_fonts
    _chosen_fonts = tuple(names) if names else None
    _BASE.clear()  # the glyph caches are keyed by font index, which now names another font
    _GLYPHS.clear()


def num_fonts() -> int:
    """How many fonts Swiss plates and distractors draw from: the first of `font_names()`."""
    return len(_chosen_fonts or base_fonts())


def num_format_fonts() -> int:
    """How many fonts the plates of other formats draw from: all of `font_names()`."""
    return len(font_names())


@lru_cache(maxsize=512)
def load_font(name: str, size: int) -> ImageFont.FreeTypeFont:
    if name == DEFAULT_FONT:
        return ImageFont.load_default(size)
    return ImageFont.truetype(name, size)


@lru_cache(maxsize=64)
def _cap_ratio(name: str) -> float:
    """Cap height ('H' ink height) per point of font size."""
    ref = 100
    box = load_font(name, ref).getbbox("H", anchor="ls")
    return (box[3] - box[1]) / ref


def _render(font: ImageFont.FreeTypeFont, char: str, stroke: int) -> tuple[np.ndarray, int]:
    """Tight ink mask of one char and the y of its first row relative to the baseline."""
    left, top, right, bottom = font.getbbox(char, anchor="ls", stroke_width=stroke)
    pad = 2
    w, h = right - left + 2 * pad, bottom - top + 2 * pad
    img = Image.new("L", (max(w, 1), max(h, 1)), 0)
    ImageDraw.Draw(img).text((pad - left, pad - top), char, fill=255, font=font, anchor="ls",
                             stroke_width=stroke, stroke_fill=255)
    arr = np.asarray(img)
    rows = np.flatnonzero(arr.max(1) > 0)
    cols = np.flatnonzero(arr.max(0) > 0)
    if len(rows) == 0:
        return np.zeros((1, 1), np.uint8), 0
    arr = arr[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return np.ascontiguousarray(arr), int(rows[0] - pad + top)


BASE_CAP = 64  # glyphs are rendered once at this cap height and scaled down from there
STROKE_SHARE = 0.05  # extra stroke per weight level, share of the cap height

_BASE: dict[tuple, Glyph] = {}
_GLYPHS: dict[tuple, Glyph] = {}


def _base_glyph(font_index: int, char: str, weight: int) -> Glyph:
    key = (font_index, char, weight)
    cached = _BASE.get(key)
    if cached is None:
        names = font_names()
        name = names[font_index % len(names)]
        stroke = round(STROKE_SHARE * BASE_CAP * weight)
        if name.startswith(stroke_font.FONT_PREFIX):
            mask, top = stroke_font.render(name, char, BASE_CAP, stroke)
        else:
            size = max(4, round((BASE_CAP - stroke) / _cap_ratio(name)))
            mask, y = _render(load_font(name, size), char, stroke)
            top = int(y + BASE_CAP - stroke)  # 0 = cap line
        cached = Glyph(mask, top, Image.fromarray(mask))
        _BASE[key] = cached
    return cached


def glyph(font_index: int, cap_height: int, char: str, weight: int = 0) -> Glyph:
    """Bitmap of `char` (A-Z, 0-9) whose cap height is `cap_height` pixels, cached per process.

    `weight` (0, 1, 2...) thickens the strokes by 5 % of the cap height per level. The glyph is
    rendered once at BASE_CAP and area-averaged down, so a new size costs a resize, not a FreeType
    render. The result depends only on the arguments, so caching never changes what is drawn.
    """
    key = (font_index, cap_height, char, weight)
    cached = _GLYPHS.get(key)
    if cached is not None:
        return cached
    base = _base_glyph(font_index, char, weight)
    if cap_height == BASE_CAP:
        out = base
    else:
        s = cap_height / BASE_CAP
        h, w = base.mask.shape
        img = base.image.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BOX)
        mask = np.asarray(img)
        out = Glyph(mask, round(base.top * s), img)
    _GLYPHS[key] = out
    return out


def glyph_set(font_index: int, cap_height: int, weight: int = 0) -> dict[str, Glyph]:
    """All of A-Z and 0-9 (see `glyph`)."""
    return {c: glyph(font_index, cap_height, c, weight) for c in ALPHABET}
