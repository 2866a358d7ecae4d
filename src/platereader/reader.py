"""The PlateReader: image -> localizer -> rectifier -> OCR -> format check -> plate readings.

One implementation, used by evaluate_stack, the CLI, the MLEM package and the HTTP server. Images
are (H, W) grayscale or (H, W, 3|4) colour uint8 arrays of any size. `read` answers every plate
found in each image as `PlateReading`s (best first; an empty list when there is none);
`inspect` also returns the candidates that were not reported, with what the reader computed for
them, so an evaluation never localises twice. How it reads is a `ReaderConfig`, which the MLEM
package stores next to the networks.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from platereader import formats, validate
from platereader.geometry.frames import fit_square, frame_to_scene, shrink, square_frames, window_inputs
from platereader.geometry.quads import ROWS, TWO_ROW_ASPECTS, is_convex, quad_aspect, row_quad
from platereader.geometry.rectify import halvings, rectify
from platereader.images import to_gray
from platereader.decoding import read_texts
from platereader.nets.networks import BLANK, Localizer, fold_batchnorm, load_trained
from platereader.nets.quantize import inference_copy, int8_trunk


@dataclass(frozen=True)
class ReaderConfig:
    """How the reader reads; one field per params.py:ReaderParams entry (see there)."""

    formats: tuple[str, ...]
    int8: bool
    present_threshold: float
    window_passes: int
    reread_below: float
    reread_shifts: tuple[tuple[float, float], ...]
    tile_grid: int
    tile_side: float
    tile_present_threshold: float
    tile_min_confidence: float
    min_confidence: float
    max_plates: int
    photo_min_side: int
    photo_tile_sides: tuple[float, ...]
    photo_candidates: int
    format_margin: float

    @classmethod
    def from_params(cls, p) -> "ReaderConfig":
        """From a params class with the fields in upper case (params.py:ReaderParams), checked."""
        formats.check_names(validate.get(p, "FORMATS"), validate.name(p, "FORMATS"))
        validate.boolean(p, "INT8")
        for name in ("PRESENT_THRESHOLD", "REREAD_BELOW", "TILE_SIDE", "TILE_PRESENT_THRESHOLD",
                     "TILE_MIN_CONFIDENCE", "MIN_CONFIDENCE"):
            validate.number(p, name, 0, 1)
        validate.integer(p, "WINDOW_PASSES", 0, 8)
        validate.integer(p, "TILE_GRID", 1, 8)
        validate.integer(p, "MAX_PLATES", 1, 64)
        validate.integer(p, "PHOTO_MIN_SIDE", 1)
        validate.integer(p, "PHOTO_CANDIDATES", 1, 64)
        validate.number(p, "FORMAT_MARGIN", 0, 20)
        sides = validate.get(p, "PHOTO_TILE_SIDES")
        if not isinstance(sides, (list, tuple)) or not all(
                isinstance(s, (int, float)) and not isinstance(s, bool) and 0.02 <= s <= 1 for s in sides):
            validate.fail(p, "PHOTO_TILE_SIDES", f"= {sides!r}: expected a list of tile sides, shares of the "
                                                 "photo's longer side in [0.02, 1] ([] = no photo search)")
        shifts = validate.get(p, "REREAD_SHIFTS")
        if not isinstance(shifts, (list, tuple)) or not all(
                isinstance(s, (list, tuple)) and len(s) == 2 and all(isinstance(v, (int, float)) and abs(v) <= 0.5
                                                                     for v in s) for s in shifts):
            validate.fail(p, "REREAD_SHIFTS", f"= {shifts!r}: expected a list of [dx, dy] pairs, shares of the "
                                              "plate's width and height in [-0.5, 0.5] ([] = no rereads)")
        return cls.from_dict({f: getattr(p, f.upper()) for f in cls.__dataclass_fields__})

    @classmethod
    def from_dict(cls, values: dict) -> "ReaderConfig":
        values = dict(values)
        values.setdefault("format_margin", 0.0)  # packages saved before it existed read as they did
        values["formats"] = formats.check_names(values["formats"], "ReaderParams.FORMATS")
        values["reread_shifts"] = tuple((float(dx), float(dy)) for dx, dy in values["reread_shifts"])
        values["photo_tile_sides"] = tuple(float(s) for s in values["photo_tile_sides"])
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PlateReading:
    """One plate candidate and what the reader made of it."""

    corners: np.ndarray  # (4, 2) float32 image pixels: top-left, top-right, bottom-right, bottom-left
    presence: float  # the localizer's plate-present probability
    text: str  # what the OCR read (voted over rereads), before the format check
    text_confidence: float
    found_in: str  # "scene" (the whole-image pass) or "tile" (the tile search)
    format: str | None = None  # the accepted format the text fits, None if none
    fields: dict[str, str] = field(default_factory=dict)  # that format's fields, e.g. canton and number
    reported: bool = False  # whether the reader answers it as a plate

    @property
    def confidence(self) -> float:
        """Probability that this is a plate and reads `text`: presence x text confidence."""
        return self.presence * self.text_confidence

    @property
    def plate(self) -> str | None:
        """The plate as printed ("ZH 123456"), None when the text fits no accepted format."""
        return formats.FORMATS[self.format].printed(self.text) if self.format else None

    def to_json(self) -> dict:
        """The answer for one plate: plate, text, format, confidence, corners and the fields."""
        return {"plate": self.plate, "text": self.text, "format": self.format,
                "confidence": round(self.confidence, 4),
                "corners": [[round(float(x), 2), round(float(y), 2)] for x, y in self.corners], **self.fields}


def answer_json(readings: list[PlateReading]) -> dict:
    """The answer for one image, as the CLI, the MLEM package and the server give it."""
    return {"plates": [r.to_json() for r in readings]}


def shifted_quads(corners: torch.Tensor, shifts) -> torch.Tensor:
    """Quads (B, 4, 2) moved along their own axes: (S, B, 4, 2), one copy per (dx, dy) in `shifts`,
    dx a share of the quad's mean width vector, dy of its mean height vector."""
    width = (corners[:, 1] - corners[:, 0] + corners[:, 2] - corners[:, 3]) / 2
    height = (corners[:, 3] - corners[:, 0] + corners[:, 2] - corners[:, 1]) / 2
    return torch.stack([corners + (dx * width + dy * height)[:, None] for dx, dy in shifts])


