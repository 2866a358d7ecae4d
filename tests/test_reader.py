"""PlateReader decisions that do not need trained models: re-reading unsure plates, the vote among
readings, the confidence floor under which no plate is reported, and the settings it reads with."""

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import params
from platereader.formats import ALPHABET
from platereader.nets.networks import BLANK, Localizer, encode_text
from platereader.reader import (MAX_SIDE_RATIO, PlateReader, PlateReading, ReaderConfig, best_reading, shifted_quads,
                               side_ratio)

CONFIG = ReaderConfig.from_params(params.ReaderParams)


def test_shifted_quads_move_along_the_plate_axes():
    # A 40 x 10 plate turned by 90 degrees: its width runs down the image, its height to the left.
    quad = torch.tensor([[[50.0, 10.0], [50.0, 50.0], [40.0, 50.0], [40.0, 10.0]]])
    moved = shifted_quads(quad, [(0.5, 0.0), (0.0, 1.0), (0.0, 0.0)])
    assert moved.shape == (3, 1, 4, 2)
    assert torch.allclose(moved[0] - quad, torch.tensor([0.0, 20.0]).expand(1, 4, 2))
    assert torch.allclose(moved[1] - quad, torch.tensor([-10.0, 0.0]).expand(1, 4, 2))
    assert torch.equal(moved[2], quad)


def test_best_reading_sums_agreeing_readings_and_skips_invalid_ones():
    readings = [("ZH1234", 0.20), ("ZH1284", 0.40), ("ZH1234", 0.25), ("ZH1234", 0.30), ("XX12", 0.95)]
    assert best_reading(readings, ["swiss"]) == ("ZH1234", 0.30)  # 0.75 of votes beat 0.40; XX is no canton
    assert best_reading([("Z1", 0.5), ("ZH0", 0.9)], ["swiss"]) == ("Z1", 0.5)  # nothing valid: the first


class FixedReading(torch.nn.Module):
    """An OCR stand-in that reads `text` from any crop, each column sure with probability `p`."""

    def __init__(self, text: str, p: float, steps: int = 32):
        super().__init__()
        self.config = {"crop_height": 32, "crop_width": 128}
        path = [k for code in encode_text(text) for k in (code, BLANK)]
        path += [BLANK] * (steps - len(path))
        other = np.log((1 - p) / len(ALPHABET))
        logits = torch.full((steps, 1, len(ALPHABET) + 1), float(other))
        logits[torch.arange(steps), 0, path] = float(np.log(p))
        self.register_buffer("logits", logits)
        self.calls = 0

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.logits.expand(-1, crops.shape[0], -1)


def reader_with(ocr: FixedReading, config: ReaderConfig = CONFIG) -> PlateReader:
    localizer = Localizer(width=4, input_size=32)
    with torch.no_grad():  # no weights: a plate is always present, corners at the image centre
        for param in localizer.parameters():
            param.zero_()
        localizer.present.bias.fill_(20.0)
    reader = PlateReader(localizer, ocr, {"crop_margin": [0.0, 0.0]}, {"window_margin": [0.15, 0.5]}, config)
    reader._read_text = ocr  # the stand-in has no BatchNorm to fold; keep it to count its calls
    return reader


@pytest.mark.parametrize("p, plate, rereads", [
    (0.999, "ZH 123", False),  # sure (0.97): reported, read once
    (0.96, "ZH 123", True),    # unsure (0.27 < reread_below): read again from shifted quads, kept
    (0.85, None, True),        # valid text but confidence 0.0055 < MIN_CONFIDENCE: no plate
])
def test_unsure_readings_are_read_again_and_faint_ones_not_reported(p, plate, rereads):
    ocr = FixedReading("ZH123", p)
    conf = p ** 32
    config = replace(CONFIG, reread_below=0.5)
    assert (conf < config.reread_below) == rereads and (conf < config.min_confidence) == (plate is None)
    reader = reader_with(ocr, config)
    plates = reader.read([np.full((60, 200), 128, np.uint8)])[0]
    assert ocr.calls == (2 if rereads else 1)
    if plate is None:
        assert plates == []
        candidate = reader.inspect([np.full((60, 200), 128, np.uint8)])[0][0]
        assert not candidate.reported and candidate.text == "ZH123" and candidate.format == "swiss"
    else:
        answer = plates[0].to_json()
        assert answer["plate"] == plate and answer["format"] == "swiss"
        assert answer["canton"] == "ZH" and answer["number"] == "123" and len(answer["corners"]) == 4


