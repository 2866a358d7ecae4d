"""The PlateReader: scene -> localizer -> rectifier -> OCR -> format check.

One implementation, used by evaluate_stack, the CLI (src/stack/predict.py), the MLEM package
(src/save_stack.py) and the HTTP server. Images are (H, W) grayscale or (H, W, 3|4) colour uint8
arrays of any size; answers are plain JSON-ready dicts.
"""

from __future__ import annotations

import os
import re

import numpy as np
import torch
from PIL import Image

from src.models.geometry import is_convex
from src.models.networks import Localizer, ctc_greedy_decode, fold_batchnorm
from src.models.preprocess import WINDOW_PASSES, fit_square, frame_to_scene, square_frames, window_inputs
from src.models.quantize import int8_copy
from src.models.rectify import rectify
from src.utils.errors import UserError
from src.utils.models import load_trained

# The Swiss format: a canton code then 1-6 digits. Checked against all 26 codes, whatever subset
# the generator was configured with, because that is what a real plate can carry.
CANTONS = frozenset("AG AI AR BE BL BS FR GE GL GR JU LU NE NW OW SG SH SO SZ TG TI UR VD VS ZG ZH".split())
PLATE_FORMAT = re.compile(r"^([A-Z]{2})([0-9]{1,6})$")
PRESENT_THRESHOLD = 0.5  # plate-present probability above which the localizer's corners are used
# An unsure reading (not a Swiss plate, or text confidence under REREAD_BELOW) is read again from the
# quad shifted by these shares of the plate's (width, height): a quad a few pixels off cuts a glyph
# or lets in the plate's edge. 0.5 against 0.3: +0.17 points of val_acc on 10 000 scenes for ~6 %
# slower reading; 1.0 (every plate) +0.24 for half the speed. Two shifts (up and down by 12 %) read
# ~7 % faster but 0.05-0.09 points fewer plates on 18 000 scenes (docs/results.md).
REREAD_BELOW = 0.5
REREAD_SHIFTS = ((-0.03, 0.0), (0.03, 0.0), (0.0, -0.08), (0.0, 0.08))
# Where the windows find no plate, the reader searches a grid of tiles (`PlateReader.search_tiles`):
# a 3 x 3 grid of squares of 60 % of the scene's side shows a plate 1.7x larger than the whole-scene
# pass. A plate found only there must be surer: presence above 0.9, and presence x text confidence
# above 0.3 to be reported (empty scenes found a "plate" in some tile 14 times in 18 000 scenes
# with the plain floor, twice with 0.3). On 18 000 scenes of seeds no stage uses +0.3 points of
# val_acc, plates under 35 % of the scene 0.63 -> 0.70, ~15 % slower reading (docs/results.md).
TILE_GRID = 3
TILE_SIDE = 0.6
TILE_PRESENT_THRESHOLD = 0.9
TILE_MIN_CONFIDENCE = 0.3
# Presence x text confidence under which no plate is reported: empty scenes that the localizer
# took for a plate read as valid text only by chance, and then with a low confidence. 0.1 against
# 0.02: +0.13 points of val_acc on 18 000 scenes, +0.09 on seeds 43 and 47, not used to choose it
# (`scripts/fresh_seeds.py --min-confidence`): 2-3 points more empty scenes read as empty, for a
# few plates in 10 000 no longer reported.
MIN_CONFIDENCE = 0.1


def parse_plate(text: str) -> tuple[str, str] | None:
    """(canton, number) if `text` is a valid Swiss plate, else None."""
    match = PLATE_FORMAT.match(text)
    if not match or match.group(1) not in CANTONS or match.group(2).startswith("0"):
        return None
    return match.group(1), match.group(2)


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W) | (H, W, 3) | (H, W, 4) uint8 -> (H, W) uint8 (alpha composited on white)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or min(image.shape[:2]) < 1:
        raise UserError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image array, got shape {image.shape}")
    mode = "RGBA" if image.shape[2] == 4 else "RGB"
    pil = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), mode)
    if mode == "RGBA":
        white = Image.new("RGBA", pil.size, (255, 255, 255, 255))
        pil = Image.alpha_composite(white, pil)
    return np.asarray(pil.convert("L"))