def best_reading(readings: list[tuple[str, float]], accepted) -> tuple[str, float]:
    """The text of an accepted format with the largest summed confidence over `readings`, with its
    best single confidence (a text read from several quads outweighs a lone confident misreading);
    the first reading when none fits."""
    votes: dict[str, float] = {}
    best: dict[str, float] = {}
    for text, conf in readings:
        if formats.match(text, accepted):
            votes[text] = votes.get(text, 0.0) + conf
            best[text] = max(best.get(text, 0.0), conf)
    if not votes:
        return readings[0]
    text = max(votes, key=votes.get)
    return text, best[text]


# A plate read from any angle it can be read at keeps its opposite sides within this ratio: a quad
# whose sides differ more spans a plate and something else (a tail light, the plate's small print).
MAX_SIDE_RATIO = 3.0


def side_ratio(quad: torch.Tensor) -> float:
    """The larger ratio of a quad's (4, 2) opposite sides: top to bottom, left to right (>= 1)."""
    top, right, bottom, left = (quad.roll(-1, 0) - quad).norm(dim=1).tolist()
    return max(max(top, bottom) / max(min(top, bottom), 1e-6), max(left, right) / max(min(left, right), 1e-6))


def box_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    """IoU of the axis-aligned boxes of two quads (4, 2)."""
    (ax0, ay0), (ax1, ay1) = a.min(0).values.tolist(), a.max(0).values.tolist()
    (bx0, by0), (bx1, by1) = b.min(0).values.tolist(), b.max(0).values.tolist()
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return inter / union if union > 0 else 0.0