def test_a_faint_reading_is_a_plate_in_a_small_scene_but_not_in_a_photo():
    """In a photo the whole-image pass sees plates a few pixels wide: its readings need the photo
    search's floor (TILE_MIN_CONFIDENCE), not MIN_CONFIDENCE."""
    p = 0.2 ** (1 / 32)  # every column sure with p: confidence 0.2, between the two floors
    assert CONFIG.min_confidence < 0.2 < CONFIG.tile_min_confidence
    reader = reader_with(FixedReading("ZH123", p))
    assert [r.plate for r in reader.read([np.full((60, 200), 128, np.uint8)])[0]] == ["ZH 123"]
    photo = np.full((600, 800), 128, np.uint8)
    assert max(photo.shape) >= CONFIG.photo_min_side
    candidates = reader.inspect([photo])[0]
    scene = next(r for r in candidates if r.found_in == "scene")
    assert scene.text == "ZH123" and scene.format == "swiss" and scene.confidence == pytest.approx(0.2, abs=0.01)
    assert not any(r.reported for r in candidates)


def test_side_ratio_flags_quads_no_plate_makes():
    """A plate in perspective keeps its opposite sides within MAX_SIDE_RATIO; a quad stretched from
    a plate to a tail light does not (the reader reports no such quad)."""
    rectangle = torch.tensor([[0.0, 0.0], [200.0, 0.0], [200.0, 50.0], [0.0, 50.0]])
    assert side_ratio(rectangle) == pytest.approx(1.0)
    seen_from_the_side = torch.tensor([[0.0, 0.0], [150.0, 10.0], [150.0, 40.0], [0.0, 50.0]])  # right 0.6x left
    assert side_ratio(seen_from_the_side) == pytest.approx(50 / 30) and 50 / 30 <= MAX_SIDE_RATIO
    spike = torch.tensor([[0.0, 0.0], [300.0, 0.0], [300.0, 10.0], [0.0, 60.0]])  # right 10, left 60
    assert side_ratio(spike) == pytest.approx(6.0) and 6.0 > MAX_SIDE_RATIO


def test_a_format_not_accepted_is_no_plate():
    """FORMATS chooses what a deployment reports: text of another format is not a plate."""
    with_swiss = reader_with(FixedReading("ZH123", 0.999))
    assert [r.plate for r in with_swiss.read([np.full((60, 200), 128, np.uint8)])[0]] == ["ZH 123"]
    not_swiss = reader_with(FixedReading("ZZ123", 0.999))  # ZZ is no canton
    assert not_swiss.read([np.full((60, 200), 128, np.uint8)])[0] == []


def test_bad_reader_params_fail_with_one_line():
    from platereader.errors import UserError

    for name, value, hint in (("FORMATS", ["mars"], "unknown plate formats"), ("MIN_CONFIDENCE", 2, "[0, 1]"),
                              ("REREAD_SHIFTS", [[0.1]], "[dx, dy]"), ("TILE_GRID", 0, "TILE_GRID")):
        with pytest.raises(UserError, match=f"ReaderParams.{name}.*") as info:
            ReaderConfig.from_params(type("ReaderParams", (params.ReaderParams,), {name: value}))
        assert hint in str(info.value) and "\n" not in str(info.value)


def test_settings_saved_before_format_fitting_read_as_they_did():
    """A MLEM package's reader settings from before FORMAT_MARGIN existed load without it: margin 0."""
    saved = CONFIG.to_dict()
    del saved["format_margin"]
    assert ReaderConfig.from_dict(saved) == replace(CONFIG, format_margin=0.0)


@pytest.mark.parametrize("reread_below, calls", [(0.0, 1), (1.0, 2)])
def test_reread_below_is_per_reader(reread_below, calls):
    ocr = FixedReading("ZH123", 0.96)  # a valid plate at confidence 0.27
    reader = reader_with(ocr, replace(CONFIG, reread_below=reread_below))
    assert [r.plate for r in reader.read([np.full((60, 200), 128, np.uint8)])[0]] == ["ZH 123"]
    assert ocr.calls == calls


