"""Scene augmentations with the ALPR seed's codes, and the JPEG re-encode.

| code | kind        | what it does here                                                            |
|------|-------------|------------------------------------------------------------------------------|
| mot  | photometric | motion blur: mean of 3-9 shifted copies along a random direction             |
| rot  | geometric   | extra in-plane rotation of the plate, 5-25 degrees either way                |
| r3d  | geometric   | 3D rotation of the plate (yaw up to 45, pitch up to 30 degrees) + projection |
| blr  | photometric | blur (one box pass), radius 0.5-1.8 px                                       |
| shd  | photometric | a shadow or highlight over a random region (edge 1-16 px soft)               |
| noi  | photometric | salt-and-pepper noise on 0.2-4 % of the pixels                               |
| cut  | geometric   | the scene is a crop around the plate: the plate is large (85-100 % wide)     |
| pad  | geometric   | the scene is padded: a flat frame, the plate shrunk to 60-85 % of its size   |
| tbc  | geometric   | top/bottom cut: rows cropped and stretched back (plate 10-35 % taller)       |
| brg  | photometric | brightness, contrast and gamma change                                        |
| rsz  | photometric | downsized to 40-80 % and back: lost resolution, same geometry                |

Geometric augmentations are not applied to pixels: scenes.py composes their matrices into the
plate's one homography, so the labels follow them exactly and the plate stays inside the scene.
Photometric ones never move anything (motion blur is symmetric; resizing down and back up maps
continuous coordinates onto themselves).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from platereader import validate

AUG_CODES = ("mot", "rot", "r3d", "blr", "shd", "noi", "cut", "pad", "tbc", "brg", "rsz")
GEOMETRIC = frozenset({"rot", "r3d", "cut", "pad", "tbc"})
PHOTOMETRIC = frozenset(AUG_CODES) - GEOMETRIC


def draw_codes(rng: np.random.Generator, gen) -> list[str]:
    """The augmentation codes of one scene: AUGMENTATIONS_PER_SCENE weighted draws (repeats allowed)."""
    lo, hi = (int(v) for v in gen.AUGMENTATIONS_PER_SCENE)
    count = int(rng.integers(lo, hi + 1))
    if count == 0:
        return []
    weights = validate.table(gen.AUGMENTATIONS)
    codes = [c for c in AUG_CODES if weights.get(c, 0) > 0]  # canonical order
    cum = np.cumsum([float(weights[c]) for c in codes])
    picks = np.searchsorted(cum, rng.random(count) * cum[-1], side="right")
    return [codes[min(int(i), len(codes) - 1)] for i in picks]


# --- geometric: 3x3 matrices acting on centred plate coordinates (plate height = 1) -----------------

def rotation(deg: float) -> np.ndarray:
    t = np.deg2rad(deg)
    c, s = np.cos(t), np.sin(t)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], np.float64)


def rot_matrix(rng: np.random.Generator) -> np.ndarray:
    angle = rng.uniform(5, 25) * (1 if rng.random() < 0.5 else -1)
    return rotation(angle)


def r3d_matrix(rng: np.random.Generator, plate_width: float) -> np.ndarray:
    """Rotate the plate plane in 3D about its centre and project it (pinhole, unit scale at centre)."""
    yaw, pitch, roll = np.deg2rad(rng.uniform(-45, 45)), np.deg2rad(rng.uniform(-30, 30)), np.deg2rad(rng.uniform(-5, 5))
    f = rng.uniform(1.2, 3.0) * plate_width
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    r = rz @ rx @ ry
    return np.array([[f * r[0, 0], f * r[0, 1], 0], [f * r[1, 0], f * r[1, 1], 0], [r[2, 0], r[2, 1], f]])


def tbc_matrix(rng: np.random.Generator) -> np.ndarray:
    return np.diag([1.0, rng.uniform(1.1, 1.35), 1.0])


def pad_factor(rng: np.random.Generator) -> float:
    return rng.uniform(0.6, 0.85)


def cut_share(rng: np.random.Generator) -> float:
    return rng.uniform(0.85, 1.0)


def draw_pad_frame(rng: np.random.Generator, img: Image.Image, free: tuple[float, float, float, float]) -> None:
    """A flat frame (the padding) no wider than the free space left, top, right, bottom of the plate."""
    size = img.width
    tone = int(rng.integers(0, 256))
    widths = rng.uniform(0.3, 1.0, 4) * np.minimum(np.asarray(free, np.float64), size * 0.25)
    left, top, right, bottom = (int(w) for w in widths)
    draw = ImageDraw.Draw(img)
    if left > 0:
        draw.rectangle((0, 0, left - 1, size), fill=tone)
    if top > 0:
        draw.rectangle((0, 0, size, top - 1), fill=tone)
    if right > 0:
        draw.rectangle((size - right, 0, size, size), fill=tone)
    if bottom > 0:
        draw.rectangle((0, size - bottom, size, size), fill=tone)


# --- photometric: Image -> Image, the geometry is untouched -----------------------------------------

def motion_blur(rng: np.random.Generator, img: Image.Image) -> Image.Image:
    k = int(rng.integers(3, 10))
    theta = rng.uniform(0, np.pi)
    t = np.arange(k) - (k - 1) / 2
    dx = np.round(t * np.cos(theta)).astype(int)
    dy = np.round(t * np.sin(theta)).astype(int)
    m = int(max(np.abs(dx).max(), np.abs(dy).max()))
    w, h = img.size
    a = np.pad(np.asarray(img), m, mode="edge").astype(np.uint16)
    acc = np.zeros((h, w), np.uint16)
    for x, y in zip(dx, dy):
        acc += a[m + y:m + y + h, m + x:m + x + w]
    return Image.fromarray(((acc + k // 2) // k).astype(np.uint8))


def gaussian_blur(rng: np.random.Generator, img: Image.Image) -> Image.Image:
    """Blur of radius 0.5-1.8 px: one box pass (Pillow's Gaussian is three, and 3x the cost)."""
    return img.filter(ImageFilter.BoxBlur(rng.uniform(0.5, 1.8)))


def shade(rng: np.random.Generator, img: Image.Image) -> Image.Image:
    """Darken (or brighten) a random region; the mask is drawn at low resolution and scaled up
    bilinearly, so its edge is soft (1-16 px) at almost no cost."""
    size = img.width
    small = max(4, int(size / (2 ** rng.uniform(0, 4))))
    mask = Image.new("L", (small, small), 0)
    if rng.random() < 0.5:  # a half-plane cut by a random line
        cx, cy = rng.uniform(0, small, 2)
        t = rng.uniform(0, 2 * np.pi)
        d = np.array([np.cos(t), np.sin(t)]) * small * 2
        n = np.array([-d[1], d[0]])
        pts = [(cx - d[0], cy - d[1]), (cx + d[0], cy + d[1]), (cx + d[0] + n[0], cy + d[1] + n[1]),
               (cx - d[0] + n[0], cy - d[1] + n[1])]
    else:  # a random quadrilateral
        pts = [tuple(p) for p in rng.uniform(-0.2, 1.2, (4, 2)) * small]
    ImageDraw.Draw(mask).polygon(pts, fill=int(rng.integers(120, 256)))
    if small != size:
        mask = mask.resize(img.size, Image.BILINEAR)
    factor = rng.uniform(0.3, 0.75) if rng.random() < 0.75 else rng.uniform(1.2, 1.7)
    shaded = img.point(np.clip(np.arange(256) * factor, 0, 255).astype(np.uint8).tolist())
    return Image.composite(shaded, img, mask)


def salt_pepper(rng: np.random.Generator, img: Image.Image) -> Image.Image:
    a = np.array(img)
    n = int(a.size * rng.uniform(0.002, 0.04))
    idx = rng.integers(0, a.size, n)
    a.reshape(-1)[idx] = rng.integers(0, 2, n).astype(np.uint8) * 255
    return Image.fromarray(a)


def brightness(rng: np.random.Generator, img: Image.Image) -> Image.Image:
    gain, offset, gamma = rng.uniform(0.5, 1.4), rng.uniform(-70, 70), np.exp(rng.uniform(-0.5, 0.5))
    x = np.arange(256) / 255.0
    lut = np.clip(255 * x ** gamma * gain + offset, 0, 255)
    return img.point(lut.astype(np.uint8).tolist())


_FILTERS = (Image.NEAREST, Image.BILINEAR, Image.BOX)


def downsize(rng: np.random.Generator, img: Image.Image) -> Image.Image:
    w, h = img.size
    s = rng.uniform(0.4, 0.8)
    small = img.resize((max(1, round(w * s)), max(1, round(h * s))), _FILTERS[int(rng.integers(3))])
    return small.resize((w, h), _FILTERS[int(rng.integers(2))])


PHOTOMETRIC_FUNCS = {
    "mot": motion_blur, "blr": gaussian_blur, "shd": shade, "noi": salt_pepper,
    "brg": brightness, "rsz": downsize,
}


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as out:
        return out.convert("L")
