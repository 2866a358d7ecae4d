"""Error buckets of the reader on labelled photos (platereader.realdata.error_buckets), their
shares among evaluate_real's metrics, and scripts/real_errors.py end to end on photos the test
draws, with tiny untrained models. Nothing here needs ../shared."""

import re

import numpy as np
import pytest

from platereader import realdata
from platereader.errors import UserError
from platereader.reader import PlateReading
from scripts.common import reader_changes
from scripts.real_errors import GROUPS, METRICS, confusions, labels_read
from tests.conftest import ROOT, run
from tests.test_real import manifest_set, one_line_error, openalpr_set, plate, tiny_models


def reading(box, text, reported=False, fmt=None, presence=0.9, text_confidence=0.9) -> PlateReading:
    x0, y0, x1, y1 = box
    return PlateReading(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32), presence, text,
                        text_confidence, "scene", fmt, reported=reported)


def test_every_labelled_plate_falls_in_exactly_one_bucket():
    plates = [plate((0, 0, 100, 20), "AB123"),          # read
              plate((0, 100, 100, 120), "EF7"),         # missed: nothing near
              plate((200, 0, 300, 20), "GH12"),         # box_off: a candidate at IoU 0.3
              plate((0, 200, 100, 220), "CD456"),       # misread
              plate((200, 200, 300, 220), "ABC1234"),   # wrong_format: read right, not Swiss
              plate((400, 0, 500, 20), "ZH123456"),     # not_reported: Swiss, read right, too unsure
              plate((400, 200, 500, 220), "BE12")]      # not_reported: presence under the threshold
    candidates = [reading((2, 1, 100, 21), "AB123", reported=True, fmt="swiss"),
                  reading((200, 0, 230, 20), "GH12"),
                  reading((0, 200, 100, 220), "CD450"),
                  reading((200, 200, 300, 220), "ABC1234"),
                  reading((400, 0, 500, 20), "ZH123456", fmt="swiss", text_confidence=0.05),
                  reading((400, 200, 500, 220), "BE12", presence=0.3),
                  reading((600, 600, 700, 620), "ZH1", reported=True, fmt="swiss")]  # a false plate
    score = realdata.score_photo(plates, candidates, ("swiss",))
    assert score.buckets == ["read", "missed", "box_off", "misread", "wrong_format", "not_reported", "not_reported"]
    counts = realdata.bucket_counts([score])
    assert counts == {"read": 1, "missed": 1, "box_off": 1, "misread": 1, "wrong_format": 1, "not_reported": 2,
                      "false": 1}
    assert sum(counts[b] for b in realdata.BUCKETS) == len(plates) and counts["read"] == score.exact
    # Accepting Brazilian plates, the one read right is held back by its presence, not its format.
    assert realdata.score_photo(plates, candidates, ("swiss", "brazil")).buckets[4] == "not_reported"
    # Without the formats, a reading the reader gave no format counts as wrong_format.
    assert realdata.score_photo(plates, candidates).buckets[6] == "wrong_format"

    metrics = realdata.summarise([score, realdata.score_photo([], [])])
    shares = {k: v for k, v in metrics.items() if k.startswith("bucket_")}
    assert shares == {"bucket_missed": round(1 / 7, 4), "bucket_box_off": round(1 / 7, 4),
                      "bucket_misread": round(1 / 7, 4), "bucket_wrong_format": round(1 / 7, 4),
                      "bucket_not_reported": round(2 / 7, 4)}
    assert metrics["exact"] + sum(shares.values()) == pytest.approx(1, abs=1e-3)
    assert metrics["false_per_photo"] == 0.5
    assert not any(k.startswith("bucket_") for k in realdata.summarise([realdata.score_photo([], [])]))