def test_reader_runs_the_int8_copies_the_model_files_carry(tmp_path):
    from platereader.nets.networks import PlateOCR, save_model
    from platereader.nets.quantize import available, calibrate

    if not available():
        pytest.skip("this PyTorch build has no x86 int8 kernels")
    torch.manual_seed(0)
    localizer, ocr = Localizer(width=4, input_size=32).eval(), PlateOCR(width=8).eval()
    for name, model, extra in (
            ("localize", localizer, {"window_margin": [0.15, 0.5],
                                     "int8": calibrate(localizer, torch.randint(0, 256, (8, 1, 32, 32)))}),
            ("ocr", ocr, {"crop_margin": [0.1, 0.1], "int8": calibrate(ocr, torch.randint(0, 256, (8, 1, 32, 128)))})):
        (tmp_path / name).mkdir()
        save_model(model, tmp_path / name / "model.pt", extra)
    scenes = [np.random.default_rng(i).integers(0, 256, (80, 120), dtype=np.uint8) for i in range(3)]
    for int8 in (True, False):
        reader = PlateReader.load(tmp_path, replace(CONFIG, int8=int8))
        assert reader.int8 == int8
        assert isinstance(reader._read_text, torch.fx.GraphModule) == reader.int8
        assert len(reader.read(scenes)) == 3


class BrightBlob(torch.nn.Module):
    """A localizer stand-in: where at least 2 % of the input is bright, a plate-present logit of
    +20 and corner heatmaps peaked on the bright pixels' bounding box; elsewhere -20 and flat
    heatmaps (corners at the input's centre)."""

    def forward(self, inputs: torch.Tensor):
        bright = inputs[:, 0] > 128
        heatmaps = torch.zeros(len(inputs), 4, *bright.shape[1:])
        found = bright.float().mean((1, 2)) >= 0.02
        for b in torch.nonzero(found).flatten():
            ys, xs = torch.nonzero(bright[b], as_tuple=True)
            for k, (x, y) in enumerate([(xs.min(), ys.min()), (xs.max(), ys.min()),
                                        (xs.max(), ys.max()), (xs.min(), ys.max())]):
                heatmaps[b, k, y, x] = 50.0
        return heatmaps, torch.where(found, 20.0, -20.0)

    def presence_map(self, images: torch.Tensor, window: int) -> torch.Tensor:
        """Localizer.presence_map of this stand-in: where a window is at least 2 % bright, +20 and
        more the brighter it is (the window with the whole blob scores highest)."""
        share = F.avg_pool2d((images > 128).float(), window, stride=16)[:, 0]
        return torch.where(share >= 0.02, 20.0 + share, -20.0)


def blob_reader(ocr: FixedReading) -> PlateReader:
    reader = reader_with(ocr)  # tiles as params.py:ReaderParams sets them
    reader.localizer = Localizer(width=4, input_size=96)
    reader.input_size, reader._localize = 96, BrightBlob()
    reader._presence_map = reader._localize.presence_map
    return reader


def test_tiles_find_a_plate_too_small_for_the_whole_scene_pass():
    reader = blob_reader(FixedReading("ZH123", 0.999))
    small = np.zeros((300, 300), np.uint8)
    small[20:50, 20:50] = 255  # 1 % of the scene: too little for the whole scene, 2.8 % of a tile
    corners, present, from_tiles = reader.locate([small, np.zeros((300, 300), np.uint8)])
    assert present[0] > CONFIG.tile_present_threshold and present[1] < 0.5  # the empty scene stays empty
    assert from_tiles == [True, False]
    assert torch.allclose(corners[0], torch.tensor([[20.0, 20], [50, 20], [50, 50], [20, 50]]), atol=3)
    assert [r.plate for r in reader.read([small])[0]] == ["ZH 123"]
    assert reader.inspect([small])[0][0].found_in == "tile"
    # A faint reading (0.96 ** 32 = 0.27) is reported when the whole-scene pass found the plate (see
    # test_unsure_readings_are_read_again_and_faint_ones_not_reported), not when only a tile did.
    assert blob_reader(FixedReading("ZH123", 0.96)).read([small])[0] == []
    assert len(blob_reader(FixedReading("ZH123", 0.96)).read([np.full((300, 300), 255, np.uint8)])[0]) == 1


