"""Synthetic scenes: a plate (Swiss by default; any format of platereader.formats by
GeneratorParams.FORMATS) warped onto an offline background, with exact corner labels.

`make_scene(rng, gen, size)` is fully determined by the rng's state and the parameters: the caller
builds one rng per scene (`np.random.default_rng([base_seed, stage_seed, index])`), so the output is
byte-identical with or without multiprocessing. Per-process caches (fonts, glyphs, photos, textures)
only make it faster.

Geometry. Plate coordinates: x in [0, aspect], y in [0, 1] (plate height = 1), the plate's outer edge
(the edge of the plate body, border included). One homography maps them into the scene (continuous
pixel coordinates, pixel (r, c) covers [c, c+1) x [r, r+1)); it is the product of the random shape
transform (perspective, stretch, shear, rotation), the geometric augmentations (rot, r3d, tbc) and a
scale/translation that gives the plate its width share and keeps all four corners inside the scene.
The plate is rendered once at a pixel height close to its final size and warped with a single
`Image.transform(PERSPECTIVE)`; its alpha pastes it onto the background.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from platereader import formats, validate
from platereader.formats import SWISS_CANTONS, SWISS_MAX_DIGITS
from platereader.geometry.homography import square_to_quad_coefficients
from platereader.synth import augment, backgrounds, plate_formats, plates

EDGE_MARGIN = 1.0  # corners stay this many pixels inside the scene


@dataclass
class Scene:
    image: np.ndarray  # (size, size) uint8 grayscale
    corners: np.ndarray  # (4, 2) float32 TL, TR, BR, BL of the plate's outer edge; zeros if no plate
    box: np.ndarray  # (4,) float32 x0, y0, x1, y1: bounds of corners; zeros if no plate
    # The OCR target: the plate's characters without separators, "ZH123456", "ABC1D23" ("" if no plate).
    text: str
    present: bool
    back_style: bool  # a Swiss back plate
    # Augmentation codes drawn for the scene (src/platereader/synth/augment.py), "jpeg" last if re-encoded;
    # compose_scene(photometric=False) draws the same but applies only the geometric ones.
    augmentations: tuple[str, ...] = ()
    format: str = ""  # the plate's format (platereader.formats.FORMATS), "" if no plate
    variant: str = ""  # its look: "front"/"back" (swiss), "old"/"mercosur" (brazil), "standard"
    rows: tuple[str, ...] = ()  # a two-row plate's text per row, top first (() for one row)

    @property
    def canton(self) -> str:
        """A Swiss plate's canton ("" for other formats and no plate)."""
        return self.text[:2] if self.format == "swiss" else ""

    @property
    def number(self) -> str:
        """A Swiss plate's digits ("" for other formats and no plate)."""
        return self.text[2:] if self.format == "swiss" else ""


# --- homographies -----------------------------------------------------------------------------------

def apply_h(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = pts @ h[:2, :2].T + h[:2, 2]
    w = pts @ h[2, :2] + h[2, 2]
    return p / w[:, None]


def square_to_quad(q) -> np.ndarray:
    """The homography mapping the unit square (0,0), (1,0), (1,1), (0,1) onto quad q (closed form)."""
    a, b, c, d, e, f, g, h = square_to_quad_coefficients(*(float(v) for point in q for v in point))
    return np.array([[a, b, c], [d, e, f], [g, h, 1.0]])


def quad_homography(src, dst) -> np.ndarray:
    """The homography mapping 4 points src onto 4 points dst (corner order preserved)."""
    h = square_to_quad(dst) @ np.linalg.inv(square_to_quad(src))
    return h / h[2, 2]


def _translate(tx: float, ty: float) -> np.ndarray:
    return np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]], np.float64)


def _scale(sx: float, sy: float) -> np.ndarray:
    return np.diag([sx, sy, 1.0])