def shifted_quads(corners: torch.Tensor, shifts) -> torch.Tensor:
    """Quads (B, 4, 2) moved along their own axes: (S, B, 4, 2), one copy per (dx, dy) in `shifts`,
    dx a share of the quad's mean width vector, dy of its mean height vector."""
    width = (corners[:, 1] - corners[:, 0] + corners[:, 2] - corners[:, 3]) / 2
    height = (corners[:, 3] - corners[:, 0] + corners[:, 2] - corners[:, 1]) / 2
    return torch.stack([corners + (dx * width + dy * height)[:, None] for dx, dy in shifts])


def best_reading(readings: list[tuple[str, float]]) -> tuple[str, float]:
    """The valid plate text with the largest summed confidence over `readings`, with its best
    single confidence (a text read from several quads outweighs a lone confident misreading);
    the first reading when none is a valid plate."""
    votes: dict[str, float] = {}
    best: dict[str, float] = {}
    for text, conf in readings:
        if parse_plate(text):
            votes[text] = votes.get(text, 0.0) + conf
            best[text] = max(best.get(text, 0.0), conf)
    if not votes:
        return readings[0]
    text = max(votes, key=votes.get)
    return text, best[text]


def group_by_shape(grays: list[np.ndarray]) -> list[tuple[list[int], torch.Tensor]]:
    """Scenes of one size stacked into (b, 1, H, W) float32 tensors, with their batch positions, so
    that each size is resampled in one call (a batch from one camera is usually one size). Float
    once here, not in each of the 3-4 resamplings of a read."""
    by_shape: dict[tuple, list[int]] = {}
    for i, gray in enumerate(grays):
        by_shape.setdefault(gray.shape, []).append(i)
    return [(idx, torch.from_numpy(np.stack([grays[i] for i in idx])).unsqueeze(1).float())
            for idx in by_shape.values()]


