"""Offline scene backgrounds: photographs, procedural textures, gradients, clutter, distractor text.

Everything comes from the code or from installed packages: the natural photographs are the PNG/JPEG
files scikit-image ships in `skimage/data` (read once per process as gray images, without importing
skimage), the textures are drawn once per process from a fixed seed. Both caches are pure functions
of constants, so they never change what a scene looks like; each scene's choices come from its rng.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from platereader.synth import fonts

# Photographs shipped with scikit-image (missing ones are skipped).
PHOTO_FILES = (
    "astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "clock_motion.png",
    "coffee.png", "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png",
    "moon.png", "motorcycle_left.png", "page.png", "retina.jpg", "rocket.jpg", "text.png",
    "color.png",
)
# A scene is an integer crop of a photo or texture scaled so that its short side is one of these
# multiples of the scene side (scaled once per process): no resampling per scene.
PYRAMID_SCALES = (1.0, 1.25, 1.6, 2.0)
TEXTURE_SIDE = 400
NUM_TEXTURES = 24
TEXTURE_SEED = 20240607
TEXT_CAPS = (7, 10, 14, 20, 28, 40)  # cap heights of distractor text (quantised for the glyph cache)

KINDS = ("photo", "texture", "gradient", "flat", "clutter")
KIND_WEIGHTS = (0.45, 0.25, 0.12, 0.04, 0.14)
_KIND_CUM = np.cumsum(KIND_WEIGHTS) / sum(KIND_WEIGHTS)


def skimage_data_dir() -> str | None:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], "data")


def _pyramid(img: Image.Image, size: int) -> tuple[Image.Image, ...]:
    """The image at a few scales whose short side is 1x..2x the scene side (for cheap integer crops)."""
    out = []
    short = min(img.size)
    for share in PYRAMID_SCALES:
        s = size * share / short
        if s > 1.0 and out:
            break
        out.append(img.resize((max(size, round(img.width * s)), max(size, round(img.height * s))), Image.BOX)
                   if abs(s - 1) > 1e-3 else img)
    return tuple(out)


@lru_cache(maxsize=1)
def _photo_files() -> tuple[Image.Image, ...]:
    folder = skimage_data_dir()
    out = []
    for name in PHOTO_FILES:
        path = os.path.join(folder, name) if folder else ""
        if not path or not os.path.exists(path):
            continue
        with Image.open(path) as img:
            out.append(img.convert("L"))
    return tuple(out)


@lru_cache(maxsize=8)
def photos(size: int) -> tuple[tuple[Image.Image, ...], ...]:
    """Gray photographs from scikit-image's data folder, in a fixed order, each as a scale pyramid."""
    return tuple(_pyramid(img, size) for img in _photo_files())


def _value_noise(rng: np.random.Generator, side: int) -> np.ndarray:
    acc = np.zeros((side, side), np.float32)
    amp, total = 1.0, 0.0
    for cells in (4, 8, 16, 32, 64):
        grid = Image.fromarray(rng.random((cells, cells), dtype=np.float32), mode="F")
        acc += amp * np.asarray(grid.resize((side, side), Image.BICUBIC))
        total += amp
        amp *= rng.uniform(0.4, 0.8)
    return acc / total