def perturb_quad(corners: np.ndarray, rng: np.random.Generator, shift: tuple[float, float], scale: float,
                 noise: tuple[float, float]) -> np.ndarray:
    """A plate quad (4, 2) moved, resized and bent as a localizer's prediction would be.

    `shift` moves the whole quad and `noise` each corner on its own, by up to those shares of the
    plate's width (along its top edge) and height (along its left edge); `scale` resizes it by up to
    that share. Training data for what sits downstream of a localizer (its second pass, the OCR).
    """
    across, down = corners[1] - corners[0], corners[3] - corners[0]
    centre = corners.mean(0) + rng.uniform(-shift[0], shift[0]) * across + rng.uniform(-shift[1], shift[1]) * down
    quad = centre + (corners - corners.mean(0)) * (1 + rng.uniform(-scale, scale))
    u = rng.uniform(-1, 1, (4, 2))
    return (quad + u[:, :1] * noise[0] * across + u[:, 1:] * noise[1] * down).astype(np.float32)


def plate_rect(aspect: float) -> np.ndarray:
    return np.array([[0, 0], [aspect, 0], [aspect, 1], [0, 1]], np.float64)


def plate_homography(rng: np.random.Generator, gen, size: int, aspect: float, codes: list[str]) -> np.ndarray:
    """Plate coordinates -> scene pixels, with every geometric transform and augmentation in it."""
    u = rng.random(12) * 2 - 1  # 8 corner offsets, stretch, shear, rotation, width share
    # Perspective: each corner of the centred plate moves by up to PERSPECTIVE x its width / height.
    p, hw = gen.PERSPECTIVE, aspect / 2
    quad = [(-hw + u[0] * p * aspect, -0.5 + u[1] * p), (hw + u[2] * p * aspect, -0.5 + u[3] * p),
            (hw + u[4] * p * aspect, 0.5 + u[5] * p), (-hw + u[6] * p * aspect, 0.5 + u[7] * p)]
    h = square_to_quad(quad) @ _scale(1 / aspect, 1)
    stretch = 1 + u[8] * gen.STRETCH
    shear = math.tan(math.radians(u[9] * gen.SHEAR_DEG))
    h = augment.rotation(u[10] * gen.ROTATION_DEG) @ np.array(
        [[stretch, shear, 0], [0, 1, 0], [0, 0, 1]]) @ h
    lo_share, hi_share = gen.PLATE_WIDTH_RANGE
    share = lo_share + (u[11] + 1) / 2 * (hi_share - lo_share)
    for code in codes:
        if code == "rot":
            h = augment.rot_matrix(rng) @ h
        elif code == "r3d":
            h = augment.r3d_matrix(rng, aspect) @ h
        elif code == "tbc":
            h = augment.tbc_matrix(rng) @ h
        elif code == "pad":
            share *= augment.pad_factor(rng)
        elif code == "cut":
            share = max(share, augment.cut_share(rng))
    # Scale to the width share, shrink if it does not fit, then a random position inside the scene.
    q = apply_h(h, plate_rect(aspect))
    lo, hi = q.min(0), q.max(0)
    ext = np.maximum(hi - lo, 1e-6)
    room = size - 2 * EDGE_MARGIN
    k = min(share * size / ext[0], room / ext[0], room / ext[1])
    tx, ty = EDGE_MARGIN - k * lo + rng.random(2) * (room - k * ext)
    return np.array([[k, 0, tx], [0, k, ty], [0, 0, 1.0]]) @ h


def _render_height(corners: np.ndarray, aspect: float) -> int:
    """Smallest render height at least 80 % as dense as the plate's pixels in the scene (the warp
    then enlarges by at most 1.25 or shrinks by at most ~1.4: no visible blur, no aliasing)."""
    d = np.linalg.norm(corners - np.roll(corners, -1, 0), axis=1)  # top, right, bottom, left edges
    need = 0.8 * max(d[1], d[3], d[0] / aspect, d[2] / aspect)
    for height in plates.RENDER_HEIGHTS:
        if height >= need:
            return height
    return plates.RENDER_HEIGHTS[-1]