def test_an_image_with_two_plates_gives_two_readings_when_max_plates_allows():
    two = np.zeros((300, 300), np.uint8)
    two[20:50, 20:50] = 255
    two[250:280, 250:280] = 255  # each 1 % of the image: found in tiles only
    one_reader = blob_reader(FixedReading("ZH123", 0.999))
    assert len(one_reader.read([two])[0]) == 1  # MAX_PLATES = 1: the best plate only
    reader = blob_reader(FixedReading("ZH123", 0.999))
    reader.config = replace(CONFIG, max_plates=2)
    readings, empty = reader.read([two, np.zeros((300, 300), np.uint8)])
    assert empty == [] and [r.plate for r in readings] == ["ZH 123", "ZH 123"]
    centres = sorted(tuple(np.round(r.corners.mean(0) / 100)) for r in readings)
    assert centres == [(0.0, 0.0), (3.0, 3.0)]  # one reading at each plate


def candidate(text: str, confidence: float, left: float, top: float, found_in: str = "photo") -> PlateReading:
    """A reportable 100 x 30 candidate at (left, top)."""
    corners = np.array([[left, top], [left + 100, top], [left + 100, top + 30], [left, top + 30]], np.float32)
    return PlateReading(corners, 1.0, text, confidence, found_in, format="brazil", reported=True)


def test_a_plate_found_by_several_passes_outranks_a_stray_text_found_once():
    """A photo's plate is found by the whole-image pass and by search windows; a sticker or a
    badge read as text, by one window. The plate scores its candidates' summed confidence."""
    def photo():  # the plate twice (0.5 + 0.4), the stray text once (0.8)
        return [candidate("XYZ9876", 0.8, 400, 300), candidate("ABC1284", 0.4, 14, 12),
                candidate("ABC1234", 0.5, 10, 10, "scene")]

    reader = reader_with(FixedReading("ZH123", 0.999))
    readings = photo()
    reader.rank(readings)
    assert [(r.text, r.reported) for r in readings] == [("ABC1234", True), ("XYZ9876", False), ("ABC1284", False)]
    reader.config = replace(CONFIG, max_plates=2)
    readings = photo()
    reader.rank(readings)
    assert [r.text for r in readings if r.reported] == ["ABC1234", "XYZ9876"]  # one reading per plate
    readings = photo()[::2]  # each found once: by confidence
    reader.rank(readings)
    assert [r.text for r in readings if r.reported] == ["XYZ9876", "ABC1234"]


def test_a_photo_is_searched_on_a_pyramid_of_tiles_for_a_small_plate():
    photo = np.zeros((600, 800), np.uint8)
    photo[400:420, 500:540] = 255  # 5 % of the width: too small for the whole image and its 3 x 3 tiles
    reader = blob_reader(FixedReading("ZH123", 0.999))
    reader.config = replace(CONFIG, photo_tile_sides=(0.5, 0.3, 0.18, 0.11))
    readings = reader.inspect([photo])[0]
    best = readings[0]
    assert best.reported and best.found_in == "photo" and best.plate == "ZH 123"
    assert np.allclose(best.corners, [[500, 400], [540, 400], [540, 420], [500, 420]], atol=3)
    assert len(reader.read([photo])[0]) == 1  # MAX_PLATES = 1: the other candidates are not reported
    reader.config = replace(reader.config, photo_min_side=10_000)  # no pyramid: the plate is missed
    assert reader.read([photo])[0] == []


def test_the_photo_search_finds_a_large_and_a_small_plate_in_one_photo():
    photo = np.zeros((720, 1280), np.uint8)
    photo[100:150, 100:260] = 255  # 12.5 % of the width
    photo[600:615, 1000:1045] = 255  # 3.5 %
    reader = blob_reader(FixedReading("ZH123", 0.999))
    reader.config = replace(CONFIG, photo_tile_sides=(0.5, 0.3, 0.18, 0.11), max_plates=2)
    found = sorted(np.round(r.corners.min(0)).tolist() + np.round(r.corners.max(0)).tolist()
                   for r in reader.read([photo])[0])
    assert np.allclose(found, [[100, 100, 260, 150], [1000, 600, 1045, 615]], atol=4)
    assert reader.read([np.zeros_like(photo)])[0] == []  # and none in a photo without a plate