def distinct(windows: list[tuple[float, float, float, float]], count: int) -> list[tuple[float, float, float, float]]:
    """The `count` likeliest of (logit, left, top, side) squares of one side, skipping any that
    shares three quarters of its area with a likelier one kept (they would find the same plate)."""
    kept = []
    for window in sorted(windows, reverse=True):
        if len(kept) == count:
            break
        _, left, top, side = window
        if all(max(0.0, side - abs(left - k[1])) * max(0.0, side - abs(top - k[2])) < 0.75 * side * side for k in kept):
            kept.append(window)
    return kept


# Candidates cut from scenes of one size, resampled in one call: their positions in a batch of
# candidates, the scenes (b, 1, H, W) float32, and the row of the scenes each is cut from (None: the
# scene at its own place, or the one scene for all; `rectify`'s rows).
Group = tuple[list[int], torch.Tensor, "torch.Tensor | None"]


def group_by_shape(grays: list[np.ndarray]) -> list[Group]:
    """Scenes of one size stacked into (b, 1, H, W) float32 tensors, with their batch positions, so
    that each size is resampled in one call (a batch from one camera is usually one size). Float
    once here, not in each of the 3-4 resamplings of a read."""
    by_shape: dict[tuple, list[int]] = {}
    for i, gray in enumerate(grays):
        by_shape.setdefault(gray.shape, []).append(i)
    return [(idx, torch.from_numpy(np.stack([grays[i] for i in idx])).unsqueeze(1).float(), None)
            for idx in by_shape.values()]


# Input pixels per presence-map call of the photo search: photos of one size are stacked up to it, as
# larger calls run slower on 2 cores (docs/history.md).
PRESENCE_MAP_PIXELS = 2 ** 20


