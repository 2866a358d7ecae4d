"""Plate formats as data: what each accepts, how it prints, and the facts derived from them."""

import pytest

from platereader import formats
from platereader.errors import UserError


@pytest.mark.parametrize("name, text, printed", [
    ("swiss", "ZH123456", "ZH 123456"), ("swiss", "AI1", "AI 1"),
    ("brazil", "AYO9034", "AYO 9034"), ("brazil", "ABC1D23", "ABC 1D23"),
    ("us", "YG9X2G", "YG9X2G"), ("us", "HELP", "HELP"),
    ("eu", "B4711XY", "B4711XY"),
])
def test_each_format_accepts_its_plates_and_prints_them(name, text, printed):
    fmt, _ = formats.match(text, [name])
    assert fmt.name == name and fmt.printed(text) == printed


@pytest.mark.parametrize("name, text", [
    ("swiss", "XX123"), ("swiss", "ZH0123"), ("swiss", "ZH1234567"),  # no canton, leading zero, 7 digits
    ("brazil", "AB12345"), ("brazil", "ABC12D3"),
    ("us", "A"), ("us", "ABCDEFGHI"), ("us", "7OAB123"),  # the states issue no O
    ("eu", "ABCDEF"), ("eu", "ABCDEFGH12"),  # no digit; 10 characters
])
def test_each_format_refuses_what_is_not_its_plate(name, text):
    assert formats.match(text, [name]) is None


def test_swiss_fields_and_the_derived_lengths():
    fmt, fields = formats.match("ZH123456", ["swiss"])
    assert fields == {"canton": "ZH", "number": "123456"}
    assert formats.SWISS.max_length == 2 + formats.SWISS_MAX_DIGITS
    assert formats.SWISS.lengths == (3, 2 + formats.SWISS_MAX_DIGITS)
    assert formats.BRAZIL.lengths == (7, 7) and formats.US.lengths == (2, 8)
    assert formats.max_length(["swiss", "eu"]) == 9


def test_match_takes_the_first_accepted_format_that_fits():
    assert formats.match("ZH123", ["swiss", "us"])[0].name == "swiss"
    assert formats.match("ZH123", ["us", "swiss"])[0].name == "us"
    assert formats.match("ZH123", ["brazil"]) is None


def test_normalise_drops_separators_and_case():
    assert formats.normalise("zh·123 456") == "ZH123456" and formats.normalise("ABC-1234") == "ABC1234"


def test_unknown_format_names_fail_with_one_line():
    with pytest.raises(UserError, match="unknown plate formats.*swiss, brazil"):
        formats.check_names(["swiss", "mars"], "params.py:ReaderParams.FORMATS")
    with pytest.raises(UserError, match="non-empty list"):
        formats.check_names([], "params.py:ReaderParams.FORMATS")


def test_the_us_serials_are_the_fixed_shapes_the_generator_draws():
    from platereader.synth.plate_formats import LAYOUTS

    drawn = {t.groups.replace(" ", "") for layout in LAYOUTS["us"] for t in layout.templates}
    assert {shape for shape in drawn if set(shape) <= set("LD")} == set(formats.US.serials)
    assert formats.US.parse_serial("7ABC123") == {} and formats.US.parse_serial("ABC1234") == {}
    assert formats.US.parse_serial("7ABC12") is None  # a US plate, but no serial
    assert formats.US.parse_serial("OBC1234") is None  # and a serial, but no US plate: no O
    assert formats.EU.parse_serial("AB123CD") is None  # Europe lists none