def paste_plate(img: Image.Image, plate: plates.RenderedPlate, h: np.ndarray, aspect: float) -> None:
    """Warp the rendered plate by h (plate coordinates -> scene) and paste it onto img, in place."""
    size = img.width
    # Rendered pixels -> plate coordinates: the body spans [PAD, PAD + width] x [PAD, PAD + height].
    pad = plates.PAD
    m = np.array([[aspect / plate.width, 0, -pad * aspect / plate.width],
                  [0, 1 / plate.height, -pad / plate.height], [0, 0, 1]])
    g = h @ m
    w_img, h_img = plate.image.size
    q = apply_h(g, np.array([[0, 0], [w_img, 0], [w_img, h_img], [0, h_img]], np.float64))
    x0, y0 = np.clip(np.floor(q.min(0)).astype(int), 0, size)
    x1, y1 = np.clip(np.ceil(q.max(0)).astype(int), 0, size)
    if x1 <= x0 or y1 <= y0:
        return
    inv = np.linalg.inv(_translate(-x0, -y0) @ g)
    inv /= inv[2, 2]
    warped = plate.image.transform((int(x1 - x0), int(y1 - y0)), Image.PERSPECTIVE, tuple(inv.ravel()[:8]),
                                   Image.BILINEAR)
    gray, alpha = warped.split()
    img.paste(gray, (int(x0), int(y0)), alpha)


# --- scenes ---------------------------------------------------------------------------------------------

def compose_scene(rng: np.random.Generator, gen, size: int = 256,
                  background: Image.Image | None = None, photometric: bool = True) -> Scene:
    """make_scene with test hooks: a fixed background; photometric=False leaves out every pixel
    change after the plate is pasted and the pad frame (photometric augmentations, JPEG), so that
    the image is background + plate only. The rng draws (and so the labels) are the same."""
    present = bool(rng.random() >= gen.NO_PLATE_RATE)
    codes = augment.draw_codes(rng, gen)
    bg = backgrounds.make_background(rng, size)
    img = bg if background is None else background.copy()
    corners = np.zeros((4, 2), np.float32)
    text = fmt = variant = ""
    back, rows = False, ()
    if present:
        style = plate_formats.draw(rng, gen)
        text, fmt, variant, back, rows = style.text, style.format, style.variant, style.back_style, style.rows
        h = plate_homography(rng, gen, size, style.aspect, codes)
        corners = apply_h(h, plate_rect(style.aspect))
        if "pad" in codes:
            lo, hi = corners.min(0), corners.max(0)
            augment.draw_pad_frame(rng, img if photometric else img.copy(),
                                   (lo[0] - 1, lo[1] - 1, size - hi[0] - 1, size - hi[1] - 1))
        paste_plate(img, plate_formats.render(style, _render_height(corners, style.aspect)), h, style.aspect)
        corners = corners.astype(np.float32)
    elif "pad" in codes:
        augment.draw_pad_frame(rng, img if photometric else img.copy(), (size, size, size, size))
    for code in codes:
        if code in augment.PHOTOMETRIC and photometric:
            img = augment.PHOTOMETRIC_FUNCS[code](rng, img)
    if rng.random() < gen.JPEG_RATE:
        codes = codes + ["jpeg"]
        if photometric:
            lo, hi = (int(v) for v in gen.JPEG_QUALITY)
            img = augment.jpeg(img, int(rng.integers(lo, hi + 1)))
    box = np.concatenate([corners.min(0), corners.max(0)]).astype(np.float32) if present else np.zeros(4, np.float32)
    return Scene(np.array(img, dtype=np.uint8), corners, box, text, present, back, tuple(codes), fmt, variant, rows)


def with_augmentations(gen, weights: dict):
    """`gen` with some augmentation weights replaced: a training set may draw a degradation more
    often than the scenes the stack is scored on, which keep `gen` itself."""
    weights = validate.table(weights)
    return type(gen.__name__, (gen,), {"AUGMENTATIONS": {**validate.table(gen.AUGMENTATIONS), **weights}}) if weights else gen


def with_formats(gen, weights: dict):
    """`gen` with some plate format weights replaced (merged like `with_augmentations`: a weight of
    0 leaves a format out): the OCR may train on more formats than the localizer and the stack set."""
    weights = validate.table(weights)
    return type(gen.__name__, (gen,), {"FORMATS": {**validate.table(gen.FORMATS), **weights}}) if weights else gen


def validate_stage_formats(gen, cls) -> None:
    """A stage's FORMATS (`cls.FORMATS`, replacements for some of `gen`'s, see `with_formats`):
    valid weights that leave some format above 0."""
    validate_formats(cls, allow_all_zero=True)
    if not any(weight > 0 for weight in validate.table(with_formats(gen, cls.FORMATS).FORMATS).values()):
        validate.fail(cls, "FORMATS", f"= {validate.table(cls.FORMATS)!r} gives every format of GeneratorParams.FORMATS "
                                      "weight 0: leave one above 0")