class PlateReader:
    """Reads Swiss plates from scenes with a trained localizer and OCR model."""

    def __init__(self, localizer: Localizer, ocr: torch.nn.Module, ocr_extra: dict,
                 localizer_extra: dict | None = None, int8: bool = True):
        self.localizer = localizer.eval()  # the trained networks and their metadata, as saved
        self.ocr = ocr.eval()
        self.localizer_extra = localizer_extra or {}
        self.ocr_extra = ocr_extra
        # What reading runs: the int8 copies saved with the models (src/models/quantize.py; ~2x
        # faster), or without them (int8=False, older files, ARM) the float networks with
        # BatchNorm folded into the convolutions (the same maths, faster).
        int8_localizer = int8_copy(localizer, self.localizer_extra.get("int8")) if int8 else None
        int8_ocr = int8_copy(ocr, ocr_extra.get("int8")) if int8 else None
        self.int8 = int8_localizer is not None and int8_ocr is not None
        self._localize = int8_localizer if self.int8 else fold_batchnorm(localizer)
        self._read_text = int8_ocr if self.int8 else fold_batchnorm(ocr)
        self.input_size = localizer.config["input_size"]
        self.crop_height = ocr.config["crop_height"]
        self.crop_width = ocr.config["crop_width"]
        margin = ocr_extra.get("crop_margin", 0.0)  # one share for both axes, or [x, y]
        self.crop_margin = tuple(map(float, margin)) if isinstance(margin, (list, tuple)) else float(margin)
        # Per reader, so that scripts/fresh_seeds.py can compare values.
        self.reread_below, self.reread_shifts = REREAD_BELOW, REREAD_SHIFTS
        self.min_confidence = MIN_CONFIDENCE

    @classmethod
    def load(cls, models_dir: str | os.PathLike = "out/models", int8: bool = True) -> "PlateReader":
        localizer, localizer_extra = load_trained(os.path.join(models_dir, "localize", "model.pt"))
        ocr, ocr_extra = load_trained(os.path.join(models_dir, "ocr", "model.pt"))
        return cls(localizer, ocr, ocr_extra, localizer_extra, int8)

    @torch.inference_mode()
    def read(self, images: list[np.ndarray]) -> list[dict]:
        """Read a batch of scenes; one answer dict per image, in order."""
        if not images:
            return []
        grays = [to_gray(image) for image in images]
        groups = group_by_shape(grays)
        corners, present, from_tiles = self.locate(grays, groups)
        texts = self.texts(self.crops(groups, corners))
        unsure = [i for i, (text, conf) in enumerate(texts)
                  if present[i] > PRESENT_THRESHOLD and (conf < self.reread_below or parse_plate(text) is None)]
        if unsure:
            texts = self.reread(grays, corners, texts, unsure)

        answers = []
        for i, (text, text_conf) in enumerate(texts):
            parsed = parse_plate(text) if present[i] > PRESENT_THRESHOLD else None
            floor = TILE_MIN_CONFIDENCE if from_tiles[i] else self.min_confidence
            if parsed is None or present[i] * text_conf < floor:
                # No plate, text that is not a Swiss plate, or too faint: report nothing, not a guess.
                answers.append({"plate": None, "canton": None, "number": None,
                                "confidence": round(1 - present[i] * text_conf, 4), "corners": None})
                continue
            answers.append({"plate": f"{parsed[0]} {parsed[1]}", "canton": parsed[0], "number": parsed[1],
                            "confidence": round(present[i] * text_conf, 4),
                            "corners": [[round(float(x), 2), round(float(y), 2)] for x, y in corners[i]]})
        return answers

    @torch.inference_mode()
    def locate(self, grays: list[np.ndarray], groups=None) -> tuple[torch.Tensor, list[float], list[bool]]:
        """Plate corners (B, 4, 2) in scene pixels, plate-present probabilities and whether the
        plate was found in a tile: a pass on the whole scene, then WINDOW_PASSES on windows
        unwarped from the last quad (the plate large); where those find no plate, the same on the
        most likely of a grid of tiles (`search_tiles`)."""
        groups = groups or group_by_shape(grays)
        size = self.input_size
        inputs = torch.empty(len(grays), size, size, dtype=torch.uint8)
        scales = torch.empty(len(grays))
        for idx, scenes in groups:
            inputs[idx], scales[idx] = fit_square(scenes, size)
        heatmaps, present_logits = self._localize(inputs.unsqueeze(1))
        corners, present = self.refine(groups, Localizer.corners(heatmaps, size) / scales.view(-1, 1, 1),
                                       present_logits)
        # Whether there is a plate is decided on the last window, where the candidate is large. On
        # scenes of a seed no stage uses, that ties with averaging both passes and beats the whole
        # scene alone by a little (0.912 vs 0.910 read exactly); the OCR, not presence, limits it.
        lost = [i for i, p in enumerate(present.tolist()) if p <= PRESENT_THRESHOLD]
        from_tiles = torch.zeros(len(grays), dtype=torch.bool)
        if lost:
            found, found_present = self.search_tiles([grays[i] for i in lost])
            keep = found_present > TILE_PRESENT_THRESHOLD
            lost = torch.tensor(lost)
            corners[lost[keep]], present[lost[keep]] = found[keep], found_present[keep]
            from_tiles[lost[keep]] = True
        return corners, present.tolist(), from_tiles.tolist()

    def refine(self, groups, corners: torch.Tensor, present_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """WINDOW_PASSES from quads (B, 4, 2) and the presence logits of the pass that found them:
        the refined quads and the last pass's plate-present probabilities (B,)."""
        size = self.input_size
        windows = torch.empty(len(corners), size, size, dtype=torch.uint8)
        for _ in range(WINDOW_PASSES):
            for idx, scenes in groups:
                windows[idx] = window_inputs(scenes, corners[idx], size)
            heatmaps, present_logits = self._localize(windows.unsqueeze(1))
            refined = frame_to_scene(corners, Localizer.corners(heatmaps, size), size)
            # A window cut from a bad quad can give a folded one, corners thousands of pixels off
            # (the homography nears infinity): such a pass is not taken.
            corners = torch.where(is_convex(refined)[:, None, None], refined, corners)
        return corners, torch.sigmoid(present_logits).view(-1)

    def search_tiles(self, grays: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """For scenes where the whole-scene pass led nowhere (a small plate, a busy background): a
        first pass on TILE_GRID x TILE_GRID overlapping squares of TILE_SIDE of the scene's longer
        side, in which a plate looks TILE_SIDE^-1 times larger, then `refine` on the most likely."""
        size, n = self.input_size, TILE_GRID * TILE_GRID
        squares = []  # (left, top, side) of each tile, scene-major
        for gray in grays:
            height, width = gray.shape
            side = TILE_SIDE * max(height, width)
            squares += [(x, y, side) for y in np.linspace(0, max(height - side, 0), TILE_GRID)
                        for x in np.linspace(0, max(width - side, 0), TILE_GRID)]
        frames = square_frames(*torch.tensor(squares, dtype=torch.float64).unbind(1))
        groups = group_by_shape(grays)  # once, for the tiles and for `refine`
        tiles = torch.empty(len(frames), size, size, dtype=torch.uint8)
        for idx, scenes in groups:
            rows = [i * n + k for i in idx for k in range(n)]
            tiles[rows] = window_inputs(scenes.repeat_interleave(n, 0), frames[rows], size)
        heatmaps, present_logits = self._localize(tiles.unsqueeze(1))
        quads = frame_to_scene(frames, Localizer.corners(heatmaps, size), size).view(len(grays), n, 4, 2)
        present_logits = present_logits.view(len(grays), n)
        best, scene = present_logits.argmax(1), torch.arange(len(grays))
        return self.refine(groups, quads[scene, best], present_logits[scene, best])

    def crops(self, groups: list[tuple[list[int], torch.Tensor]], corners: torch.Tensor) -> torch.Tensor:
        """Rectified plate crops (B, 1, h, w) float from grouped scenes and corners in their pixels."""
        crops = torch.empty(sum(len(idx) for idx, _ in groups), 1, self.crop_height, self.crop_width)
        for idx, scenes in groups:
            crops[idx] = rectify(scenes, corners[idx], self.crop_height, self.crop_width, self.crop_margin)
        return crops

    def reread(self, grays, corners, texts, unsure: list[int]) -> list[tuple[str, float]]:
        """`texts` with the scenes at positions `unsure` read again from shifted quads, each
        answer then voted among its readings (`best_reading`)."""
        # Shift-major, in one resampling: reading k of scene j is at k * len(unsure) + j.
        groups = group_by_shape([grays[i] for _ in self.reread_shifts for i in unsure])
        again = self.texts(self.crops(groups, shifted_quads(corners[unsure], self.reread_shifts).flatten(0, 1)))
        texts = list(texts)
        for j, i in enumerate(unsure):
            texts[i] = best_reading([texts[i]] + again[j::len(unsure)])
        return texts

    @torch.inference_mode()
    def texts(self, crops: torch.Tensor) -> list[tuple[str, float]]:
        """The OCR's (text, confidence) for each rectified crop, before the format check."""
        return ctc_greedy_decode(self._read_text(crops))

    def predict(self, image: np.ndarray) -> dict:
        """Read one scene (the method MLEM serves)."""
        return self.read([image])[0]