def _normalise(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    a = (a - a.min()) / max(1e-6, float(a.max() - a.min()))
    lo = rng.uniform(0, 120)
    hi = rng.uniform(lo + 60, 255)
    return (lo + a * (hi - lo)).astype(np.uint8)


def _texture(rng: np.random.Generator, kind: int, side: int) -> np.ndarray:
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    if kind == 0:  # fractal value noise
        return _normalise(_value_noise(rng, side), rng)
    if kind == 1:  # stripes with noise
        theta, period = rng.uniform(0, np.pi), rng.uniform(4, 40)
        a = np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period)
        if rng.random() < 0.5:
            a = np.sign(a)
        return _normalise(a + 0.5 * _value_noise(rng, side), rng)
    if kind == 2:  # checker / grid
        cell = rng.uniform(6, 48)
        a = ((xx // cell + yy // cell) % 2).astype(np.float32)
        return _normalise(a + 0.3 * _value_noise(rng, side), rng)
    if kind == 3:  # bricks
        img = Image.new("L", (side, side), int(rng.integers(120, 220)))
        draw = ImageDraw.Draw(img)
        bh, bw = int(rng.integers(8, 30)), int(rng.integers(20, 70))
        mortar = int(rng.integers(0, 100))
        for r, y in enumerate(range(0, side, bh)):
            draw.line((0, y, side, y), fill=mortar, width=2)
            off = (bw // 2) * (r % 2)
            for x in range(-off, side, bw):
                draw.line((x, y, x, y + bh), fill=mortar, width=2)
        a = np.asarray(img, np.float32) + 40 * _value_noise(rng, side)
        return _normalise(a, rng)
    if kind == 4:  # blobs
        img = Image.new("L", (side, side), int(rng.integers(0, 256)))
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(20, 80))):
            x, y, r = rng.uniform(0, side), rng.uniform(0, side), rng.uniform(3, 30)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=int(rng.integers(0, 256)))
        return np.asarray(img)
    # wood / rings
    cx, cy = rng.uniform(-side, 2 * side, 2)
    rad = np.hypot(xx - cx, yy - cy)
    a = np.sin(rad / rng.uniform(2, 12) + 6 * _value_noise(rng, side))
    return _normalise(a, rng)


@lru_cache(maxsize=1)
def _texture_images() -> tuple[Image.Image, ...]:
    rng = np.random.default_rng(TEXTURE_SEED)
    return tuple(Image.fromarray(_texture(rng, i % 6, TEXTURE_SIDE)) for i in range(NUM_TEXTURES))


@lru_cache(maxsize=8)
def textures(size: int) -> tuple[tuple[Image.Image, ...], ...]:
    """Procedural textures, drawn once per process from a fixed seed, as scale pyramids."""
    return tuple(_pyramid(img, size) for img in _texture_images())


@lru_cache(maxsize=8)
def gradients(size: int) -> tuple[Image.Image, ...]:
    """Linear ramps 0..255 at 16 angles, 1.5x the scene side (scenes take crops of them)."""
    side = round(size * 1.5)
    ramp = (np.arange(side, dtype=np.float64) + 0.5) / side
    out = []
    for k in range(16):
        t = 2 * np.pi * k / 16
        g = np.cos(t) * ramp[None, :] + np.sin(t) * ramp[:, None]
        g = (g - g.min()) / (g.max() - g.min())
        out.append(Image.fromarray((g * 255).astype(np.uint8)))
    return tuple(out)


NOISE_STDS = (3, 6, 10, 16, 24)


@lru_cache(maxsize=4)
def noise_bank(side: int) -> tuple[Image.Image, ...]:
    """Gaussian noise images (128 + N(0, std)) for each of NOISE_STDS, drawn once from a fixed seed;
    scenes add random windows of them."""
    base = np.random.default_rng(TEXTURE_SEED + 1).standard_normal((side, side))
    return tuple(Image.fromarray(np.clip(128 + base * std, 0, 255).round().astype(np.uint8)) for std in NOISE_STDS)


def _crop(rng: np.random.Generator, pyramid: tuple[Image.Image, ...], size: int) -> Image.Image:
    """A random size x size window of a random scale, randomly flipped or rotated by 90 degrees."""
    src = pyramid[int(rng.integers(len(pyramid)))]
    x0 = int(rng.integers(src.width - size + 1))
    y0 = int(rng.integers(src.height - size + 1))
    img = src.crop((x0, y0, x0 + size, y0 + size))
    flip = int(rng.integers(6))
    if flip < 4:  # 0: as is, 1..3: flips and a 90 degree turn
        img = img if flip == 0 else img.transpose((Image.FLIP_LEFT_RIGHT, Image.FLIP_TOP_BOTTOM,
                                                   Image.ROTATE_90)[flip - 1])
    return img


def _levels(rng: np.random.Generator, img: Image.Image, lo_span: float = 0.5) -> Image.Image:
    """Random contrast, brightness and (rarely) inversion through one lookup table."""
    contrast = rng.uniform(lo_span, 1.3)
    offset = rng.uniform(-60, 60)
    lut = np.clip((np.arange(256) - 128) * contrast + 128 + offset, 0, 255)
    if rng.random() < 0.1:
        lut = 255 - lut
    return img.point(lut.astype(np.uint8).tolist())


