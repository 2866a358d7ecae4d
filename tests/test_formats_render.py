"""Plates of every format (GeneratorParams.FORMATS): each renders, its text fits its format, labels
match pixels, results are reproducible, the default (Swiss only) is unchanged, bad params are refused."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import params
from platereader import formats
from platereader.errors import UserError
from platereader.geometry.quads import ROWS, row_quad
from platereader.synth import backgrounds, fonts, plate_formats, plates
from platereader.synth.scenes import (make_scene, text_length, validate_formats,
                                      validate_generator_params, with_formats)
from platereader.synth.sets import TEXT_DTYPE, scene_arrays, text_dtype
from tests.test_generator import Geometric, NoAug, coverage, polygon_area, quad_distance

G = params.GeneratorParams
FOREIGN = ("brazil", "us", "eu")


Plain = NoAug  # the generator tests' scenes: a plate, no augmentation, no JPEG


class Mixed(G):
    FORMATS = {"swiss": 1, "brazil": 1, "us": 1, "eu": 1}
    AUGMENTATIONS_PER_SCENE = [2, 5]
    JPEG_RATE = 0.5


def only(name: str, base=Plain):
    return type(f"Only_{name}", (base,), {"FORMATS": {name: 1}})


def rng(*seed: int) -> np.random.Generator:
    return np.random.default_rng([11, 0, *seed])


# --- the default draws exactly what it drew before other formats existed ---------------------------

def _fingerprint() -> str:
    labels = hashlib.md5()
    for i in range(30):
        s = make_scene(np.random.default_rng([7, 0, 500, i]), G, 128)
        labels.update(f"{s.text}|{s.present}|{np.round(s.corners.astype(np.float64), 3).tolist()}|"
                      f"{s.augmentations};".encode())
    return labels.hexdigest()


def test_default_scenes_are_those_from_before_formats():
    """md5 of the labels of default scenes (texts, corners, augmentation codes), computed with the
    Swiss-only generator before FORMATS existed: the default draws what it drew. (Pixels are not
    hashed: float resampling can flip a grey level between processes; the style drawn is checked by
    test_default_draws_no_format.)"""
    assert plate_formats.format_weights(G) == {"swiss": 1}
    assert _fingerprint() == "ae70f58299754df64094998fc246ab6b"


@pytest.mark.parametrize("weights", [{"swiss": 1}, {"swiss": 3, "us": 0}, {"swiss": 0.5}])
def test_default_draws_no_format(weights):
    """One format with weight: no draw for the format, the Swiss style drawn exactly as before."""
    gen = type("Gen", (G,), {"FORMATS": weights})
    for seed in range(10):
        a, b = rng(seed), rng(seed)
        style = plate_formats.draw(a, gen)
        assert style == plates.draw_style(b, G) and style.format == "swiss"
        assert a.bit_generator.state == b.bit_generator.state
        assert make_scene(rng(seed), gen).image.tobytes() == make_scene(rng(seed), G).image.tobytes()


# --- every format renders, with a text of its format ------------------------------------------------

@pytest.mark.parametrize("name", FOREIGN)
def test_every_format_renders_a_text_it_allows(name):
    fmt = formats.FORMATS[name]
    variants, lengths, separators = set(), set(), set()
    for seed in range(60):
        style = plate_formats.draw_style(rng(seed), name, two_row_rate=0.3)
        assert fmt.parse(style.text) is not None, style.text
        assert style.format == name and not style.back_style
        printed = [t for t in style.tokens if t not in plate_formats.SEPARATORS + ("/",)]
        assert "".join(printed) == style.text  # separators are drawn, not read
        assert "".join(style.rows) == (style.text if "/" in style.tokens else "")  # rows in reading order
        variants.add(style.variant)
        lengths.add(len(style.text))
        separators.update(t for t in style.tokens if t in plate_formats.SEPARATORS)
        if seed % 6:
            continue
        for height in plates.RENDER_HEIGHTS:
            plate = plate_formats.render(style, height)
            gray, alpha = (np.asarray(b) for b in plate.image.split())
            assert plate.height == height and abs(plate.width / height - style.aspect) < 0.05
            assert alpha[plates.PAD:-plates.PAD, plates.PAD:-plates.PAD].mean() > 240  # plate body opaque
            body = gray[plates.PAD + round(0.35 * height):plates.PAD + round(0.75 * height),
                        plates.PAD + plate.width // 3:plates.PAD + 2 * plate.width // 3]
            assert (body < (min(style.paper, style.paper2) + style.ink) / 2).mean() > 0.05, (name, seed, height)
    assert variants == {lay.variant for lay in plate_formats.LAYOUTS[name]}
    assert len(lengths) >= (1 if name == "brazil" else 3)
    assert separators, name  # some plates print separators


def test_templates_fit_their_format():
    """The shortest and longest text of every template (any class as a letter, then as a digit)."""
    for name, layouts in plate_formats.LAYOUTS.items():
        for layout in layouts:
            for template in layout.templates:
                groups = [g for g in template.groups.split(" ") if g != "/"]
                assert all(any(c.isupper() for c in g) for g in groups), template  # no group may vanish
                assert all(len(s) == len(groups) - 1 for s in template.separators if isinstance(s, tuple))
                assert template.groups.count("/") == (len(layout.rows) - 1 if layout.rows else 0), template
                for longest in (False, True):
                    for any_char in "Q7":
                        text = "".join({"L": "Q", "D": "7", "A": any_char}[c.upper()]
                                       for c in template.groups.replace(" ", "").replace("/", "")
                                       if longest or c.isupper())
                        assert formats.FORMATS[name].parse(text) is not None, (template, text)


def two_row_style(name: str, seed: int) -> plate_formats.FormatStyle:
    style = plate_formats.draw_style(rng(seed), name, two_row_rate=1.0)
    assert len(style.rows) == 2 and "".join(style.rows) == style.text
    return style


@pytest.mark.parametrize("name", ["brazil", "eu"])
def test_two_row_plates_print_each_row_in_its_band(name):
    """A row's characters change the pixels of its band of the plate only, the band the reader cuts
    that row from (geometry.quads.ROWS): labels match pixels row by row."""
    for seed in range(4):
        style = two_row_style(name, seed)
        cut = style.tokens.index("/")
        height = 60
        image = np.asarray(plate_formats.render(style, height).image.split()[0]).astype(int)
        for row, (lo, hi) in ((0, (0, cut)), (1, (cut + 1, len(style.tokens)))):
            tokens = tuple("7" * len(t) if lo <= k < hi and t not in plate_formats.SEPARATORS else t
                           for k, t in enumerate(style.tokens))
            if tokens == style.tokens:  # a row of sevens already
                continue
            other = plate_formats.FormatStyle(**{**style.__dict__, "tokens": tokens})
            changed = np.abs(np.asarray(plate_formats.render(other, height).image.split()[0]).astype(int) - image)
            rows_changed = np.flatnonzero(changed.max(1) > 0) - plates.PAD  # plate rows, 0 at the top edge
            top, bottom = ROWS[row]
            assert len(rows_changed), (name, seed, row)
            assert rows_changed.min() >= top * height - 2 and rows_changed.max() <= bottom * height + 2, (name, seed, row)


def test_two_row_layouts_keep_to_the_reader_bands():
    for layouts in plate_formats.LAYOUTS.values():
        for layout in layouts:
            assert len(layout.rows) in (0, len(ROWS)), layout.variant
            for (y0, y1), (lo, hi) in zip(layout.rows, ROWS):
                assert lo <= y0 < y1 <= hi, layout.variant
                assert y1 - y0 >= max(layout.caps), layout.variant  # the characters fit their band


def test_two_row_rate_draws_two_row_layouts():
    assert not any(plate_formats.draw_style(rng(s), "brazil").rows for s in range(20))  # rate 0 by default
    drawn = [plate_formats.draw_style(rng(s), "brazil", two_row_rate=0.5).variant for s in range(60)]
    assert {"old", "mercosur", "old-moto", "mercosur-moto"} == set(drawn)
    assert all(not plate_formats.draw_style(rng(s), "us", two_row_rate=1.0).rows for s in range(10))  # none there
    with pytest.raises(UserError, match=r"^params.py:GeneratorParams.TWO_ROW_RATE"):
        validate_generator_params(type("GeneratorParams", (G,), {"TWO_ROW_RATE": 1.5}))


def test_text_changes_the_pixels():
    style = plate_formats.draw_style(rng(3), "eu")
    other = plate_formats.FormatStyle(**{**style.__dict__, "tokens": tuple(
        t if t in plate_formats.SEPARATORS else "7" * len(t) for t in style.tokens)})
    a = np.asarray(plate_formats.render(style, 40).image)
    b = np.asarray(plate_formats.render(other, 40).image)
    assert a.shape == b.shape and not np.array_equal(a, b)


def test_proportions_are_the_real_ones():
    aspects = {(lay.format, lay.variant): lay.aspect for lays in plate_formats.LAYOUTS.values() for lay in lays}
    assert aspects == pytest.approx({("brazil", "old"): 400 / 130, ("brazil", "mercosur"): 400 / 130,
                                     ("brazil", "old-moto"): 200 / 170, ("brazil", "mercosur-moto"): 200 / 170,
                                     ("us", "standard"): 2.0, ("eu", "standard"): 520 / 110,
                                     ("eu", "square"): 280 / 200})
    flat = {"ROTATION_DEG": 0.0, "SHEAR_DEG": 0.0, "STRETCH": 0.0, "PERSPECTIVE": 0.0}
    for name in FOREIGN:
        for seed in range(3):
            s = make_scene(rng(seed), type("Flat", (only(name),), flat))
            w = np.linalg.norm(s.corners[1] - s.corners[0])
            h = np.linalg.norm(s.corners[3] - s.corners[0])
            assert w / h == pytest.approx(plate_formats._layout(name, s.variant).aspect, rel=1e-4)


# --- scenes: labels match pixels -------------------------------------------------------------------

@pytest.mark.parametrize("name", FOREIGN)
@pytest.mark.parametrize("base", [Plain, Geometric], ids=["plain", "geometric"])
def test_labels_match_pixels(name, base):
    gen = only(name, base)
    for seed in range(6):
        alpha, scene = coverage(seed, gen, draw=rng)
        assert scene.present and scene.format == name
        assert formats.FORMATS[name].parse(scene.text) is not None
        dist = quad_distance(scene.corners, 256)
        assert dist[alpha > 0.02].max() < 1.0, seed  # every pixel the plate touches is in the quad
        area = polygon_area(scene.corners)
        assert abs(alpha.sum() - area) < 0.02 * area + 2, (seed, alpha.sum(), area)  # and fills it


def test_mixed_scenes_record_their_format():
    seen = set()
    for seed in range(80):
        s = make_scene(rng(seed), Mixed, 128)
        if not s.present:
            assert (s.text, s.format, s.variant, s.canton, s.number) == ("", "", "", "", "")
            continue
        seen.add((s.format, s.variant))
        assert formats.FORMATS[s.format].parse(s.text) is not None, (s.format, s.text)
        if s.format == "swiss":
            assert s.canton + s.number == s.text and s.variant == ("back" if s.back_style else "front")
        else:
            assert s.canton == s.number == "" and not s.back_style
        assert (s.corners >= 0).all() and (s.corners <= 128).all()
    assert {f for f, _ in seen} == set(formats.FORMATS)
    assert ("brazil", "old") in seen and ("brazil", "mercosur") in seen


def test_reproducible_whatever_the_caches():
    first = [make_scene(rng(i), Mixed, 128) for i in range(16)]
    fonts._GLYPHS.clear()
    fonts._BASE.clear()
    plate_formats._label_mask.cache_clear()
    backgrounds.photos.cache_clear()
    again = {i: make_scene(rng(i), Mixed, 128) for i in reversed(range(16))}
    for i, a in enumerate(first):
        b = again[i]
        assert a.image.tobytes() == b.image.tobytes() and a.corners.tobytes() == b.corners.tobytes()
        assert (a.text, a.format, a.variant, a.augmentations) == (b.text, b.format, b.variant, b.augmentations)
    assert len({s.image.tobytes() for s in first}) == len(first)


def test_text_arrays_are_wide_enough():
    assert text_dtype(G) == TEXT_DTYPE == "<U8"  # Swiss only: as before
    assert text_length(Mixed) == formats.max_length(formats.FORMATS) == 9
    arrays = scene_arrays(0, 24, 11, 0, only("eu"), 64)
    assert arrays["texts"].dtype == np.dtype("<U9")
    assert all(formats.EU.parse(str(t)) is not None for t in arrays["texts"])


# --- parameters ------------------------------------------------------------------------------------

def test_with_formats_replaces_some_weights():
    assert with_formats(G, {}) is G
    gen = with_formats(G, {"us": 2})
    assert gen.FORMATS == {"swiss": 1, "us": 2} and gen.__name__ == "GeneratorParams"
    assert plate_formats.format_names(with_formats(G, {"swiss": 0, "eu": 1})) == ("eu",)
    validate_generator_params(Mixed)


BAD = [
    ({"swiss": 1, "mars": 1}, "unknown format 'mars'"),
    ({"swiss": -1, "us": 1}, "negative"),
    ({"swiss": 0, "us": 0}, "positive"),
    ({}, "positive"),
    ({"swiss": "often"}, "numbers"),
    (["swiss"], "table format -> weight"),
]


@pytest.mark.parametrize("value,hint", BAD, ids=[repr(v) for v, _ in BAD])
def test_validate_rejects_bad_formats(value, hint):
    with pytest.raises(UserError) as info:
        validate_generator_params(type("GeneratorParams", (G,), {"FORMATS": value}))
    message = str(info.value)
    assert message.startswith("params.py:GeneratorParams.FORMATS") and hint in message
    assert "\n" not in message


def test_validate_a_stage_override():
    stage = type("PrepareOCRParams", (), {"FORMATS": {}})
    validate_formats(stage, allow_all_zero=True)
    with pytest.raises(UserError, match=r"^params.py:PrepareOCRParams.FORMATS has unknown format 'uk'"):
        validate_formats(type("PrepareOCRParams", (), {"FORMATS": {"uk": 1}}), allow_all_zero=True)


# --- prepare_ocr: PrepareOCRParams.FORMATS ---------------------------------------------------------

def test_prepare_ocr_formats_override(monkeypatch):
    from platereader.stages import prepare_ocr

    p = params.PrepareOCRParams
    kwargs = dict(base_seed=1, stage_seed=2, gen=G, scene_size=128, crop_h=16, crop_w=64, margin=p.CROP_MARGIN,
                  jitter=p.CORNER_JITTER, augmentations={})
    swiss = prepare_ocr.make_chunk(0, 4, **kwargs)
    assert swiss["texts"].dtype == np.dtype(TEXT_DTYPE)
    for key, values in prepare_ocr.make_chunk(0, 4, formats={}, **kwargs).items():
        assert values.tobytes() == swiss[key].tobytes()  # {} keeps the generator's formats
    mixed = prepare_ocr.make_chunk(0, 12, formats={"swiss": 0, "brazil": 1, "us": 1, "eu": 1}, **kwargs)
    assert mixed["texts"].dtype == np.dtype("<U9") and mixed["images"].shape == (12, 16, 64)
    assert all(formats.match(str(t), FOREIGN) for t in mixed["texts"])

    monkeypatch.setattr(p, "FORMATS", {"us": 1})
    prepare_ocr.validate_params()
    for bad, hint in (({"uk": 1}, "unknown format 'uk'"), ({"swiss": 0}, "weight 0")):
        monkeypatch.setattr(p, "FORMATS", bad)
        with pytest.raises(UserError, match=r"^params.py:PrepareOCRParams.FORMATS") as info:
            prepare_ocr.validate_params()
        assert hint in str(info.value)


def test_prepare_ocr_cuts_one_row_of_a_two_row_plate():
    """A two-row plate's OCR crop is one of its rows, cut from the band the reader reads it from,
    with that row's text; scenes of one-row plates are cut whole."""
    from platereader.stages import prepare_ocr

    p = params.PrepareOCRParams
    two_rows = type("TwoRows", (Plain,), {"FORMATS": {"brazil": 1}, "TWO_ROW_RATE": 1.0})
    kwargs = dict(base_seed=1, stage_seed=2, scene_size=128, crop_h=16, crop_w=64, margin=p.CROP_MARGIN,
                  jitter=[0.0, 0.0], augmentations={})
    chunk = prepare_ocr.make_chunk(0, 12, gen=two_rows, **kwargs)
    texts = [str(t) for t in chunk["texts"]]
    assert any(t.isalpha() and len(t) == 3 for t in texts) and any(len(t) == 4 and t[0].isdigit() for t in texts)
    assert all((t.isalpha() and len(t) == 3) or (len(t) == 4 and t[0].isdigit()) for t in texts), texts
    one_row = prepare_ocr.make_chunk(0, 12, gen=type("OneRow", (two_rows,), {"TWO_ROW_RATE": 0.0}), **kwargs)
    assert all(formats.BRAZIL.parse(str(t)) for t in one_row["texts"])
    quad = np.array([[0, 0], [100, 0], [100, 80], [0, 80]], np.float64)
    assert np.allclose(row_quad(quad, ROWS[1]), [[0, 80 * ROWS[1][0]], [100, 80 * ROWS[1][0]],
                                                [100, 80 * ROWS[1][1]], [0, 80 * ROWS[1][1]]])