class PlateReader:
    """Reads plates with a trained localizer and OCR model, as a `ReaderConfig` says."""

    def __init__(self, localizer: Localizer, ocr: torch.nn.Module, ocr_extra: dict,
                 localizer_extra: dict, config: ReaderConfig):
        self.localizer = localizer.eval()  # the trained networks and their metadata, as saved
        self.ocr = ocr.eval()
        self.localizer_extra = localizer_extra
        self.ocr_extra = ocr_extra
        self.config = config
        # What reading runs: the int8 copies saved with the models, or the float networks.
        self._localize, int8_localizer = inference_copy(localizer, localizer_extra, config.int8)
        self._read_text, int8_ocr = inference_copy(ocr, ocr_extra, config.int8)
        # The photo search's dense pass: the float network's presence head over the int8 trunk.
        self._presence_map = partial(fold_batchnorm(localizer).presence_map, trunk=int8_trunk(self._localize))
        self.int8 = int8_localizer and int8_ocr
        self.input_size = localizer.config["input_size"]
        self.window_margin = tuple(localizer_extra["window_margin"])
        self.crop_height = ocr.config["crop_height"]
        self.crop_width = ocr.config["crop_width"]
        self.crop_margin = tuple(ocr_extra["crop_margin"])

    @classmethod
    def load(cls, models_dir: str | os.PathLike, config: ReaderConfig) -> "PlateReader":
        localizer, localizer_extra = load_trained(os.path.join(models_dir, "localize", "model.pt"))
        ocr, ocr_extra = load_trained(os.path.join(models_dir, "ocr", "model.pt"))
        return cls(localizer, ocr, ocr_extra, localizer_extra, config)

    def read(self, images: list[np.ndarray]) -> list[list[PlateReading]]:
        """The plates of each image, best first; an empty list where there is none."""
        return [[r for r in candidates if r.reported] for candidates in self.inspect(images)]

    @torch.inference_mode()
    def inspect(self, images: list[np.ndarray]) -> list[list[PlateReading]]:
        """Every plate candidate of each image, reported or not, with what the reader computed:
        the whole-image candidate, then (with max_plates > 1) further plates in tiles, and in
        photos (longer side >= photo_min_side) the best windows of the photo search."""
        if not images:
            return []
        c = self.config
        grays = [to_gray(image) for image in images]
        groups = group_by_shape(grays)
        corners, present, from_tiles = self.locate(grays, groups)
        owner = list(range(len(grays)))  # the image of each candidate
        found_in = ["tile" if tile else "scene" for tile in from_tiles]
        extra = [(i, quad, p, "tile") for i, quad, p in self.more_plates(grays, groups, corners, present)] \
            if c.max_plates > 1 else []
        extra += [(i, quad, p, "photo") for i, quad, p in self.photo_search(groups)]
        if extra:
            owner += [e[0] for e in extra]
            corners = torch.cat([corners, torch.stack([e[1] for e in extra])])
            present += [e[2] for e in extra]
            found_in += [e[3] for e in extra]
        crops = self.crops(self.groups_for(groups, owner), corners)
        texts = self.texts(crops, [p > c.present_threshold for p in present])
        unsure = [k for k, (text, conf) in enumerate(texts) if present[k] > c.present_threshold
                  and (conf < c.reread_below or formats.match(text, c.formats) is None)]
        if unsure:
            texts = self.reread(groups, owner, corners, texts, unsure)
        aspect = quad_aspect(corners)
        squarish = [k for k in ((aspect >= TWO_ROW_ASPECTS[0]) & (aspect <= TWO_ROW_ASPECTS[1])).nonzero().flatten().tolist()
                    if present[k] > c.present_threshold]
        if squarish:
            texts = self.read_rows(groups, owner, corners, texts, squarish)
        answers: list[list[PlateReading]] = [[] for _ in images]
        # In a photo the whole-image pass sees its plates a few pixels wide: a reading from it
        # needs the floor of the searched windows, as faint ones there were strays.
        photo = [self.searched(gray) for gray in grays]
        for k, (text, text_conf) in enumerate(texts):
            reading = PlateReading(corners[k].numpy(), present[k], text, text_conf, found_in[k])
            matched = formats.match(text, c.formats) if present[k] > c.present_threshold else None
            floor = c.min_confidence if found_in[k] == "scene" and not photo[owner[k]] else c.tile_min_confidence
            if matched is not None:
                reading.format, reading.fields = matched[0].name, matched[1]
                # Too faint a reading is no plate: an empty scene reads as a plate only by chance.
                reading.reported = reading.confidence >= floor and side_ratio(corners[k]) <= MAX_SIDE_RATIO
            answers[owner[k]].append(reading)
        for readings in answers:
            self.rank(readings)
        return answers

    def rank(self, readings: list[PlateReading]) -> None:
        """Report at most max_plates plates of an image (on entry `reported` marks the reportable
        candidates) and sort its candidates, those reported first. Reportable candidates that
        overlap (box IoU >= 0.2, chained) are one plate found by several passes (the whole image,
        tiles, the photo search's windows): a plate scores the summed confidence of its candidates,
        so a plate found by several passes outranks a stray text found once, and reports its
        reading with the most characters, the most confident of those (a quad that clips the plate
        loses its end characters, often to a text more surely read: KV8004 for OKV8004)."""
        plates: list[list[PlateReading]] = []
        for reading in sorted((r for r in readings if r.reported), key=lambda r: -r.confidence):
            quad = torch.from_numpy(reading.corners)
            same = [p for p in plates if any(box_iou(quad, torch.from_numpy(o.corners)) >= 0.2 for o in p)]
            others = [p for p in plates if all(p is not s for s in same)]
            plates = others + [sum(same, []) + [reading]]
        def total(plate: list[PlateReading]) -> float:
            return sum(r.confidence for r in plate)

        plates.sort(key=total, reverse=True)
        score = {id(max(p, key=lambda r: (len(r.text), r.confidence))): total(p)
                 for p in plates[:self.config.max_plates]}  # the reported readings' plate scores
        for reading in readings:
            reading.reported = id(reading) in score
        readings.sort(key=lambda r: (-score.get(id(r), -1.0), -r.confidence))

    def groups_for(self, groups: list[Group], owner: list[int]) -> list[Group]:
        """Candidates grouped for resampling, candidate k cut from image owner[k] of the images'
        `group_by_shape` groups: a photo's (longer side >= photo_min_side) with the row of its photo
        there, none copied; a smaller image copied for each of its candidates (cheap), so that all
        are sampled in one call, not one per image."""
        where = {i: (g, row) for g, (idx, _, _) in enumerate(groups) for row, i in enumerate(idx)}
        found: dict[int, tuple[list[int], list[int]]] = {}
        for k, i in enumerate(owner):
            g, row = where[i]
            positions, rows = found.setdefault(g, ([], []))
            positions.append(k), rows.append(row)
        out = []
        for g, (positions, rows) in found.items():
            scenes, rows = groups[g][1], torch.tensor(rows)
            photos = max(scenes.shape[-2:]) >= self.config.photo_min_side
            out.append((positions, scenes, rows) if photos else (positions, scenes[rows], None))
        return out

    def searched(self, gray: np.ndarray | torch.Tensor) -> bool:
        """Whether the photo search runs on this image: a photo, and window sides configured."""
        return bool(self.config.photo_tile_sides) and max(gray.shape) >= self.config.photo_min_side

    def photo_search(self, groups: list[Group]) -> list[tuple[int, torch.Tensor, float]]:
        """Plates of any size in the photos among `groups` (scenes of one shape, `group_by_shape`).
        For each of photo_tile_sides (shares of the longer side) a photo is shrunk so that a square
        of that side becomes one input, and the localizer's presence is computed for such a square
        every 16 input pixels in one pass of its trunk (`Localizer.presence_map`). Of the squares
        that are local maxima and `distinct`, the photo_candidates most likely of each size and the
        4 x photo_candidates most likely overall get the first pass, then `refine`; of each photo
        the photo_candidates best that overlap no other are kept. Every photo's windows go through
        the localizer together (a few large calls cost less than many small ones). Returns (image
        index, quad (4, 2), presence) triples above present_threshold, each photo's most likely first."""
        c, size, margin = self.config, self.input_size, self.window_margin
        windows, searched, coarser = [], [], []  # (left, top, side) of all photos; their groups
        by_photo: dict[int, list[int]] = {}  # image index -> positions of its windows
        for idx, photos, _ in groups:
            if not self.searched(photos[0, 0]):
                continue
            coarser.append(halvings(photos, 3))  # windows of up to 8x the input's side sampled from a copy as coarse
            start, rows = len(windows), []
            for row, photo_windows in enumerate(self.search_windows(photos, coarser[-1])):
                by_photo[idx[row]] = list(range(len(windows), len(windows) + len(photo_windows)))
                windows += photo_windows
                rows += [row] * len(photo_windows)
            searched.append((list(range(start, len(windows))), photos, torch.tensor(rows)))
        if not searched:
            return []
        frames = square_frames(*torch.tensor(windows, dtype=torch.float64).T, margin)
        inputs = torch.empty(len(frames), size, size, dtype=torch.uint8)
        for (positions, photos, rows), photos_coarser in zip(searched, coarser):
            inputs[positions] = window_inputs(photos, frames[positions], size, margin, coarser=photos_coarser,
                                              rows=rows)
        heatmaps, logits = self._localize(inputs.unsqueeze(1))
        quads = frame_to_scene(frames, Localizer.corners(heatmaps, size), size, margin)
        refined, present = self.refine(searched, quads, logits, coarser)
        found = []
        for i, rows in by_photo.items():
            kept: list[torch.Tensor] = []
            for k in present[rows].argsort(descending=True).tolist():
                k = rows[k]
                if present[k] <= c.present_threshold or len(kept) == c.photo_candidates:
                    break
                if all(box_iou(refined[k], quad) < 0.2 for quad in kept):
                    kept.append(refined[k])
                    found.append((i, refined[k], float(present[k])))
        return found

    def search_windows(self, photos: torch.Tensor,
                       coarser: list[torch.Tensor]) -> list[list[tuple[float, float, float]]]:
        """The photo search's windows (left, top, side) in photo pixels for each of photos (b, 1, H,
        W) of one size, from their presence maps (`photo_search`); coarser: their `halvings`."""
        c, size = self.config, self.input_size
        chosen = [set() for _ in photos]
        windows: list[list[tuple[float, float, float, float]]] = [[] for _ in photos]  # (logit, left, top, side)
        for share in c.photo_tile_sides:
            longer = round(size / share)  # the photos shrunk so a window of that share is one input,
            level = sum(max(h.shape[-2:]) >= longer for h in coarser)  # from their coarsest copy as large
            shrunk, scale = shrink(coarser[level - 1] if level else photos, longer, size)
            scale /= 2 ** level
            per_call = max(1, PRESENCE_MAP_PIXELS // shrunk[0].numel())
            maps = torch.cat([self._presence_map(shrunk[j:j + per_call, None].float(), size)
                              for j in range(0, len(shrunk), per_call)])
            for logits, photo_chosen, photo_windows in zip(maps, chosen, windows):
                peaks = (logits == F.max_pool2d(logits[None], 3, 1, 1)[0]).nonzero().tolist()
                peaks = distinct([(float(logits[i, j]), 16 * j / scale, 16 * i / scale, size / scale)
                                  for i, j in peaks], 4 * c.photo_candidates)
                photo_chosen.update(peaks[:c.photo_candidates])  # every size has its say: small plates score lower
                photo_windows += peaks
        for photo_chosen, photo_windows in zip(chosen, windows):
            photo_chosen.update(sorted(photo_windows, reverse=True)[:4 * c.photo_candidates])
        return [[w[1:] for w in sorted(photo_chosen)] for photo_chosen in chosen]

    @torch.inference_mode()
    def locate(self, grays: list[np.ndarray], groups=None) -> tuple[torch.Tensor, list[float], list[bool]]:
        """Plate corners (B, 4, 2) in scene pixels, plate-present probabilities and whether the
        plate was found in a tile: a pass on the whole scene, then `window_passes` on windows
        unwarped from the last quad (the plate large); where those find no plate, the same on the
        most likely of a grid of tiles (`search_tiles`), except in photos the photo search covers."""
        groups = groups or group_by_shape(grays)
        size, threshold = self.input_size, self.config.present_threshold
        inputs = torch.empty(len(grays), size, size, dtype=torch.uint8)
        scales = torch.empty(len(grays))
        for idx, scenes, _ in groups:
            inputs[idx], scales[idx] = fit_square(scenes, size)
        heatmaps, present_logits = self._localize(inputs.unsqueeze(1))
        corners, present = self.refine(groups, Localizer.corners(heatmaps, size) / scales.view(-1, 1, 1),
                                       present_logits)
        # Whether there is a plate is decided on the last window, where the candidate is large.
        # Photos the photo search covers skip the tiles: its largest windows do their work.
        lost = [i for i, p in enumerate(present.tolist()) if p <= threshold and not self.searched(grays[i])]
        from_tiles = torch.zeros(len(grays), dtype=torch.bool)
        if lost:
            found, found_present = self.search_tiles([grays[i] for i in lost])
            keep = found_present > self.config.tile_present_threshold
            lost = torch.tensor(lost)
            corners[lost[keep]], present[lost[keep]] = found[keep], found_present[keep]
            from_tiles[lost[keep]] = True
        return corners, present.tolist(), from_tiles.tolist()

    def refine(self, groups, corners: torch.Tensor, present_logits: torch.Tensor,
               coarser=None) -> tuple[torch.Tensor, torch.Tensor]:
        """`window_passes` from quads (B, 4, 2) and the presence logits of the pass that found
        them: the refined quads and the last pass's plate-present probabilities (B,). coarser: for
        each group of photos, their `halvings`, which large windows are sampled from."""
        size, margin = self.input_size, self.window_margin
        windows = torch.empty(len(corners), size, size, dtype=torch.uint8)
        for _ in range(self.config.window_passes):
            for g, (idx, scenes, rows) in enumerate(groups):
                windows[idx] = window_inputs(scenes, corners[idx], size, margin, coarser=coarser[g] if coarser else (),
                                             rows=rows)
            heatmaps, present_logits = self._localize(windows.unsqueeze(1))
            refined = frame_to_scene(corners, Localizer.corners(heatmaps, size), size, margin)
            # A window cut from a bad quad can give a folded one, corners thousands of pixels off
            # (the homography nears infinity): such a pass is not taken.
            corners = torch.where(is_convex(refined)[:, None, None], refined, corners)
        return corners, torch.sigmoid(present_logits.double()).view(-1)  # float64: sure plates still rank

    def search_tiles(self, grays: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """For scenes where the whole-scene pass led nowhere (a small plate, a busy background): a
        first pass on a grid of overlapping squares of `tile_side` of the scene's longer side, in
        which a plate looks 1 / tile_side times larger, then `refine` on the most likely."""
        groups = group_by_shape(grays)
        quads, present_logits, _ = self.tile_pass(grays, groups)
        best, scene = present_logits.argmax(1), torch.arange(len(grays))
        return self.refine(groups, quads[scene, best], present_logits[scene, best])

    def more_plates(self, grays: list[np.ndarray], groups: list[Group], corners: torch.Tensor, present: list[float]):
        """Further plates of each image, for max_plates > 1: every tile whose refined quad is a
        plate (above tile_present_threshold) and overlaps no plate already found, most likely first,
        up to max_plates per image. Returns (image index, quad (4, 2), presence) triples."""
        c = self.config
        quads, present_logits, tile_groups = self.tile_pass(grays, groups)
        n = quads.shape[1]
        refined, refined_present = self.refine(tile_groups, quads.flatten(0, 1), present_logits.flatten())
        refined, refined_present = refined.view(len(grays), n, 4, 2), refined_present.view(len(grays), n)
        found = []
        for i in range(len(grays)):
            kept = [corners[i]] if present[i] > c.present_threshold else []
            for k in refined_present[i].argsort(descending=True).tolist():
                if len(kept) >= c.max_plates or refined_present[i, k] <= c.tile_present_threshold:
                    break
                if all(box_iou(refined[i, k], other) < 0.2 for other in kept):
                    kept.append(refined[i, k])
                    found.append((i, refined[i, k], float(refined_present[i, k])))
        return found

    def tile_pass(self, grays: list[np.ndarray], groups: list[Group]) -> tuple[torch.Tensor, torch.Tensor, list[Group]]:
        """The localizer's first pass on a tile_grid x tile_grid grid of overlapping squares of
        `tile_side` of each scene's longer side: quads (B, n, 4, 2) in scene pixels, presence
        logits (B, n) and the tiles' groups (`groups_for`; groups: the scenes' `group_by_shape`)."""
        size, margin, grid = self.input_size, self.window_margin, self.config.tile_grid
        n = grid * grid
        squares = []  # (left, top, side) of each tile, scene-major
        for gray in grays:
            height, width = gray.shape
            side = self.config.tile_side * max(height, width)
            squares += [(x, y, side) for y in np.linspace(0, max(height - side, 0), grid)
                        for x in np.linspace(0, max(width - side, 0), grid)]
        frames = square_frames(*torch.tensor(squares, dtype=torch.float64).unbind(1), margin)
        tile_groups = self.groups_for(groups, [i for i in range(len(grays)) for _ in range(n)])
        tiles = torch.empty(len(frames), size, size, dtype=torch.uint8)
        for positions, scenes, rows in tile_groups:
            tiles[positions] = window_inputs(scenes, frames[positions], size, margin, rows=rows)
        heatmaps, present_logits = self._localize(tiles.unsqueeze(1))
        quads = frame_to_scene(frames, Localizer.corners(heatmaps, size), size, margin).view(len(grays), n, 4, 2)
        return quads, present_logits.view(len(grays), n), tile_groups

    def crops(self, groups: list[Group], corners: torch.Tensor) -> torch.Tensor:
        """Rectified plate crops (B, 1, h, w) float from grouped scenes and corners in their pixels."""
        crops = torch.empty(sum(len(idx) for idx, _, _ in groups), 1, self.crop_height, self.crop_width)
        for idx, scenes, rows in groups:
            crops[idx] = rectify(scenes, corners[idx], self.crop_height, self.crop_width, self.crop_margin, rows=rows)
        return crops

    def reread(self, groups: list[Group], owner: list[int], corners, texts,
               unsure: list[int]) -> list[tuple[str, float]]:
        """`texts` with the candidates at positions `unsure` (in images owner[k] of the images'
        `groups`) read again from shifted quads, each answer then voted among its readings (`best_reading`)."""
        shifts = self.config.reread_shifts
        # Shift-major, in one resampling: reading k of candidate j is at k * len(unsure) + j.
        crops = self.crops(self.groups_for(groups, [owner[i] for _ in shifts for i in unsure]),
                           shifted_quads(corners[unsure], shifts).flatten(0, 1))
        again = self.texts(crops, [True] * len(crops))
        texts = list(texts)
        for j, i in enumerate(unsure):
            texts[i] = best_reading([texts[i]] + again[j::len(unsure)], self.config.formats)
        return texts

    def read_rows(self, groups: list[Group], owner: list[int], corners, texts,
                  squarish: list[int]) -> list[tuple[str, float]]:
        """`texts` with the candidates at positions `squarish` read as two-row plates where that
        reads better: the crop of each row (geometry.quads.ROWS) read, the rows' OCR outputs joined
        top first (a blank step between) and decoded as one crop's; that text replaces the
        whole-quad one where it fits an accepted format and the whole-quad one fits none or is less sure."""
        n, accepted = len(squarish), self.config.formats
        quads = torch.cat([row_quad(corners[squarish], row) for row in ROWS])  # row-major
        logits = self._read_text(self.crops(self.groups_for(groups, [owner[i] for _ in ROWS for i in squarish]), quads))
        gap = torch.zeros_like(logits[:1, :n])
        gap[..., BLANK] = 30.0  # a step that is surely blank: a row's last character never merges with the next's first
        parts = [logits[:, r * n:(r + 1) * n] for r in range(len(ROWS))]
        joined = torch.cat([x for part in parts for x in (part, gap)][:-1])
        texts = list(texts)
        for i, (text, conf) in zip(squarish, self.texts_of(joined, [True] * n)):
            if formats.match(text, accepted) and (formats.match(texts[i][0], accepted) is None or conf > texts[i][1]):
                texts[i] = (text, conf)
        return texts

    @torch.inference_mode()
    def texts(self, crops: torch.Tensor, fit: list[bool]) -> list[tuple[str, float]]:
        """The OCR's (text, confidence) for each rectified crop, before the format check; where
        `fit` is true, a likely text that fits an accepted format (`decoding.read_texts`)."""
        return self.texts_of(self._read_text(crops), fit)

    def texts_of(self, logits: torch.Tensor, fit: list[bool]) -> list[tuple[str, float]]:
        """`texts` from the OCR's (T, B, C) logits."""
        return read_texts(logits, self.config.formats, self.config.format_margin, fit)