def _gradient(rng: np.random.Generator, size: int) -> Image.Image:
    ramps = gradients(size)
    src = ramps[int(rng.integers(len(ramps)))]
    x0, y0 = rng.integers(0, src.width - size + 1, 2)
    a, b = rng.uniform(0, 255, 2)
    lut = np.clip(a + (b - a) * np.arange(256) / 255 * 1.5, 0, 255)  # a ramp of random slope and range
    return src.crop((int(x0), int(y0), int(x0) + size, int(y0) + size)).point(lut.astype(np.uint8).tolist())


def draw_shapes(rng: np.random.Generator, img: Image.Image, count: int) -> None:
    draw = ImageDraw.Draw(img)
    size = img.width
    for _ in range(count):
        kind = int(rng.integers(4))
        x0, y0, x1, y1 = rng.uniform(-0.2, 1.2, 4) * size
        fill = int(rng.integers(0, 256))
        if kind == 0:
            draw.rectangle((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), fill=fill)
        elif kind == 1:
            draw.ellipse((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), fill=fill)
        elif kind == 2:
            draw.line((x0, y0, x1, y1), fill=fill, width=int(rng.integers(1, 8)))
        else:
            pts = rng.uniform(-0.1, 1.1, (int(rng.integers(3, 7)), 2)) * size
            draw.polygon([tuple(p) for p in pts], fill=fill)


def draw_text(rng: np.random.Generator, img: Image.Image, count: int) -> None:
    """Distractor text: random letters and digits in random fonts, sizes and tones."""
    size = img.width
    for _ in range(count):
        font = int(rng.integers(fonts.num_fonts()))
        cap = TEXT_CAPS[int(rng.integers(len(TEXT_CAPS)))]
        n = int(rng.integers(1, 9))
        chars = rng.integers(0, len(fonts.ALPHABET), n)
        x, y = rng.uniform(-0.1, 0.9) * size, rng.uniform(-0.05, 0.95) * size
        tone = int(rng.integers(0, 256))
        if rng.random() < 0.3:  # a sign: a flat box behind the text (no plate-like border)
            box_tone = int((tone + 128 + rng.integers(-40, 40)) % 256)
            w = n * cap * rng.uniform(0.6, 1.2) + cap
            ImageDraw.Draw(img).rectangle((x - cap / 2, y - cap / 2, x + w, y + cap * rng.uniform(1.5, 3)),
                                          fill=box_tone)
        gap = max(1, round(cap * rng.uniform(0.05, 0.4)))
        xi, yi = int(x), int(y)
        for c in chars:
            g = fonts.glyph(font, cap, fonts.ALPHABET[c])
            img.paste(tone, (xi, yi + g.top), g.image)
            xi += g.width + gap


def make_background(rng: np.random.Generator, size: int) -> Image.Image:
    """A gray `size` x `size` background (Pillow "L" image)."""
    kind = KINDS[min(int(np.searchsorted(_KIND_CUM, rng.random(), side="right")), len(KINDS) - 1)]
    if kind == "photo" and photos(size):
        pics = photos(size)
        img = _levels(rng, _crop(rng, pics[int(rng.integers(len(pics)))], size))
    elif kind in ("texture", "photo"):
        tex = textures(size)
        img = _levels(rng, _crop(rng, tex[int(rng.integers(len(tex)))], size))
    elif kind == "gradient":
        img = _gradient(rng, size)
    elif kind == "flat":
        img = Image.new("L", (size, size), int(rng.integers(0, 256)))
    else:
        img = _gradient(rng, size)
        draw_shapes(rng, img, int(rng.integers(5, 16)))
    u = rng.random(3)
    if u[0] < 0.25:
        draw_shapes(rng, img, int(rng.integers(1, 5)))
    if u[1] < 0.35:
        draw_text(rng, img, int(rng.integers(1, 5)))
    if u[2] < 0.3 or kind == "flat":
        bank = noise_bank(size + size // 2)
        noise = bank[int(rng.integers(len(bank)))]
        ox, oy = (int(v) for v in rng.integers(0, noise.width - size + 1, 2))
        img = ImageChops.add(img, noise.crop((ox, oy, ox + size, oy + size)), 1.0, -128)
    return img
