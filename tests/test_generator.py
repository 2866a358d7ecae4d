"""The plate generator and scene compositor: labels match pixels, every plate renders, results are
reproducible, no-plate scenes are flagged, plates stay inside the scene, bad params are refused."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

import params
from platereader.synth import augment, backgrounds, scenes
from platereader.synth.scenes import Scene, compose_scene, make_scene, validate_generator_params
from platereader.synth import fonts, plates, stroke_font
from platereader.errors import UserError
from platereader.formats import SWISS, SWISS_CANTONS

G = params.GeneratorParams


class NoAug(G):
    NO_PLATE_RATE = 0.0
    AUGMENTATIONS_PER_SCENE = [0, 0]
    JPEG_RATE = 0.0


class Geometric(NoAug):
    AUGMENTATIONS = {"rot": 1, "r3d": 1, "pad": 1, "cut": 1, "tbc": 1}
    AUGMENTATIONS_PER_SCENE = [1, 3]


class Heavy(G):
    NO_PLATE_RATE = 0.0
    AUGMENTATIONS_PER_SCENE = [3, 6]
    JPEG_RATE = 0.5


def rng(*seed: int) -> np.random.Generator:
    return np.random.default_rng([7, 0, *seed])


def coverage(seed: int, gen, size: int = 256, draw=rng) -> tuple[np.ndarray, Scene]:
    """Plate alpha per pixel: the scene over a black and over a white background differ by 1 - alpha.
    `draw` makes the scene's rng from `seed`."""
    black = compose_scene(draw(seed), gen, size, background=Image.new("L", (size, size), 0), photometric=False)
    white = compose_scene(draw(seed), gen, size, background=Image.new("L", (size, size), 255), photometric=False)
    assert np.array_equal(black.corners, white.corners)
    alpha = 1.0 - (white.image.astype(np.float64) - black.image) / 255.0
    return alpha, black


