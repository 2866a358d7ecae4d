"""Plate formats as data: the OCR's alphabet and, per format, what a plate's text may be.

A format is a pattern over the plate's characters (spaces, dashes and dots removed), the way its
fields are printed, and the values a field may take. The generator, the OCR's alphabet, the
prepared arrays' text width, the reader's check and the tests all read them from here; a new
format is one more `PlateFormat` in FORMATS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from re import _parser as sre_parse  # the width of a pattern, from the pattern itself

from platereader.errors import UserError

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
ALPHABET = LETTERS + DIGITS  # what the OCR reads: a plate's characters without separators

SWISS_CANTONS = (
    "AG", "AI", "AR", "BE", "BL", "BS", "FR", "GE", "GL", "GR", "JU", "LU", "NE",
    "NW", "OW", "SG", "SH", "SO", "SZ", "TG", "TI", "UR", "VD", "VS", "ZG", "ZH",
)
SWISS_MAX_DIGITS = 6


@dataclass(frozen=True)
class PlateFormat:
    name: str
    pattern: str  # over ALPHABET characters only, with a named group per field
    display: str  # str.format of the fields (and of `text`, the whole): how the plate is printed
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)  # field -> the values it may take
    letters: str = LETTERS  # the letters its plates print: what the generator draws from
    # The shapes most of its plates are issued in (L a letter, D a digit), where the pattern also
    # allows others (vanity plates): the decoder prefers them among texts the OCR finds likely.
    serials: tuple[str, ...] = ()

    @cached_property
    def regex(self) -> re.Pattern:
        return re.compile(self.pattern)

    @cached_property
    def serial_regex(self) -> re.Pattern | None:
        classes = {"L": f"[{self.letters}]", "D": f"[{DIGITS}]"}
        shapes = ("".join(classes[c] for c in shape) for shape in self.serials)
        return re.compile("|".join(shapes)) if self.serials else None

    @cached_property
    def lengths(self) -> tuple[int, int]:
        """The shortest and longest text the pattern allows."""
        return sre_parse.parse(self.pattern).getwidth()

    @property
    def max_length(self) -> int:
        return self.lengths[1]

    def parse(self, text: str) -> dict[str, str] | None:
        """The fields of `text` if it is a plate of this format, else None."""
        match = self.regex.fullmatch(text)
        if not match:
            return None
        fields = match.groupdict()
        if any(fields[name] not in allowed for name, allowed in self.choices.items()):
            return None
        return fields

    def parse_serial(self, text: str) -> dict[str, str] | None:
        """The fields of `text` if it is a plate of this format in one of its serials, else None."""
        if self.serial_regex is None or not self.serial_regex.fullmatch(text):
            return None
        return self.parse(text)

    def printed(self, text: str) -> str:
        """`text` (a plate of this format) as the plate prints it, e.g. "ZH 123456"."""
        return self.display.format(text=text, **self.parse(text))


SWISS = PlateFormat(
    name="swiss",
    pattern=rf"(?P<canton>[A-Z]{{2}})(?P<number>[1-9][0-9]{{0,{SWISS_MAX_DIGITS - 1}}})",
    display="{canton} {number}",
    choices={"canton": SWISS_CANTONS},
)

# Brazil: the old grey plates (ABC 1234) and Mercosur (ABC 1D23).
BRAZIL = PlateFormat(
    name="brazil",
    pattern=r"(?P<letters>[A-Z]{3})(?P<rest>[0-9]{4}|[0-9][A-Z][0-9]{2})",
    display="{letters} {rest}",
)
# United States: 2-8 letters and digits, state not needed. The states issue no letter O (their
# registries count O and 0 as one), so an O the OCR sees on a US plate is read as the 0 it is.
# Most states issue letter and digit blocks (ABC 1234, California's 1ABC234, 123 ABC, ...), as
# region pattern lists such as OpenALPR's postprocess/us.patterns do.
US_LETTERS = LETTERS.replace("O", "")
US = PlateFormat(name="us", pattern=rf"[{US_LETTERS}{DIGITS}]{{2,8}}", display="{text}", letters=US_LETTERS,
                 serials=("LLLDDDD", "DLLLDDD", "LLLDDD", "DDDLLL", "LLDDDDD", "DDDDDD", "DLDDDD"))
# A generic European plate: up to 9 letters and digits, at least one digit.
EU = PlateFormat(name="eu", pattern=r"(?=[A-Z]*[0-9])[A-Z0-9]{2,9}", display="{text}")

# The order is the order of preference when a text fits several accepted formats.
FORMATS = {f.name: f for f in (SWISS, BRAZIL, US, EU)}


def max_length(names) -> int:
    """The longest text any of the formats `names` allows: the width of prepared text arrays."""
    return max(FORMATS[name].max_length for name in names)


def normalise(text: str) -> str:
    """A printed or labelled plate as the OCR reads it: upper case, separators and spaces dropped."""
    return "".join(c for c in str(text).upper() if c in ALPHABET)


def match(text: str, names) -> tuple[PlateFormat, dict[str, str]] | None:
    """The first of the formats `names` that `text` fits, with its fields; None if none does."""
    for name in names:
        fields = FORMATS[name].parse(text)
        if fields is not None:
            return FORMATS[name], fields
    return None


def check_names(names, where: str) -> tuple[str, ...]:
    """`names` as a tuple if it is a non-empty list of known format names; else a UserError naming
    `where` (the parameter or file that gave them) and the known ones."""
    if isinstance(names, str) or not hasattr(names, "__iter__") or not list(names):
        raise UserError(f"{where} = {names!r}: expected a non-empty list of plate formats from "
                         f"{', '.join(FORMATS)}")
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise UserError(f"{where} names unknown plate formats {unknown}: known are {', '.join(FORMATS)}")
    return tuple(names)
