"""The stroke typefaces (synth/stroke_font.py): every character of every face draws, sits between
the cap line and the baseline like a font's and differs from every other character (that foreign
plates draw them: tests/test_generator.py)."""

from __future__ import annotations

import pytest

from platereader.formats import ALPHABET
from platereader.synth import stroke_font


@pytest.mark.parametrize("name", stroke_font.names())
def test_every_character_draws_between_cap_line_and_baseline(name):
    for char in ALPHABET:
        mask, top = stroke_font.render(name, char, 48, 0)
        assert top <= 1 and top + mask.shape[0] >= 47, char  # from the cap line to the baseline, to a pixel
        assert (mask > 127).sum() > 0.05 * mask.size, char


@pytest.mark.parametrize("name", stroke_font.names())
def test_no_two_characters_look_alike(name):
    """The OCR could not tell two characters apart that draw the same ink (1 and I, 0 and O)."""
    masks = {}
    for char in ALPHABET:
        mask = stroke_font.render(name, char, 48, 0)[0] > 127
        for other, seen in masks.items():
            same_size = seen.shape == mask.shape
            assert not (same_size and (seen != mask).mean() < 0.03), f"{char} looks like {other}"
        masks[char] = mask


def test_weight_thickens_the_strokes():
    thin, _ = stroke_font.render(stroke_font.names()[0], "H", 48, 0)
    bold, _ = stroke_font.render(stroke_font.names()[0], "H", 48, 3)
    assert bold.shape[0] == thin.shape[0] and (bold > 127).sum() > 1.3 * (thin > 127).sum()


def test_each_second_form_is_drawn_by_a_face_and_replaces_one_character():
    """A form no face lists is never drawn; two forms of one character in a face, one is ignored."""
    used = [name for style in stroke_font.STYLES for name in style.variants]
    assert set(used) == set(stroke_font.VARIANTS)
    for style in stroke_font.STYLES:
        chars = [stroke_font.VARIANTS[name][0] for name in style.variants]
        assert len(chars) == len(set(chars)), style
