"""Plates of every format in platereader.formats: the format drawn per plate, and the non-Swiss
plates (Brazil's old grey and Mercosur plates, US plates, European plates) drawn from style tables.

`draw(rng, gen)` picks a format by `gen.FORMATS` (format name -> weight) and draws a plate of it;
`render(style, height)` draws it `height` pixels high. Swiss plates keep their own code
(plates.py); with FORMATS = {"swiss": 1} no draw is added, so those scenes are byte for byte what
they were before other formats existed.

A `Layout` (one per look: "brazil"/"old", "brazil"/"mercosur", their two-row motorcycle plates,
"us", "eu" and its square two-row plates) is data: its size in mm, its text templates, paper and ink
colours, the caps and zones of its lines, its band. A two-row layout prints its text's rows in the
bands of platereader.geometry.quads.ROWS, the halves of the plate the reader reads them from;
`GeneratorParams.TWO_ROW_RATE` is the share of a format's plates drawn in one. `draw_style`
draws every random choice of one plate into a `FormatStyle`; `render_style` draws it. Colours are
written as the real RGB and converted to the gray the scenes are made of (Pillow's "L" weights), so
a blue band is dark and a yellow plate light gray. Text separators (space, dash, dot, the German
plates' round seals, a US state's emblem) are drawn but are not part of the text: `style.text` is
what the OCR reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from platereader import formats, validate
from platereader.synth import fonts, plates

DEFAULT_FORMATS = {"swiss": 1}
SEPARATORS = ("", " ", "-", "·", "seal", "emblem")  # what may be printed between a text's groups


def gray(rgb: tuple[int, int, int]) -> int:
    """The gray Pillow gives an RGB colour ("L" = 0.299 R + 0.587 G + 0.114 B)."""
    r, g, b = rgb
    return (r * 299 + g * 587 + b * 114 + 500) // 1000


# --- colours (RGB, as printed on real plates) ---------------------------------------------------------

WHITE = (250, 250, 248)
BLACK = (20, 20, 22)
SILVER = (175, 178, 182)
DARK_GREY = (120, 122, 126)
EU_BLUE = (0, 51, 153)
EU_YELLOW = (255, 204, 0)
MERCOSUR_BLUE = (0, 61, 165)
FLAG_GREEN, FLAG_YELLOW, FLAG_BLUE = (0, 156, 59), (255, 223, 0), (0, 39, 118)
US_PAPERS = ((250, 250, 250), (255, 250, 225), (225, 236, 250), (235, 235, 230), (250, 240, 215), (230, 245, 230))
US_INKS = ((0, 38, 100), (190, 20, 40), (20, 20, 22), (0, 100, 50), (110, 20, 40))


@dataclass(frozen=True)
class Template:
    """One way a format's text is made: groups of character classes, printed with a separator.

    `groups` is a string of groups split by spaces; in a group L is a letter, D a digit, A either,
    and a lower-case class (l, d, a) is optional (kept at random): "Lll Ll Dddd" is one to three
    letters, one or two letters, one to four digits. A group "/" starts the second row of a two-row
    plate ("LLL / DDDD"); each row keeps at least one upper-case class. `separators` are what may be printed between
    groups (one drawn per plate, repeats weigh more): a separator, or a tuple of one per gap between
    groups; `codes` the country codes of a European band.
    """
    groups: str
    separators: tuple[str | tuple[str, ...], ...] = ("",)
    weight: float = 1.0
    codes: tuple[str, ...] = ()

    @property
    def slots(self) -> int:
        return len(self.groups.replace(" ", "").replace("/", ""))


@dataclass(frozen=True)
class Line:
    """A line of small print (city, state name, slogan): cap heights (shares of the plate height,
    a few values so the glyph caches stay small), the band of the plate it is centred in (shares of
    width x0, x1 and of height y0, y1) and how often the plate has it."""
    caps: tuple[float, ...]
    box: tuple[float, float, float, float]
    rate: float = 1.0


@dataclass(frozen=True)
class Layout:
    format: str
    variant: str
    weight: float  # share of the format's plates
    size_mm: tuple[float, float]  # width, height
    templates: tuple[Template, ...]
    papers: tuple[tuple[int, int, int], ...]
    inks: tuple[tuple[int, int, int], ...]
    caps: tuple[float, ...]  # main text cap height, share of the plate height
    box: tuple[float, float, float, float]  # main text zone: x0, x1 shares of width, y0, y1 of height
    top: Line | None = None
    bottom: Line | None = None
    band: str = ""  # "top" or "left": a coloured band (Mercosur, EU)
    band_size: tuple[float, float] = (0.0, 0.0)  # its height (top) or width (left), share of plate height
    border_rate: float = 1.0
    radius: tuple[float, float] = (0.0, 0.1)  # corner radius, share of plate height
    yellow_rate: float = 0.0  # share of (EU) plates on yellow instead of `papers`
    holes_rate: float = 0.0  # two bolt holes at the top (US)
    sticker_rate: float = 0.0  # a registration sticker in a top corner (US)
    art_rate: float = 0.0  # a faint picture or gradient behind the text (US)
    rows: tuple[tuple[float, float], ...] = ()  # a two-row plate's text bands (y0, y1, shares of height)

    @property
    def aspect(self) -> float:
        return self.size_mm[0] / self.size_mm[1]


LAYOUTS: dict[str, tuple[Layout, ...]] = {
    "brazil": (
        Layout("brazil", "old", 0.5, (400, 130),
               templates=(Template("LLL DDDD", ("-", "-", " ")),),
               papers=(SILVER, (160, 162, 166), (195, 196, 198)), inks=(BLACK, (40, 40, 45)),
               caps=(0.44, 0.5), box=(0.05, 0.95, 0.27, 0.97),
               top=Line(caps=(0.1, 0.13, 0.16), box=(0.12, 0.88, 0.04, 0.25)), radius=(0.0, 0.06)),
        Layout("brazil", "mercosur", 0.5, (400, 130),
               templates=(Template("LLLDLDD"),),
               papers=(WHITE, (240, 240, 236)), inks=(BLACK,),
               caps=(0.44, 0.5, 0.56), box=(0.11, 0.97, 0.26, 0.98),
               band="top", band_size=(0.21, 0.25), radius=(0.02, 0.08)),
        Layout("brazil", "old-moto", 0.5, (200, 170),
               templates=(Template("LLL / DDDD"),),
               papers=(SILVER, (160, 162, 166), (195, 196, 198)), inks=(BLACK, (40, 40, 45)),
               caps=(0.28, 0.32), box=(0.06, 0.94, 0.0, 1.0),
               top=Line(caps=(0.07, 0.09), box=(0.12, 0.88, 0.02, 0.13)), radius=(0.0, 0.06),
               rows=((0.13, 0.46), (0.54, 0.96))),
        Layout("brazil", "mercosur-moto", 0.5, (200, 170),
               templates=(Template("LLL / DLDD"),),
               papers=(WHITE, (240, 240, 236)), inks=(BLACK,),
               caps=(0.26, 0.3), box=(0.1, 0.95, 0.0, 1.0),
               band="top", band_size=(0.12, 0.14), radius=(0.02, 0.08), rows=((0.15, 0.46), (0.54, 0.96))),
    ),
    "us": (
        Layout("us", "standard", 1.0, (12 * 25.4, 6 * 25.4),
               templates=(Template("LLL DDDD", ("-", " ", "", "·", "emblem"), 3), Template("DLLL DDD", ("",), 2),
                          Template("LLL DDD", (" ", "-", "", "emblem"), 2), Template("DDD LLL", (" ", "-", "", "emblem"), 1),
                          Template("LL DDDDD", ("", " "), 1), Template("DDD DDD", (" ", "-", "emblem"), 0.5),
                          Template("DL DDDD", ("", " "), 0.5), Template("AAaaaaaa", ("",), 1)),
               papers=US_PAPERS, inks=US_INKS,
               caps=(0.44, 0.5), box=(0.05, 0.95, 0.24, 0.84),
               top=Line(caps=(0.13, 0.16), box=(0.27, 0.73, 0.03, 0.24)),
               bottom=Line(caps=(0.08, 0.1), box=(0.15, 0.85, 0.84, 0.97), rate=0.7),
               border_rate=0.6, radius=(0.04, 0.12), holes_rate=0.5, sticker_rate=0.4, art_rate=0.5),
    ),
    "eu": (
        Layout("eu", "standard", 1.0, (520, 110),
               templates=(Template("Lll Ll Dddd", (" ", " ", ("seal", " ")), 3, ("D",)),
                          Template("LL DDD LL", ("-", " "), 2, ("F", "I")),
                          Template("DD LL DD", ("-",), 0.5, ("NL",)),
                          Template("LL DD LL", ("-", " "), 0.5, ("NL", "P")),
                          Template("DDDD LLL", (" ",), 1, ("E",)), Template("LL DDDDD", (" ",), 1, ("PL",)),
                          Template("D LLL DDD", ("-",), 1, ("B",)), Template("LLL DDD", (" ",), 0.5, ("S", "H", "LT")),
                          Template("DLD DDDD", (" ",), 0.5, ("CZ", "SK")),
                          Template("Ll DDDd", (" ", "-"), 0.5, ("A", "L", "DK", "FIN", "IRL", "SLO", "HR", "RO"))),
               papers=(WHITE, (240, 240, 238)), inks=(BLACK, (35, 35, 40)),
               caps=(0.62, 0.68), box=(0.0, 0.97, 0.06, 0.94),
               band="left", band_size=(0.34, 0.42), radius=(0.02, 0.08), yellow_rate=0.2),
        Layout("eu", "square", 1.0, (280, 200),
               templates=(Template("Lll Ll / Dddd", (" ",), 2, ("D",)), Template("LLDD / LLL", ("",), 2, ("GB",)),
                          Template("LL DDD / LL", ("-", " "), 1, ("F", "I")), Template("DDDD / LLL", (" ",), 0.5, ("E",)),
                          Template("LLL / DDDd", (" ",), 0.5, ("S", "PL", "CZ", "A"))),
               papers=(WHITE, (240, 240, 238)), inks=(BLACK, (35, 35, 40)),
               caps=(0.3, 0.34), box=(0.0, 0.96, 0.0, 1.0),
               band="left", band_size=(0.18, 0.22), radius=(0.02, 0.08), yellow_rate=0.2,
               rows=((0.06, 0.46), (0.54, 0.94))),
    ),
}


@dataclass(frozen=True)
class FormatStyle:
    """Every random choice of one non-Swiss plate (drawn once from the scene's rng)."""
    format: str
    variant: str
    text: str  # what the OCR reads: the plate's characters without separators
    tokens: tuple[str, ...]  # what is printed: groups of characters and separators ("/" ends a row)
    rows: tuple[str, ...]  # a two-row plate's text per row, top first (() for one row)
    aspect: float
    font: int
    stroke: int
    cap: float  # main cap height, share of plate height
    condense: float  # text width factor
    gap: float  # letter spacing, share of cap height
    shift: float  # vertical text offset, share of plate height
    paper: int
    paper2: int  # tone at the bottom of a gradient (= paper when flat)
    ink: int
    border: int  # border tone (-1: no border line)
    border_inset: float
    border_width: float
    radius: float
    band: float  # band size, share of plate height (0: none)
    band_tone: int
    label: tuple[str, ...]  # small print in the band (a country code, "BRASIL")
    label_tone: int
    top: tuple[str, ...]  # small print above the text ((): none)
    top_cap: float
    top_tone: int
    bottom: tuple[str, ...]
    bottom_cap: float
    small_font: int
    holes: int  # bolt hole tone (-1: none)
    sticker: int  # sticker tone (-1: none)
    sticker_right: bool
    art: int  # 0 none, 1 hills, 2 disc, 3 vertical gradient (then paper2)
    art_tone: int
    art_param: float

    @property
    def back_style(self) -> bool:  # Swiss back plates only
        return False


# --- drawing a plate ----------------------------------------------------------------------------------

def _pick(u: float, weights) -> int:
    cum = np.cumsum(np.asarray(weights, np.float64))
    return min(int(np.searchsorted(cum, u * cum[-1], side="right")), len(cum) - 1)


def _jitter(rgb, u: float, amount: int = 12) -> int:
    return min(255, max(0, gray(rgb) + round((2 * u - 1) * amount)))


def _fill(template: Template, letters: str, rng: np.random.Generator) -> tuple[str, ...]:
    """The template's groups filled with random `letters` (the format's) and digits (optional ones
    kept at random)."""
    n, either = template.slots, letters + formats.DIGITS
    picks, digits = rng.integers(len(letters), size=n), rng.integers(10, size=n)
    anys = rng.integers(len(either), size=n)
    keep = rng.random(n) < 0.5
    groups, i = [], 0
    for group in template.groups.split(" "):
        if group == "/":
            groups.append(group)
            continue
        chars = []
        for cls in group:
            if cls.isupper() or keep[i]:
                kind = cls.upper()
                chars.append(letters[picks[i]] if kind == "L" else formats.DIGITS[digits[i]]
                             if kind == "D" else either[anys[i]])
            i += 1
        groups.append("".join(chars))
    return tuple(g for g in groups if g)


def _word(rng: np.random.Generator, lo: int, hi: int) -> str:
    n = int(rng.integers(lo, hi + 1))
    return "".join(formats.LETTERS[i] for i in rng.integers(26, size=n))


def _words(rng: np.random.Generator, count: int, lo: int, hi: int) -> tuple[str, ...]:
    out = []
    for k in range(count):
        if k:
            out.append(" ")
        out.append(_word(rng, lo, hi))
    return tuple(out)


BRAZIL_STATES = ("AC", "AL", "AM", "AP", "BA", "CE", "DF", "ES", "GO", "MA", "MG", "MS", "MT", "PA", "PB",
                 "PE", "PI", "PR", "RJ", "RN", "RO", "RR", "RS", "SC", "SE", "SP", "TO")


def draw_style(rng: np.random.Generator, name: str, two_row_rate: float = 0.0) -> FormatStyle:
    """Draw a plate of format `name` (not "swiss"): its text, which fits the format, and its look;
    one of its two-row layouts (if it has any) at `two_row_rate`."""
    layouts = LAYOUTS[name]
    if two_row_rate > 0 and any(lay.rows for lay in layouts):
        two_row = bool(rng.random() < two_row_rate)
        layouts = tuple(lay for lay in layouts if bool(lay.rows) == two_row)
    else:
        layouts = tuple(lay for lay in layouts if not lay.rows)
    u = rng.random(32)
    layout = layouts[_pick(u[0], [lay.weight for lay in layouts])]
    template = layout.templates[_pick(u[1], [t.weight for t in layout.templates])]
    groups = _fill(template, formats.FORMATS[name].letters, rng)
    sep = template.separators[int(u[2] * len(template.separators))]
    gaps = sep if isinstance(sep, tuple) else (sep,) * len(template.groups.split(" "))
    tokens, k = [], 0
    for g in groups:
        if g != "/" and tokens and tokens[-1] != "/" and gaps[k - 1]:
            tokens.append(gaps[k - 1])
        tokens.append(g)
        k += g != "/"
    text = "".join(g for g in groups if g != "/")
    rows = tuple("".join(row.split(" ")) for row in " ".join(groups).split(" / ")) if "/" in groups else ()

    yellow = u[3] < layout.yellow_rate
    paper = _jitter(EU_YELLOW if yellow else layout.papers[int(u[4] * len(layout.papers))], u[5])
    ink = _jitter(layout.inks[int(u[6] * len(layout.inks))], u[7], 15)
    top: tuple[str, ...] = ()
    bottom: tuple[str, ...] = ()
    label: tuple[str, ...] = ()
    band_tone = label_tone = top_tone = 0
    if layout.variant in ("old", "old-moto"):  # "SAO PAULO - SP"
        city = _words(rng, 1 + int(u[8] < 0.4), 3, 9)
        top = city + (" ", "-", " ", BRAZIL_STATES[int(u[9] * len(BRAZIL_STATES))])
    elif layout.variant in ("mercosur", "mercosur-moto"):
        label = ("BRASIL",)
        band_tone = _jitter(MERCOSUR_BLUE, u[9], 15)
    elif name == "us":
        top = (_word(rng, 4, 12),)
        bottom = _words(rng, 1 + int(u[8] * 3), 3, 8) if u[9] < layout.bottom.rate else ()
    elif name == "eu":
        codes = template.codes or ("EU",)
        label = (codes[int(u[9] * len(codes))],)
        band_tone = _jitter(EU_BLUE, u[8], 15)
    label_tone = _jitter(WHITE, u[10], 20)
    top_tone = ink if u[11] < 0.5 or name != "us" else _jitter(US_INKS[int(u[12] * len(US_INKS))], u[13], 15)
    art = 1 + int(u[15] * 3) if u[14] < layout.art_rate else 0
    paper2 = max(0, paper - 15 - int(35 * u[16])) if art == 3 else paper
    return FormatStyle(
        format=name, variant=layout.variant, text=text, tokens=tuple(tokens), rows=rows, aspect=layout.aspect,
        font=int(rng.integers(fonts.num_format_fonts())), stroke=int(u[17] < 0.3),
        cap=layout.caps[int(u[18] * len(layout.caps))], condense=0.75 + 0.25 * float(u[19]),
        gap=0.05 + 0.12 * float(u[20]), shift=0.04 * (float(u[21]) - 0.5),
        paper=paper, paper2=paper2, ink=ink,
        border=(ink if u[22] < 0.7 * layout.border_rate else _jitter(DARK_GREY, u[23], 30))
        if u[22] < layout.border_rate else -1,
        border_inset=0.04 * float(u[23]), border_width=0.015 + 0.025 * float(u[24]),
        radius=layout.radius[0] + (layout.radius[1] - layout.radius[0]) * float(u[25]),
        band=(layout.band_size[0] + (layout.band_size[1] - layout.band_size[0]) * float(u[26])) if layout.band else 0.0,
        band_tone=band_tone, label=label, label_tone=label_tone,
        top=top, top_cap=layout.top.caps[int(u[27] * len(layout.top.caps))] if layout.top else 0.0,
        top_tone=top_tone, bottom=bottom,
        bottom_cap=layout.bottom.caps[int(u[27] * len(layout.bottom.caps))] if layout.bottom else 0.0,
        small_font=int(u[28] * fonts.num_fonts()),
        holes=int(20 + 80 * u[29]) if u[29] < layout.holes_rate else -1,
        sticker=int(40 + 180 * u[30]) if u[30] < layout.sticker_rate else -1, sticker_right=bool(u[31] < 0.7),
        art=art, art_tone=max(0, paper - 12 - int(30 * u[16])), art_param=float(u[31]),
    )


def format_weights(gen) -> dict:
    """`gen.FORMATS` as a dict, format name -> weight (Swiss only where `gen` has none)."""
    return validate.table(getattr(gen, "FORMATS", DEFAULT_FORMATS))


def format_names(gen) -> tuple[str, ...]:
    """The formats `gen` draws (positive weight), in the order of platereader.formats.FORMATS."""
    weights = format_weights(gen)
    return tuple(n for n in formats.FORMATS if weights.get(n, 0) > 0)


def draw(rng: np.random.Generator, gen):
    """Draw a plate: its format by `gen.FORMATS` (no rng draw when only one format has weight), then
    its text and look (plates.PlateStyle for Swiss plates, FormatStyle for the others)."""
    names = format_names(gen)
    name = names[0]
    if len(names) > 1:
        weights = format_weights(gen)
        name = names[_pick(rng.random(), [float(weights[n]) for n in names])]
    if name == "swiss":
        return plates.draw_style(rng, gen)
    return draw_style(rng, name, float(getattr(gen, "TWO_ROW_RATE", 0.0)))


# --- rendering ----------------------------------------------------------------------------------------

@lru_cache(maxsize=256)
def _disc(diameter: int, level: int = 255) -> np.ndarray:
    r = diameter / 2
    yy, xx = np.mgrid[0:diameter, 0:diameter] + 0.5
    return (((xx - r) ** 2 + (yy - r) ** 2) <= r * r).astype(np.uint8) * np.uint8(level)


@lru_cache(maxsize=256)
def _seal(cap: int) -> np.ndarray:
    """The two round stickers of a German plate (registration and inspection seals), stacked, at a
    lighter tone than the ink: a mask of cap rows."""
    d1, d2 = max(2, round(0.4 * cap)), max(2, round(0.5 * cap))
    out = np.zeros((cap, d2), np.uint8)
    for d, y in ((d1, 0), (d2, cap - d2)):
        x = (d2 - d) // 2
        view = out[y:y + d, x:x + d]
        np.maximum(view, _disc(d, 150)[:view.shape[0], :view.shape[1]], out=view)
    return out


@lru_cache(maxsize=256)
def _emblem(cap: int) -> np.ndarray:
    """A state's outline or a logo between a US plate's groups, as a solid oval lighter than the
    ink: a mask of cap rows."""
    w, h = max(2, round(0.6 * cap)), max(2, round(0.8 * cap))
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    oval = (((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2 <= 1).astype(np.uint8) * np.uint8(170)
    out = np.zeros((cap, w), np.uint8)
    top = (cap - h) // 2
    out[top:top + h] = oval[:cap - top]
    return out


def _pieces(tokens, font: int, cap: int, stroke: int) -> list[tuple[np.ndarray, int]]:
    """Ink masks of a printed line and the rows of their tops below the cap line."""
    out = []
    for tok in tokens:
        if tok == "":
            continue
        if tok == " ":
            out.append((np.zeros((1, max(1, round(0.35 * cap))), np.uint8), 0))
        elif tok == "-":
            t = max(1, round(0.13 * cap))
            out.append((np.full((t, max(2, round(0.4 * cap))), 255, np.uint8), round(cap / 2 - t / 2)))
        elif tok == "·":
            d = max(2, round(0.16 * cap))
            out.append((_disc(d), round(cap / 2 - d / 2)))
        elif tok == "seal":
            out.append((_seal(cap), 0))
        elif tok == "emblem":
            out.append((_emblem(cap), 0))
        else:
            out.extend((g.mask, g.top) for g in (fonts.glyph(font, cap, c, stroke) for c in tok))
    return out


def line_mask(tokens, font: int, cap: int, stroke: int, gap: float) -> tuple[np.ndarray, int]:
    """Ink mask of a printed line (cap line at row `extra`) and `extra`."""
    pieces = _pieces(tokens, font, cap, stroke)
    g = max(1, round(gap * cap))
    extra = max(2, cap // 5)
    width = max(1, sum(m.shape[1] for m, _ in pieces) + g * max(0, len(pieces) - 1))
    block = np.zeros((cap + 2 * extra, width), np.uint8)
    x = 0
    for mask, top in pieces:
        y0 = top + extra
        h, w = mask.shape
        r0, r1 = max(0, y0), min(block.shape[0], y0 + h)
        if r1 > r0:
            view = block[r0:r1, x:x + w]
            np.maximum(view, mask[r0 - y0:r1 - y0, :view.shape[1]], out=view)
        x += w + g
    return block, extra


_label_mask = lru_cache(maxsize=4096)(line_mask)  # fixed small print ("BRASIL", country codes)


def _place(plate: Image.Image, tokens, font: int, cap: int, stroke: int, gap: float, condense: float,
           box: tuple[int, int, int, int], tone: int, label: bool = False) -> None:
    """Print a line centred in `box` (x0, y0, x1, y1, plate pixels without PAD); one too wide is
    squeezed and shrunk (half each, in log scale) to the box's width. `label`: a line of a few
    fixed texts, whose masks are cached."""
    block, extra = (_label_mask if label else line_mask)(tuple(tokens), font, cap, stroke, gap)
    x0, y0, x1, y1 = box
    avail = max(2, x1 - x0)
    tw, th = max(1, round(block.shape[1] * condense)), block.shape[0]
    scale = 1.0
    if tw > avail:
        scale = (avail / tw) ** 0.5
        tw, th = avail, max(1, round(th * scale))
    mask = Image.fromarray(block)
    if (tw, th) != block.shape[::-1]:
        mask = mask.resize((tw, th), Image.BILINEAR)
    x = plates.PAD + x0 + (avail - tw) // 2
    y = plates.PAD + round((y0 + y1) / 2 - cap * scale / 2 - extra * scale)
    plate.paste(tone, (x, y), mask)


def _small_cap(share: float, h: int) -> int:
    return max(3, round(share * h))


def render_style(style: FormatStyle, height: int) -> plates.RenderedPlate:
    """Draw a non-Swiss plate `height` pixels high (body at [PAD, PAD + width] x [PAD, PAD + height])."""
    h = int(height)
    w = round(h * style.aspect)
    pad = plates.PAD
    if style.art == 3:  # a vertical gradient, padding included
        ramp = np.linspace(style.paper, style.paper2, h + 2 * pad).round().astype(np.uint8)
        plate = Image.fromarray(np.ascontiguousarray(np.broadcast_to(ramp[:, None], (h + 2 * pad, w + 2 * pad))))
    else:
        plate = Image.new("L", (w + 2 * pad, h + 2 * pad), style.paper)
    draw = ImageDraw.Draw(plate)
    if style.art == 1:  # hills
        k = 3 + int(style.art_param * 4)
        xs = np.linspace(0, w, k + 1)
        ys = h * (0.55 + 0.2 * np.sin(np.arange(k + 1) * (1.3 + 2 * style.art_param)))
        draw.polygon([(pad, pad + h)] + [(pad + x, pad + y) for x, y in zip(xs, ys)] + [(pad + w, pad + h)],
                     fill=style.art_tone)
    elif style.art == 2:  # a sun
        r = h * (0.2 + 0.2 * style.art_param)
        cx, cy = pad + w * (0.3 + 0.4 * style.art_param), pad + h * 0.5
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=style.art_tone)

    left, top_edge = 0, 0  # the band's edge
    band = round(style.band * h)
    if band and style.format == "eu":
        draw.rectangle((pad, pad, pad + band - 1, pad + h - 1), fill=style.band_tone)
        k = min(1.0, style.band / 0.34)  # a square plate's band is narrower: smaller stars and code
        # the ring of twelve stars, as dots
        cx, cy, r = pad + band / 2, pad + 0.3 * h, 0.14 * k * h
        s = max(0.5, 0.022 * k * h)
        for a in np.arange(12) * (np.pi / 6):
            x, y = cx + r * np.cos(a), cy + r * np.sin(a)
            draw.ellipse((x - s, y - s, x + s, y + s), fill=_jitter(EU_YELLOW, 0.5))
        _place(plate, style.label, style.small_font, _small_cap(0.22 * k, h), 1, 0.1, 1.0,
               (1, round(0.52 * h), band - 1, round(0.92 * h)), style.label_tone, label=True)
        left = band
    elif band:  # Mercosur: blue band on top with "BRASIL", a flag on the right, a logo on the left
        draw.rectangle((pad, pad, pad + w - 1, pad + band - 1), fill=style.band_tone)
        _place(plate, style.label, style.small_font, _small_cap(0.13, h), 0, 0.12, 1.0,
               (round(0.25 * w), 0, round(0.75 * w), band), style.label_tone, label=True)
        fh = 0.62 * band
        fx1, fy0 = pad + w - 0.04 * w, pad + (band - fh) / 2
        fx0 = fx1 - 1.4 * fh
        draw.rectangle((fx0, fy0, fx1, fy0 + fh), fill=gray(FLAG_GREEN))
        mx, my = (fx0 + fx1) / 2, fy0 + fh / 2
        draw.polygon([(fx0 + 1, my), (mx, fy0 + 1), (fx1 - 1, my), (mx, fy0 + fh - 1)], fill=gray(FLAG_YELLOW))
        r = 0.22 * fh
        draw.ellipse((mx - r, my - r, mx + r, my + r), fill=gray(FLAG_BLUE))
        lx, r = pad + 0.07 * w, 0.3 * band
        draw.ellipse((lx - r, my - r, lx + r, my + r), outline=style.label_tone, width=max(1, round(0.05 * band)))
        # the "BR" country code below the band, left of the text
        _place(plate, ("BR",), style.small_font, _small_cap(0.1, h), 0, 0.1, 1.0,
               (round(0.015 * w), round(0.62 * h), round(0.1 * w), round(0.8 * h)), style.ink, label=True)
        top_edge = band

    radius = round(style.radius * h)
    if style.border >= 0:
        inset = round(style.border_inset * h)
        bw = max(1, round(style.border_width * h))
        draw.rounded_rectangle((pad + inset, pad + inset, pad + w - 1 - inset, pad + h - 1 - inset),
                               radius=max(0, radius - inset), outline=style.border, width=bw)
    if style.holes >= 0:
        r = max(1.0, 0.04 * h)
        for fx in (0.2, 0.8):
            x, y = pad + fx * w, pad + 0.13 * h
            draw.ellipse((x - r, y - r * 0.8, x + r, y + r * 0.8), fill=style.holes)
    if style.sticker >= 0:
        sw, sh = 0.14 * w, 0.16 * h
        x0 = pad + (w - 0.05 * w - sw if style.sticker_right else 0.05 * w)
        draw.rectangle((x0, pad + 0.05 * h, x0 + sw, pad + 0.05 * h + sh), fill=style.sticker)

    layout = _layout(style.format, style.variant)
    if style.top:
        bx0, bx1, by0, by1 = layout.top.box
        _place(plate, style.top, style.small_font, _small_cap(style.top_cap, h), 0, 0.1, style.condense,
               (round(bx0 * w), round(by0 * h), round(bx1 * w), round(by1 * h)), style.top_tone)
    if style.bottom:
        bx0, bx1, by0, by1 = layout.bottom.box
        _place(plate, style.bottom, style.small_font, _small_cap(style.bottom_cap, h), 0, 0.1, 1.0,
               (round(bx0 * w), round(by0 * h), round(bx1 * w), round(by1 * h)), style.top_tone)
    bx0, bx1, by0, by1 = layout.box
    margin = max(1, round(0.05 * h))
    x0, x1 = max(round(bx0 * w), left + margin), round(bx1 * w)
    y0, y1 = max(round(by0 * h), top_edge), round(by1 * h)
    shift = round(style.shift * h)
    cap = max(6, round(style.cap * h))
    lines: list[list[str]] = [[]]
    for token in style.tokens:
        if token == "/":
            lines.append([])
        else:
            lines[-1].append(token)
    bands = [(round(ry0 * h), round(ry1 * h)) for ry0, ry1 in layout.rows] or [(y0, y1)]
    for line, (ly0, ly1) in zip(lines, bands):
        _place(plate, line, style.font, cap, style.stroke, style.gap, style.condense,
               (x0, ly0 + shift, x1, ly1 + shift), style.ink)
    image = Image.merge("La", (plate, plates._alpha(w, h, radius)))  # see plates.render_plate
    return plates.RenderedPlate(image, w, h)


@lru_cache(maxsize=16)
def _layout(name: str, variant: str) -> Layout:
    return next(lay for lay in LAYOUTS[name] if lay.variant == variant)


def render(style, height: int) -> plates.RenderedPlate:
    """Draw a plate of any format (a PlateStyle or a FormatStyle) `height` pixels high."""
    if isinstance(style, plates.PlateStyle):
        return plates.render_plate(style, height)
    return render_style(style, height)
