"""Reading the text that fits an accepted format: where the OCR's likeliest text misses a format by
a character it almost read as another (O for 0), the format decides; nothing else changes."""

import math

import pytest
import torch

from platereader.decoding import fit_format, read_texts
from platereader.formats import ALPHABET
from platereader.nets.networks import BLANK, ctc_greedy_decode


def logits_of(characters: list[dict[str, float]]) -> torch.Tensor:
    """(T, 1, C) logits of one crop: per character one step with these class probabilities (the
    rest spread over the other classes), then a blank step."""
    steps = []
    for probs in characters:
        p = torch.full((len(ALPHABET) + 1,), (1 - sum(probs.values())) / (len(ALPHABET) + 1 - len(probs)))
        for char, value in probs.items():
            p[ALPHABET.index(char) + 1] = value
        blank = torch.full((len(ALPHABET) + 1,), 0.001 / len(ALPHABET))
        blank[BLANK] = 0.999
        steps += [p, blank]
    return torch.stack(steps).log().unsqueeze(1)


# A Brazilian plate ABC 0234 whose 0 the OCR read as O (0.6) before 0 (0.35).
BRAZIL_READ_O = [{"A": 0.99}, {"B": 0.99}, {"C": 0.99}, {"O": 0.6, "0": 0.35}, {"2": 0.99}, {"3": 0.99}, {"4": 0.99}]
# The same plate, ABC 1234, its 1 read as I.
BRAZIL_READ_I = [{"A": 0.99}, {"B": 0.99}, {"C": 0.99}, {"I": 0.6, "1": 0.35}, {"2": 0.99}, {"3": 0.99}, {"4": 0.99}]


def test_the_format_turns_a_confusable_character_into_the_one_it_allows():
    logits = logits_of(BRAZIL_READ_O)
    assert ctc_greedy_decode(logits)[0][0] == "ABCO234"
    text, drop = fit_format(logits[:, 0].softmax(-1).numpy(), ["brazil"], margin=5.0)
    assert text == "ABC0234" and drop == pytest.approx(math.log(0.35 / 0.6), abs=1e-4)
    assert fit_format(logits[:, 0].softmax(-1).numpy(), ["brazil"], margin=0.3) is None  # 0 is too unlikely


def test_an_earlier_format_wins_over_a_likelier_text_of_a_later_one():
    logits = logits_of(BRAZIL_READ_I)  # ABCI234 fits the US and EU formats as it is read
    greedy = ctc_greedy_decode(logits)[0]
    assert read_texts(logits, ["brazil", "us"], 5.0, [True]) == [("ABC1234", greedy[1])]
    assert read_texts(logits, ["eu", "brazil"], 5.0, [True]) == [greedy]  # Europe first: as read
    assert read_texts(logits, ["us", "brazil"], 5.0, [True])[0][0] == "ABC1234"  # a US serial, too
    assert read_texts(logits, ["brazil", "us"], 0.0, [True]) == [greedy]  # margin 0: as read
    assert read_texts(logits, ["brazil", "us"], 5.0, [False]) == [greedy]  # not asked to fit


def test_an_o_on_a_us_plate_is_read_as_the_0_the_states_issue():
    logits = logits_of(BRAZIL_READ_O)  # ABCO234: no US plate, the US has no O
    assert read_texts(logits, ["us"], 5.0, [True])[0][0] == "ABC0234"
    assert read_texts(logits, ["eu"], 5.0, [True])[0][0] == "ABCO234"  # Europe has O


def test_a_text_that_fits_the_first_format_is_read_as_it_is():
    swiss = logits_of([{"Z": 0.9}, {"H": 0.5, "G": 0.45}, {"1": 0.9}, {"2": 0.9}])
    assert read_texts(swiss, ["swiss"], 5.0, [True])[0][0] == "ZH12"  # ZG (Zug) is no better


def test_no_text_is_made_up_where_nothing_likely_fits():
    # A digit where Brazil wants a letter, with no likely letter: no plate, as the best path says.
    logits = logits_of([{"A": 0.99}, {"B": 0.99}, {"7": 0.99}, {"1": 0.99}, {"2": 0.99}, {"3": 0.99}, {"4": 0.99}])
    assert fit_format(logits[:, 0].softmax(-1).numpy(), ["brazil"], margin=5.0) is None
    assert read_texts(logits, ["brazil"], 5.0, [True])[0][0] == "AB71234"
    # Characters are replaced, never added or dropped: six characters never fit ABC 1234.
    short = logits_of(BRAZIL_READ_O[:6])
    assert fit_format(short[:, 0].softmax(-1).numpy(), ["brazil"], margin=20.0) is None


def test_a_us_reading_is_fitted_to_the_serials_states_issue():
    # 3MVV252 (California's 1ABC234) whose last 2 the OCR read as Z (0.6) before 2 (0.35).
    read_z = [{"3": 0.99}, {"M": 0.99}, {"V": 0.99}, {"V": 0.99}, {"2": 0.99}, {"5": 0.99}, {"Z": 0.6, "2": 0.35}]
    logits = logits_of(read_z)
    assert ctc_greedy_decode(logits)[0][0] == "3MVV25Z"  # a US plate as read, but no serial
    assert read_texts(logits, ["us"], 5.0, [True])[0][0] == "3MVV252"
    assert read_texts(logits, ["us"], 0.3, [True])[0][0] == "3MVV25Z"  # 2 too unlikely: as read
    assert read_texts(logits, ["eu"], 5.0, [True])[0][0] == "3MVV25Z"  # Europe lists no serials


def test_a_vanity_plate_with_no_likely_serial_is_read_as_it_is():
    vanity = logits_of([{"G": 0.99}, {"O": 0.01, "0": 0.98}, {"L": 0.99}, {"F": 0.99}, {"3": 0.6, "E": 0.35}])
    assert read_texts(vanity, ["us"], 5.0, [True])[0][0] == "G0LF3"  # no serial has five characters
    sure = logits_of([{c: 0.99} for c in "7ABC23"])  # DLLLDD is no serial, nothing else likely
    assert read_texts(sure, ["us"], 5.0, [True])[0][0] == "7ABC23"