def text_length(gen) -> int:
    """The longest text `gen`'s plates may have: the width of its scenes' text arrays."""
    return formats.max_length(plate_formats.format_names(gen))


def make_scene(rng: np.random.Generator, gen, size: int = 256) -> Scene:
    """One scene: (size, size) uint8 gray image, plate corners, box and text (see Scene)."""
    return compose_scene(rng, gen, size)


# --- parameter validation ----------------------------------------------------------------------------

def validate_augmentations(cls, attr: str = "AUGMENTATIONS", allow_all_zero: bool = False) -> None:
    """An AUGMENTATIONS table (validate.table), augmentation code -> weight >= 0: the generator's,
    or a training stage's replacements for some of them (`with_augmentations`)."""
    weights = validate.table(validate.get(cls, attr))
    if not isinstance(weights, dict):
        validate.fail(cls, attr, f"= {weights!r}: must be a table code -> weight (a class in params.py); codes: {', '.join(augment.AUG_CODES)}")
    for code in weights:
        if code not in augment.AUG_CODES:
            validate.fail(cls, attr, f"has unknown code {code!r}: allowed are {', '.join(augment.AUG_CODES)}")
    validate.weights(cls, attr, list(weights.values()), allow_all_zero)


def validate_formats(cls, attr: str = "FORMATS", allow_all_zero: bool = False) -> None:
    """A FORMATS table (validate.table), plate format name (platereader.formats) -> weight >= 0: the
    generator's, or a training stage's replacements for some of them (`with_formats`)."""
    weights = validate.table(validate.get(cls, attr))
    known = ", ".join(formats.FORMATS)
    if not isinstance(weights, dict):
        validate.fail(cls, attr, f"= {weights!r}: must be a table format -> weight (a class in params.py); formats: {known}")
    for name in weights:
        if name not in formats.FORMATS:
            validate.fail(cls, attr, f"has unknown format {name!r}: allowed are {known}")
    validate.weights(cls, attr, list(weights.values()), allow_all_zero)


def validate_generator_params(gen) -> None:
    """Raise UserError (one line naming the parameter and what is allowed) on any bad value."""
    validate.subset(gen, "CANTONS", SWISS_CANTONS, empty_means="every canton")
    digits = validate.get(gen, "DIGIT_WEIGHTS")
    if not isinstance(digits, (list, tuple)) or len(digits) != SWISS_MAX_DIGITS:
        validate.fail(gen, "DIGIT_WEIGHTS", f"= {digits!r}: must list {SWISS_MAX_DIGITS} weights "
                                            f"(numbers of 1..{SWISS_MAX_DIGITS} digits)")
    validate.weights(gen, "DIGIT_WEIGHTS", list(digits))
    for name in ("BACK_STYLE_RATE", "NO_PLATE_RATE", "JPEG_RATE", "TWO_ROW_RATE"):
        validate.number(gen, name, 0.0, 1.0)
    lo, _ = validate.pair(gen, "PLATE_WIDTH_RANGE", 0.0, 1.0, ordered=True)
    if lo <= 0:
        validate.fail(gen, "PLATE_WIDTH_RANGE", f"= {gen.PLATE_WIDTH_RANGE!r}: lo must be > 0 (share of the scene side)")
    validate.number(gen, "ROTATION_DEG", 0.0, 180.0)
    validate.number(gen, "SHEAR_DEG", 0.0, 60.0)
    validate.number(gen, "STRETCH", 0.0, 0.9)
    validate.number(gen, "PERSPECTIVE", 0.0, 0.45)
    _, most = validate.pair(gen, "AUGMENTATIONS_PER_SCENE", 0, 20, integer=True, ordered=True)
    validate_augmentations(gen, allow_all_zero=most == 0)
    validate.pair(gen, "JPEG_QUALITY", 1, 100, integer=True, ordered=True)
    validate_formats(gen)


def validate_scene_params(params) -> None:
    """The checks every prepare stage shares: global switches, scene size, generator params."""
    validate.integer(params, "SEED")
    validate.boolean(params, "MULTIPROCESSING")
    validate.integer(params, "SCENE_SIZE", 32, 4096)
    validate_generator_params(params.GeneratorParams)