def test_label_exact_reads_crops_cut_at_the_labelled_corners():
    """The OCR alone, at the labels: a stand-in that reads AB123 from any crop reads one of two
    plates (crops cut as the reader cuts them, one call for the photo's plates)."""
    from tests.test_reader import FixedReading, reader_with

    ocr = FixedReading("AB123", 0.999)
    reader = reader_with(ocr)
    photo = realdata.Photo("a.png", "a.png", "", 120, 200,
                           [plate((10, 10, 110, 40), "AB123"), plate((10, 60, 110, 90), "CD456")])
    gray = np.full((120, 200), 128, np.uint8)
    assert labels_read(reader, photo, gray) == 1 and ocr.calls == 1
    assert labels_read(reader, realdata.Photo("b.png", "b.png", "", 120, 200), gray) == 0


def test_confusions_count_characters_read_as_others():
    pairs = [("AB123", "A8123"), ("OVA1319", "DVAI3I9"), ("ABC", "ABCD"), ("XY12", "XY12")]
    assert confusions(pairs) == {"B>8": 1, "O>D": 1, "1>I": 2}  # an added D is no confusion


def test_reader_overrides_are_checked_as_params_are():
    assert reader_changes(["FORMATS=['swiss', 'brazil']", "ReaderParams.PHOTO_TILE_SIDES=[0.5, 0.3]"]) == {
        "formats": ("swiss", "brazil"), "photo_tile_sides": (0.5, 0.3)}
    for item, message in (("SPEED=3", "not a params.py:ReaderParams entry|expected NAME=VALUE"),
                          ("FORMATS=swiss", "no Python literal"),
                          ("FORMATS=['klingon']", "unknown plate formats"),
                          ("MIN_CONFIDENCE=2", "MIN_CONFIDENCE = 2: expected a number")):
        with pytest.raises(UserError, match=message):
            reader_changes([item])


def test_the_script_tables_the_buckets_and_groups_the_overlays(tmp_path):
    tiny_models(tmp_path)
    alpr, mine = openalpr_set(tmp_path / "sets" / "alpr"), manifest_set(tmp_path / "sets" / "mine")
    out = tmp_path / "overlays"
    stale = out / "alpr" / "missed" / "old.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"")
    result = run(["python", "-m", "scripts.real_errors", str(alpr), str(mine), "--models", str(tmp_path / "out/models"),
                  "--out", str(out), "-S", "FORMATS=['swiss','brazil']"], ROOT, OMP_NUM_THREADS="1")
    metrics, rows = ({line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
                      for line in table.splitlines() if line.startswith("| ") and "---" not in line}
                     for table in result.stdout.split("\n\n")[:2])
    assert metrics["dataset"] == list(METRICS) and rows["dataset"] == ["photos", "plates", *GROUPS]
    for name, photos, plates in (("alpr", 2, 3), ("mine", 3, 3)):
        cells = rows[name]
        assert cells[:2] == [str(photos), str(plates)]
        counts = [int(re.match(r"\d+", c).group()) for c in cells[2:]]
        assert sum(counts[:-1]) == plates, cells
        # The share read exactly is evaluate_real's `exact`.
        assert float(metrics[name][METRICS.index("exact")]) == pytest.approx(counts[0] / plates, abs=1e-3)
        assert 0 <= float(metrics[name][METRICS.index("label_exact")]) <= 1
    assert re.search(r"^most confused on alpr \(label>read\): ", result.stdout, re.M)
    assert not stale.exists()
    written = {p.relative_to(out).parts for p in out.rglob("*.png")}
    assert {group for _, group, _ in written} <= set(GROUPS)
    # Each photo with a plate is in the folder of each of its plates' buckets; b.jpg has none.
    assert {(d, f) for d, _, f in written} >= {("alpr", "car1.jpg.png"), ("alpr", "car2.png.png"),
                                               ("mine", "cars__a.png.png"), ("mine", "c.png.png")}

    missing = run(["python", "-m", "scripts.real_errors", str(tmp_path / "nowhere")], ROOT, check=False)
    one_line_error(missing, "nowhere does not exist")