def test_photos_read_together_read_as_each_alone():
    # The photo search runs all photos' windows through the localizer together and stacks photos of
    # one size into its presence maps: a photo's plates must not depend on the rest of the batch.
    first, second = np.zeros((720, 1280), np.uint8), np.zeros((720, 1280), np.uint8)
    first[100:150, 100:260] = 255
    second[600:615, 1000:1045] = 255
    other_size = np.zeros((600, 800), np.uint8)
    other_size[300:330, 400:490] = 255
    reader = blob_reader(FixedReading("ZH123", 0.999))
    reader.config = replace(CONFIG, photo_tile_sides=(0.5, 0.3, 0.18, 0.11), max_plates=2)
    photos = [first, other_size, second]
    together = reader.inspect(photos)
    for photo, candidates in zip(photos, together):
        alone = reader.inspect([photo])[0]
        assert [(r.found_in, r.reported) for r in candidates] == [(r.found_in, r.reported) for r in alone]
        assert np.array_equal([r.corners for r in candidates], [r.corners for r in alone])
        assert any(r.found_in == "photo" and r.reported for r in candidates)


def test_a_plate_found_twice_reports_its_reading_that_saw_every_character():
    """The whole-image pass's quad clipped the plate's first letter and read the rest surely; a
    search window's quad covered it all. Both are one plate: it reports the complete reading."""
    reader = reader_with(FixedReading("ZH123", 0.999))
    readings = [candidate("KV8004", 0.97, 12, 10, "scene"), candidate("OKV8004", 0.6, 10, 10),
                candidate("XYZ9876", 0.9, 400, 300)]
    reader.rank(readings)
    assert [(r.text, r.reported) for r in readings] == [("OKV8004", True), ("KV8004", False), ("XYZ9876", False)]
    readings = [candidate("OKV8004", 0.6, 10, 10), candidate("OKV8034", 0.7, 12, 10, "scene")]
    reader.rank(readings)  # of readings as long, the more confident
    assert [r.text for r in readings if r.reported] == ["OKV8034"]


class ByBrightness(torch.nn.Module):
    """An OCR stand-in that reads each crop as the text of its mean grey level: one FixedReading
    per (least mean, text), the last whose level the crop reaches."""

    def __init__(self, levels: list[tuple[float, str]], p: float = 0.999):
        super().__init__()
        self.config = {"crop_height": 32, "crop_width": 128}
        self.levels = [(level, FixedReading(text, p).logits[:, 0]) for level, text in levels]

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        means = crops.mean((1, 2, 3)).tolist()
        return torch.stack([[logits for level, logits in self.levels if mean >= level][-1] for mean in means], 1)


def two_row_photo(width: int, height: int) -> np.ndarray:
    """A plate-sized blob at (100, 100): its top half grey 170, its bottom half white."""
    image = np.zeros((400, 400), np.uint8)
    image[100:100 + height // 2, 100:100 + width] = 170
    image[100 + height // 2:100 + height, 100:100 + width] = 255
    return image


def test_a_two_row_plate_is_read_row_by_row_in_reading_order():
    """A squarish quad is also read as two rows (geometry.quads.ROWS): the top row's text, then the
    bottom row's, where that fits an accepted format and the whole quad's reading does not."""
    # The whole quad is grey 212 on average (reads ZZ, no format), its top row 170 (ABC), its bottom 255 (1234).
    ocr = ByBrightness([(0, "Q"), (150, "ABC"), (200, "ZZ"), (240, "1234")])
    reader = blob_reader(ocr)
    reader.config = replace(CONFIG, formats=("brazil",))
    assert [r.plate for r in reader.read([two_row_photo(100, 80)])[0]] == ["ABC 1234"]
    assert reader.read([two_row_photo(240, 50)])[0] == []  # a wide quad is read whole only (ZZ)
    sure = blob_reader(ByBrightness([(0, "Q"), (150, "ABC"), (200, "XYZ9876"), (240, "1234")]))
    sure.config = reader.config  # a whole-quad reading that fits, surer than the rows: kept
    assert [r.plate for r in sure.read([two_row_photo(100, 80)])[0]] == ["XYZ 9876"]