def quad_distance(corners: np.ndarray, size: int) -> np.ndarray:
    """Signed distance of every pixel centre to the quad (negative inside; convex quads only)."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    out = np.full((size, size), -np.inf)
    c = corners.astype(np.float64)
    e0, e1 = c[1] - c[0], c[2] - c[1]
    orient = np.sign(e0[0] * e1[1] - e0[1] * e1[0])
    for k in range(4):
        a, b = c[k], c[(k + 1) % 4]
        e = b - a
        # outward distance of the point from edge a->b
        d = -orient * ((e[0] * (yy - a[1]) - e[1] * (xx - a[0])) / np.hypot(*e))
        out = np.maximum(out, d)
    return out


def polygon_area(c: np.ndarray) -> float:
    x, y = c[:, 0].astype(np.float64), c[:, 1].astype(np.float64)
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


@pytest.mark.parametrize("gen", [NoAug, Geometric], ids=["plain", "geometric-augmentations"])
def test_labels_match_pixels(gen):
    for seed in range(12):
        alpha, scene = coverage(seed, gen)
        assert scene.present
        dist = quad_distance(scene.corners, 256)
        # Every pixel the plate touches lies inside the quad (pixel centres within ~1 px of it)...
        assert dist[alpha > 0.02].max() < 1.0, seed
        # ...pixels well inside are fully covered (away from the slightly rounded plate corners)...
        yy, xx = np.mgrid[0:256, 0:256] + 0.5
        height = max(np.linalg.norm(scene.corners[3] - scene.corners[0]),
                     np.linalg.norm(scene.corners[2] - scene.corners[1]))
        near = np.min([np.hypot(xx - x, yy - y) for x, y in scene.corners], axis=0) < 0.25 * height
        assert alpha[(dist < -1.5) & ~near].min() > 0.98, seed
        # ...and the quad is tight: its area is the plate's area.
        area = polygon_area(scene.corners)
        assert abs(alpha.sum() - area) < 0.02 * area + 2, (seed, alpha.sum(), area)


def test_plate_pixels_bright_and_inside_quad_on_black():
    for seed in range(6):
        scene = compose_scene(rng(seed), NoAug, 256, background=Image.new("L", (256, 256), 0), photometric=False)
        paper = scene.image > 150
        dist = quad_distance(scene.corners, 256)
        assert paper.sum() > 0.3 * polygon_area(scene.corners)
        assert dist[paper].max() < 1.0


def test_scene_contract():
    for seed in range(20):
        s = make_scene(rng(seed), params.GeneratorParams)
        assert s.image.shape == (256, 256) and s.image.dtype == np.uint8
        assert s.corners.shape == (4, 2) and s.corners.dtype == np.float32
        assert s.box.shape == (4,) and s.box.dtype == np.float32
        if s.present:
            np.testing.assert_array_equal(s.box, np.r_[s.corners.min(0), s.corners.max(0)])
            assert SWISS.parse(s.text) == {"canton": s.canton, "number": s.number}
            assert s.format == "swiss" and s.variant == ("back" if s.back_style else "front")
            assert s.number[0] != "0"
    small = make_scene(rng(1), G, 96)
    assert small.image.shape == (96, 96)


def test_corner_order_follows_plate_orientation():
    for seed in range(20):
        c = make_scene(rng(seed), NoAug).corners
        tl, tr, br, bl = c
        assert tl[0] < tr[0] and bl[0] < br[0]  # left is left
        assert tl[1] < bl[1] and tr[1] < br[1]  # top is top


@pytest.mark.parametrize("canton", SWISS_CANTONS)
def test_every_canton_and_length_renders(canton):
    for ndigits in range(1, 7):
        weights = [0.0] * 6
        weights[ndigits - 1] = 1.0

        class Gen(NoAug):
            CANTONS = [canton]
            DIGIT_WEIGHTS = weights
            BACK_STYLE_RATE = 0.5

        r = rng(ndigits, SWISS_CANTONS.index(canton))
        style = plates.draw_style(r, Gen)
        assert style.canton == canton and len(style.number) == ndigits and style.number.isdigit()
        assert style.text == canton + style.number
        for height in (plates.RENDER_HEIGHTS[0], plates.RENDER_HEIGHTS[-1]):
            plate = plates.render_plate(style, height)
            gray, alpha = (np.asarray(b) for b in plate.image.split())
            assert plate.height == height and abs(plate.width / height - style.aspect) < 0.05
            body = gray[plates.PAD + height // 4:plates.PAD + 3 * height // 4,
                        plates.PAD + height // 2:plates.PAD + plate.width - height // 2]
            ink = body < (style.paper + style.ink) / 2
            assert ink.any(), (canton, ndigits)  # text is drawn
            assert alpha[plates.PAD:-plates.PAD, plates.PAD:-plates.PAD].mean() > 240  # plate body opaque
        scene = make_scene(rng(ndigits, 100 + SWISS_CANTONS.index(canton)), Gen)
        assert scene.present and scene.canton == canton and len(scene.number) == ndigits


def test_text_changes_the_pixels():
    style = plates.draw_style(rng(3), NoAug)
    other = plates.PlateStyle(**{**style.__dict__, "number": "1" * len(style.number)})
    if other.number == style.number:
        other = plates.PlateStyle(**{**style.__dict__, "number": "2" * len(style.number)})
    a = np.asarray(plates.render_plate(style, 40).image)
    b = np.asarray(plates.render_plate(other, 40).image)
    assert a.shape == b.shape and not np.array_equal(a, b)


def test_back_and_front_styles_have_true_proportions():
    front = plates.draw_style(rng(1), type("F", (NoAug,), {"BACK_STYLE_RATE": 0.0}))
    back = plates.draw_style(rng(1), type("B", (NoAug,), {"BACK_STYLE_RATE": 1.0}))
    assert not front.back_style and back.back_style
    assert front.aspect == pytest.approx(300 / 80) and back.aspect == pytest.approx(500 / 110)
    for seed in range(10):
        s = make_scene(rng(seed), type("B2", (NoAug,), {"BACK_STYLE_RATE": 1.0, "ROTATION_DEG": 0.0,
                                                       "SHEAR_DEG": 0.0, "STRETCH": 0.0, "PERSPECTIVE": 0.0}))
        w = np.linalg.norm(s.corners[1] - s.corners[0])
        h = np.linalg.norm(s.corners[3] - s.corners[0])
        assert s.back_style and w / h == pytest.approx(500 / 110, rel=1e-4)


def test_reproducible_and_seed_dependent():
    first = [make_scene(rng(i), Heavy) for i in range(15)]
    # Caches must not change results: clear them, and generate in another order.
    fonts._GLYPHS.clear()
    fonts._BASE.clear()
    backgrounds.photos.cache_clear()
    backgrounds.textures.cache_clear()
    again = {i: make_scene(rng(i), Heavy) for i in reversed(range(15))}
    for i, a in enumerate(first):
        b = again[i]
        assert a.image.tobytes() == b.image.tobytes()
        assert a.corners.tobytes() == b.corners.tobytes() and a.box.tobytes() == b.box.tobytes()
        assert (a.canton, a.number, a.present, a.back_style) == (b.canton, b.number, b.present, b.back_style)
    images = {s.image.tobytes() for s in first}
    assert len(images) == len(first)


def test_use_fonts_draws_in_another_typeface_and_back():
    """scripts/robustness.py draws plates in a font the training data never use, then restores them."""
    serif = os.path.join(fonts.mpl_font_dir() or "", "DejaVuSerif.ttf")  # not a training font
    if not os.path.exists(serif):
        pytest.skip("matplotlib ships no DejaVuSerif.ttf here")
    trained_glyph, trained_scene = fonts.glyph(0, 40, "R").mask, make_scene(rng(5), NoAug).image
    fonts.use_fonts([serif])
    try:
        assert fonts.num_fonts() == 1
        assert not np.array_equal(fonts.glyph(0, 40, "R").mask, trained_glyph)  # font 0 is now the serif
        assert not np.array_equal(make_scene(rng(5), NoAug).image, trained_scene)
    finally:
        fonts.use_fonts(None)
    assert fonts.font_names() == fonts.training_fonts()
    assert np.array_equal(fonts.glyph(0, 40, "R").mask, trained_glyph)
    assert np.array_equal(make_scene(rng(5), NoAug).image, trained_scene)


def test_no_plate_scenes_are_flagged():
    class Empty(G):
        NO_PLATE_RATE = 1.0
        AUGMENTATIONS_PER_SCENE = [0, 4]

    for seed in range(10):
        s = make_scene(rng(seed), Empty)
        assert not s.present and not s.back_style and s.canton == "" and s.number == ""
        assert s.text == s.format == s.variant == ""
        assert not s.corners.any() and not s.box.any()
        assert s.image.shape == (256, 256)
    flags = [make_scene(rng(seed), params.GeneratorParams).present for seed in range(200)]
    assert 0 < flags.count(False) < 40  # NO_PLATE_RATE = 0.05


@pytest.mark.parametrize("size", [256, 128])
def test_corners_inside_scene_after_augmentations(size):
    seen = set()
    for seed in range(150):
        r = rng(seed, size)
        replay = rng(seed, size)
        replay.random()  # make_scene draws `present` first, then the codes
        seen.update(augment.draw_codes(replay, Heavy))
        s = make_scene(r, Heavy, size)
        assert s.present
        assert (s.corners >= 0).all() and (s.corners <= size).all(), (seed, s.corners)
        w = np.linalg.norm(s.corners[1] - s.corners[0])
        assert w > 0.1 * size  # still a readable plate
    assert seen == set(augment.AUG_CODES)


@pytest.mark.parametrize("code", augment.AUG_CODES)
def test_each_augmentation(code):
    class One(NoAug):
        AUGMENTATIONS = {code: 1}
        AUGMENTATIONS_PER_SCENE = [1, 2]

    for seed in range(6):
        s = make_scene(rng(seed), One)
        assert s.image.shape == (256, 256) and s.image.dtype == np.uint8
        assert (s.corners >= 0).all() and (s.corners <= 256).all()
        assert set(s.augmentations) <= {code, "jpeg"}  # the codes it drew, which scripts/degradations.py reads
    if code in augment.GEOMETRIC:
        alpha, scene = coverage(0, One)
        area = polygon_area(scene.corners)
        assert abs(alpha.sum() - area) < 0.02 * area + 2


def test_clean_twin_has_the_same_plate_and_codes_without_photometric_changes():
    """scripts/degradations.py compares each scene with its clean twin (photometric=False)."""
    class Blurred(NoAug):
        AUGMENTATIONS = {"mot": 1}
        AUGMENTATIONS_PER_SCENE = [1, 1]
        JPEG_RATE = 1.0

    real = compose_scene(rng(3), Blurred, 128)
    twin = compose_scene(rng(3), Blurred, 128, photometric=False)
    assert real.augmentations == twin.augmentations == ("mot", "jpeg")
    assert real.text == twin.text and np.array_equal(real.corners, twin.corners)
    assert not np.array_equal(real.image, twin.image)


def test_photometric_augmentations_keep_geometry():
    img = Image.fromarray(np.tile(np.arange(256, dtype=np.uint8), (256, 1)))
    for code, func in augment.PHOTOMETRIC_FUNCS.items():
        out = func(np.random.default_rng(0), img)
        assert out.size == img.size and out.mode == "L", code
    # Downsizing and back keeps a centred bright square centred.
    sq = np.zeros((256, 256), np.uint8)
    sq[96:160, 96:160] = 255
    out = np.asarray(augment.downsize(np.random.default_rng(1), Image.fromarray(sq))).astype(float)
    yy, xx = np.mgrid[0:256, 0:256] + 0.5
    assert (out * xx).sum() / out.sum() == pytest.approx(128, abs=0.75)
    assert (out * yy).sum() / out.sum() == pytest.approx(128, abs=0.75)


def test_validate_accepts_defaults():
    validate_generator_params(G)
    validate_generator_params(NoAug)


BAD = [
    ("AUGMENTATIONS", {"mot": 1, "zoom": 2}, "mot, rot"),
    ("AUGMENTATIONS", {"mot": -1, "rot": 1}, "negative"),
    ("AUGMENTATIONS", {"mot": 0, "rot": 0}, "positive"),
    ("AUGMENTATIONS", ["mot"], "table code -> weight"),
    ("CANTONS", ["ZH", "XX"], "AG, AI"),
    ("CANTONS", "ZH", "list"),
    ("DIGIT_WEIGHTS", [0, 0, 0, 0, 0, 0], "positive"),
    ("DIGIT_WEIGHTS", [1, 1, -1, 1, 1, 1], "negative"),
    ("DIGIT_WEIGHTS", [1, 1, 1], "6 weights"),
    ("BACK_STYLE_RATE", 1.5, "[0, 1]"),
    ("NO_PLATE_RATE", -0.1, "[0, 1]"),
    ("JPEG_RATE", "often", "[0, 1]"),
    ("PLATE_WIDTH_RANGE", [0.9, 0.3], "lo must not exceed hi"),
    ("PLATE_WIDTH_RANGE", [0.3, 1.5], "[0, 1]"),
    ("PLATE_WIDTH_RANGE", [0.0, 0.5], "> 0"),
    ("PLATE_WIDTH_RANGE", [0.3], "[lo, hi]"),
    ("ROTATION_DEG", -5, "[0, 180]"),
    ("SHEAR_DEG", -1.0, "[0, 60]"),
    ("STRETCH", -0.1, "[0, 0.9]"),
    ("PERSPECTIVE", 0.9, "[0, 0.45]"),
    ("AUGMENTATIONS_PER_SCENE", [3, 1], "lo must not exceed hi"),
    ("AUGMENTATIONS_PER_SCENE", [-1, 2], "[0, 20]"),
    ("AUGMENTATIONS_PER_SCENE", [0.5, 2], "integers"),
    ("JPEG_QUALITY", [50, 20], "lo must not exceed hi"),
    ("JPEG_QUALITY", [0, 90], "[1, 100]"),
]


@pytest.mark.parametrize("name,value,hint", BAD, ids=[f"{n}={v!r}" for n, v, _ in BAD])
def test_validate_rejects_bad_values(name, value, hint):
    bad = type("GeneratorParams", (G,), {name: value})
    with pytest.raises(UserError) as info:
        validate_generator_params(bad)
    message = str(info.value)
    assert f"GeneratorParams.{name}" in message and hint in message
    assert "\n" not in message


def test_validate_names_missing_parameter():
    with pytest.raises(UserError, match="GeneratorParams.CANTONS is missing"):
        validate_generator_params(type("GeneratorParams", (), {}))


def test_all_zero_augmentation_weights_allowed_without_draws():
    validate_generator_params(type("Off", (G,), {"AUGMENTATIONS": {}, "AUGMENTATIONS_PER_SCENE": [0, 0]}))
    s = make_scene(rng(0), type("Off2", (NoAug,), {"AUGMENTATIONS": {}}))
    assert s.present


def test_homography_helpers():
    src = scenes.plate_rect(3.75)
    dst = np.array([[10, 12], [200, 20], [190, 80], [5, 70]], np.float64)
    h = scenes.quad_homography(src, dst)
    np.testing.assert_allclose(scenes.apply_h(h, src), dst, atol=1e-9)


def test_packaged_and_stroke_fonts_draw_every_character_of_foreign_plates_only():
    """The font packages (pyproject.toml) are installed and, with the stroke faces, draw every
    character; Swiss plates and distractor text draw from the base fonts alone, so Swiss scenes
    did not change with them."""
    assert fonts.training_fonts()[:fonts.num_fonts()] == fonts.base_fonts()
    packaged = len(fonts.base_fonts()) + len(fonts.PACKAGE_FONT_FILES)
    assert fonts.font_names()[packaged:] == stroke_font.names()
    assert fonts.num_format_fonts() == packaged + len(stroke_font.STYLES)
    for index in range(fonts.num_fonts(), fonts.num_format_fonts()):
        assert index >= packaged or os.path.exists(fonts.font_names()[index])
        glyphs = fonts.glyph_set(index, 30)
        assert all(g.mask.max() > 0 and g.mask.shape[0] >= 20 for g in glyphs.values())
        assert len({g.mask.tobytes() for g in glyphs.values()}) == len(glyphs)  # no blank boxes or repeats