# --- prepare_localize: PrepareLocalizeParams.FORMATS -----------------------------------------------

def test_prepare_localize_formats_override(monkeypatch):
    """The localizer may learn plates of other formats while the stack set stays Swiss."""
    from platereader.stages import prepare_localize

    p = params.PrepareLocalizeParams
    monkeypatch.setattr(p, "FORMATS", {"swiss": 0, "brazil": 1, "us": 1, "eu": 1})
    prepare_localize.validate_params()
    chunk = prepare_localize.make_chunk(0, 6, base_seed=1, stage_seed=2, gen=G, scene_size=128, p=p)
    monkeypatch.setattr(p, "FORMATS", {})
    swiss = prepare_localize.make_chunk(0, 6, base_seed=1, stage_seed=2, gen=G, scene_size=128, p=p)
    assert chunk["images"].shape == swiss["images"].shape and chunk["images"].tobytes() != swiss["images"].tobytes()
    for bad, hint in (({"uk": 1}, "unknown format 'uk'"), ({"swiss": 0}, "weight 0")):
        monkeypatch.setattr(p, "FORMATS", bad)
        with pytest.raises(UserError, match=r"^params.py:PrepareLocalizeParams.FORMATS") as info:
            prepare_localize.validate_params()
        assert hint in str(info.value) and "\n" not in str(info.value)
