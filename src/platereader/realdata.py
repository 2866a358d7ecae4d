"""Labelled photographs: datasets under data/real/<name>/, checked on loading, and the reader's
answers on them scored.

A dataset is a folder in one of two layouts (docs/real-data.md):

- the OpenALPR benchmark's, as it is: one `NAME.txt` per image, each line `NAME.jpg x y w h TEXT`
  (tab or space separated): the image beside it, the plate's axis-aligned box in pixels, its
  characters. Several lines are several plates; image files no label names are not part of it;
- a manifest, `labels.jsonl` at the top of the folder, one JSON object per image:
  `{"image": "cars/a.jpg", "plates": [{"text": "ZH 123456", "corners": [[x, y], ...4], "format":
  "swiss"}]}`, a plate given by its 4 corners (top-left, top-right, bottom-right, bottom-left) or
  by `"box": [x, y, w, h]`, the format optional, `"plates": []` for an image without a plate.

Coordinates are pixels of the upright image (EXIF orientation applied, as `load_image` gives it).
Plate texts are compared as the OCR reads them: upper case, spaces, dashes and dots dropped. A bad
dataset fails as a `UserError` naming the file, the line and the fix, before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field

import numpy as np

from platereader import formats
from platereader.errors import UserError
from platereader.images import load_image
from platereader.metrics import edit_distance

REAL_DIR = "data/real"
MANIFEST = "labels.jsonl"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
# Labelling tools round: a box up to this many pixels past the image's edge is cut to the image
# (the OpenALPR Brazil set has one at x = -1); further out it is an error.
EDGE_TOLERANCE_PX = 2.0
IOU_MATCH = 0.5  # a prediction matches a labelled plate when their boxes overlap this much
IOU_NEAR = 0.1  # a labelled plate no candidate's box overlaps this much is missed (error_buckets)
# Where each labelled plate ends up, in the order error_buckets checks them; false plates apart.
BUCKETS = ("read", "missed", "box_off", "misread", "wrong_format", "not_reported")
SEPARATORS = " -."  # dropped from labelled texts (and never read by the OCR)
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # dataset names: folders and metric keys
FORMAT_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
MANIFEST_EXAMPLE = '{"image": "a.jpg", "plates": [{"text": "AB123", "box": [10, 20, 120, 30]}]}'


@dataclass
class Plate:
    corners: np.ndarray  # (4, 2) float32: top-left, top-right, bottom-right, bottom-left, pixels
    text: str  # normalised: what the OCR should read
    format: str | None = None

    @property
    def box(self) -> tuple[float, float, float, float]:
        return quad_box(self.corners)


@dataclass
class Photo:
    path: str  # the image file
    where: str  # its label: "file:line"
    sha256: str  # of the file's bytes
    height: int
    width: int
    plates: list[Plate] = field(default_factory=list)

    def load(self) -> np.ndarray:
        """The (H, W) uint8 grayscale image, upright, as the reader reads it."""
        return load_image(self.path)


@dataclass
class Dataset:
    name: str
    folder: str
    layout: str  # "openalpr" or "manifest"
    photos: list[Photo]
    unlabelled: int = 0  # image files in the folder that no label names (not part of the set)

    @property
    def plates(self) -> int:
        return sum(len(p.plates) for p in self.photos)


# --------------------------------------------------------------------------- names and params


def dataset_names(cls, attr: str, root: str = REAL_DIR) -> list[str]:
    """The dataset names params.py:cls.attr lists, each a folder under `root`; UserError else."""
    where = f"params.py:{cls.__name__}.{attr}"
    if not hasattr(cls, attr):
        raise UserError(f"{where} is missing: add it to {cls.__name__} ([] = none)")
    value = getattr(cls, attr)
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise UserError(f"{where} = {value!r}: expected a list of folder names under {root}/, e.g. "
                        "['openalpr-us'] ([] = none)")
    for name in value:
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise UserError(f"{where} has {name!r}: a dataset is named by its folder under {root}/ "
                            "(letters, digits, '-' and '_'), e.g. 'openalpr-us'")
        if not os.path.isdir(os.path.join(root, name)):
            raise UserError(f"{where} names {root}/{name}, which does not exist: bring it with `dvc import "
                            f"<repo> <path> -o {root}/{name}` or `dvc add {root}/{name}` "
                            "(docs/real-data.md), or remove it from the list")
    if len(set(value)) != len(value):
        raise UserError(f"{where} = {value!r} lists a dataset twice: list each once")
    return list(value)


def check_disjoint(train: list[Dataset], evaluated: list[Dataset]) -> None:
    """A photo may not be both trained and evaluated on: compared by content (sha256 of the
    bytes), so a copy under another name is caught too."""
    seen = {photo.sha256: photo for dataset in evaluated for photo in dataset.photos}
    shared = [(photo, seen[photo.sha256]) for dataset in train for photo in dataset.photos if photo.sha256 in seen]
    if shared:
        a, b = shared[0]
        raise UserError(f"params.py:RealParams.TRAIN_DATASETS and EVAL_DATASETS share {len(shared)} photos "
                        f"(e.g. {a.path} is the same file as {b.path}): a photo may not be both trained and "
                        "evaluated on; take the dataset out of one of the lists")


# --------------------------------------------------------------------------- loading


def load_dataset(name: str, root: str = REAL_DIR) -> Dataset:
    """The dataset in root/name, every label and image checked (images decoded once)."""
    folder = os.path.join(root, name)
    if not os.path.isdir(folder):
        raise UserError(f"dataset {folder} does not exist: bring it with `dvc import` or `dvc add` "
                        "(docs/real-data.md)")
    manifest = os.path.join(folder, MANIFEST)
    images = _image_files(folder)
    if os.path.isfile(manifest):
        layout, photos = "manifest", _read_manifest(folder, manifest)
    else:
        labels = _label_files(folder)
        if not labels:
            raise UserError(f"{folder} holds no labels: add a {MANIFEST} or one OpenALPR NAME.txt per image "
                            "(docs/real-data.md)")
        layout, photos = "openalpr", _read_openalpr(folder, labels)
    if not photos:
        raise UserError(f"{folder}/{MANIFEST} labels no image: add a line per image, e.g. {MANIFEST_EXAMPLE}")
    by_hash: dict[str, Photo] = {}
    for photo in photos:
        if photo.sha256 in by_hash:
            first = by_hash[photo.sha256]
            raise UserError(f"{photo.where}: duplicate image: {photo.path} has the same bytes as {first.path} "
                            f"({first.where}); keep one of them")
        by_hash[photo.sha256] = photo
    used = {os.path.normpath(p.path) for p in photos}
    return Dataset(name, folder, layout, photos, sum(os.path.normpath(f) not in used for f in images))


def _walk(folder: str):
    for top, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if not f.startswith("."):
                yield os.path.join(top, f)


def _image_files(folder: str) -> list[str]:
    return [f for f in _walk(folder) if f.lower().endswith(IMAGE_EXTENSIONS)]


def _label_files(folder: str) -> list[str]:
    return [f for f in _walk(folder) if f.lower().endswith(".txt")]


def _read_openalpr(folder: str, labels: list[str]) -> list[Photo]:
    photos: dict[str, Photo] = {}
    for label in labels:
        named_here: set[str] = set()
        with open(label, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
        if not any(line.strip() for line in lines):
            raise UserError(f"{label}:1: empty label file: write `NAME.jpg x y w h TEXT` (one line per plate) or "
                            "delete it")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{label}:{number}"
            fields = line.strip().split("\t") if "\t" in line else line.split()
            fields = [f.strip() for f in fields if f.strip()]
            if len(fields) < 6:
                raise UserError(f"{where}: expected `NAME.jpg x y w h TEXT` (tab or space separated), got "
                                f"{line.strip()!r}: write the image's name, the plate's box and its text")
            image = _image_path(folder, os.path.dirname(label), fields[0], where)
            key = os.path.normpath(image)
            if key in photos and key not in named_here:
                raise UserError(f"{where}: duplicate image: {fields[0]} is labelled already in {photos[key].where}; "
                                "keep one label file per image")
            if key not in photos:
                photos[key] = _photo(image, where)
            named_here.add(key)
            box = [_number(v, where, "the box") for v in fields[1:5]]
            text = " ".join(fields[5:])
            photos[key].plates.append(_plate(_box_corners(box, where), text, None, photos[key], where))
    return list(photos.values())


def _read_manifest(folder: str, manifest: str) -> list[Photo]:
    photos: dict[str, Photo] = {}
    with open(manifest, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{manifest}:{number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{where}: not JSON ({exc.msg}): write one object per line, e.g. "
                            f"{MANIFEST_EXAMPLE}") from None
        if not isinstance(entry, dict):
            raise UserError(f"{where}: expected a JSON object per line, e.g. {MANIFEST_EXAMPLE}")
        unknown = sorted(set(entry) - {"image", "plates"})
        if unknown:
            raise UserError(f"{where}: unknown keys {unknown}: an image line has \"image\" and \"plates\"")
        if not isinstance(entry.get("image"), str) or not entry["image"].strip():
            raise UserError(f"{where}: no \"image\": give the image file's path inside {folder}")
        if not isinstance(entry.get("plates"), list):
            raise UserError(f"{where}: \"plates\" must be a list of plates: give \"plates\": [] for an image "
                            "without a plate")
        image = _image_path(folder, folder, entry["image"], where)
        key = os.path.normpath(image)
        if key in photos:
            raise UserError(f"{where}: duplicate image: {entry['image']} is labelled already on "
                            f"{photos[key].where}; put all its plates on one line")
        photo = photos[key] = _photo(image, where)
        for plate in entry["plates"]:
            photo.plates.append(_manifest_plate(plate, photo, where))
    return list(photos.values())


def _manifest_plate(plate, photo: Photo, where: str) -> Plate:
    if not isinstance(plate, dict):
        raise UserError(f"{where}: a plate must be an object such as "
                        '{"text": "AB123", "box": [x, y, w, h]} or {"text": ..., "corners": [[x, y], ...]}')
    unknown = sorted(set(plate) - {"text", "box", "corners", "format"})
    if unknown:
        raise UserError(f"{where}: unknown plate keys {unknown}: a plate has \"text\", \"box\" or \"corners\", "
                        "and optionally \"format\"")
    if ("box" in plate) == ("corners" in plate):
        raise UserError(f"{where}: give each plate either \"box\": [x, y, w, h] or \"corners\": "
                        "[[x, y] x 4] (top-left, top-right, bottom-right, bottom-left)")
    if "box" in plate:
        box = plate["box"]
        if not isinstance(box, list) or len(box) != 4:
            raise UserError(f"{where}: \"box\" = {box!r}: expected [x, y, w, h] in pixels")
        corners = _box_corners([_number(v, where, "the box") for v in box], where)
    else:
        points = plate["corners"]
        if not isinstance(points, list) or len(points) != 4 or not all(
                isinstance(p, list) and len(p) == 2 for p in points):
            raise UserError(f"{where}: \"corners\" = {points!r}: expected 4 points [[x, y], ...], top-left, "
                            "top-right, bottom-right, bottom-left")
        corners = np.array([[_number(v, where, "the corners") for v in p] for p in points], np.float64)
    if "text" not in plate:
        raise UserError(f"{where}: a plate has no \"text\": give the characters on it")
    return _plate(corners, plate["text"], plate.get("format"), photo, where)


def _image_path(folder: str, base: str, name: str, where: str) -> str:
    if os.path.isabs(name) or ".." in re.split(r"[\\/]", name):
        raise UserError(f"{where}: image {name!r} is outside the dataset: give its path inside {folder}")
    path = os.path.join(base, name)
    if not os.path.isfile(path):
        raise UserError(f"{where}: image {name} not found ({path} is missing): add the file or correct its name")
    return path


def _photo(path: str, where: str) -> Photo:
    with open(path, "rb") as f:
        data = f.read()
    try:
        height, width = load_image(path).shape
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    return Photo(path, where, hashlib.sha256(data).hexdigest(), height, width)


def _number(value, where: str, what: str) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise UserError(f"{where}: {value!r} in {what} is not a number: give pixel coordinates")
    return number


def _box_corners(box: list[float], where: str) -> np.ndarray:
    x, y, w, h = box
    if w <= 0 or h <= 0:
        raise UserError(f"{where}: the box [{x:g}, {y:g}, {w:g}, {h:g}] has no area: give x y w h with a "
                        "positive width and height")
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float64)


def _plate(corners: np.ndarray, text, fmt, photo: Photo, where: str) -> Plate:
    box = quad_box(corners)
    tol = EDGE_TOLERANCE_PX
    if box[0] < -tol or box[1] < -tol or box[2] > photo.width + tol or box[3] > photo.height + tol:
        raise UserError(f"{where}: plate outside the {photo.width}x{photo.height} image "
                        f"{os.path.basename(photo.path)} (x {box[0]:g}..{box[2]:g}, y {box[1]:g}..{box[3]:g}): correct "
                        "its coordinates (pixels of the upright image)")
    corners = np.clip(corners, 0, [photo.width, photo.height])
    x, y = corners[:, 0], corners[:, 1]
    cross = [(corners[(i + 1) % 4] - corners[i])[0] * (corners[(i + 2) % 4] - corners[(i + 1) % 4])[1]
             - (corners[(i + 1) % 4] - corners[i])[1] * (corners[(i + 2) % 4] - corners[(i + 1) % 4])[0]
             for i in range(4)]
    if (np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) / 2 < 1 or min(cross) <= 0:
        raise UserError(f"{where}: the corners {corners.round(1).tolist()} are no plate: give a convex quad "
                        "in the order top-left, top-right, bottom-right, bottom-left (clockwise on the image)")
    return Plate(corners.astype(np.float32), label_text(text, where), _format(fmt, text, where))


def label_text(text, where: str) -> str:
    """A labelled plate text as the OCR reads it (upper case, no spaces, dashes or dots)."""
    if not isinstance(text, str):
        raise UserError(f"{where}: the plate text {text!r} is not a string: give its characters, e.g. \"AB 123\"")
    normal = "".join(c for c in text.upper() if c not in SEPARATORS)
    if not normal:
        raise UserError(f"{where}: empty plate text: give the characters on the plate, e.g. AB123")
    illegal = sorted(set(normal) - set(formats.ALPHABET))
    if illegal:
        raise UserError(f"{where}: plate text {text!r} has characters {''.join(illegal)!r}: a plate text is letters "
                        "A-Z and digits 0-9 (spaces, dashes and dots are dropped); correct the text")
    return normal


def _format(fmt, text: str, where: str) -> str | None:
    if fmt is None:
        return None
    if not isinstance(fmt, str) or not FORMAT_PATTERN.fullmatch(fmt):
        raise UserError(f"{where}: format {fmt!r}: give a format name such as \"swiss\" "
                        f"(known: {', '.join(formats.FORMATS)}), or leave it out")
    known = formats.FORMATS.get(fmt)
    if known is not None and known.parse(label_text(text, where)) is None:
        raise UserError(f"{where}: plate text {text!r} is not a {fmt} plate: correct the text or the format")
    return fmt


# --------------------------------------------------------------------------- scoring


def quad_box(corners) -> tuple[float, float, float, float]:
    """The axis-aligned box (x0, y0, x1, y1) around a quad (4, 2)."""
    corners = np.asarray(corners, dtype=np.float64)
    return (float(corners[:, 0].min()), float(corners[:, 1].min()),
            float(corners[:, 0].max()), float(corners[:, 1].max()))


def box_iou(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def match_boxes(labels: list, predictions: list, threshold: float = IOU_MATCH) -> dict[int, tuple[int, float]]:
    """One-to-one matches {label index: (prediction index, IoU)}, greedily by IoU, >= threshold."""
    pairs = sorted(((box_iou(a, b), i, j) for i, a in enumerate(labels) for j, b in enumerate(predictions)),
                   reverse=True)
    matched: dict[int, tuple[int, float]] = {}
    taken: set[int] = set()
    for iou, i, j in pairs:
        if iou < threshold:
            break
        if i not in matched and j not in taken:
            matched[i] = (j, iou)
            taken.add(j)
    return matched


@dataclass
class PhotoScore:
    """How the reader did on one photo. Candidates are `PlateReading`s (`PlateReader.inspect`)."""

    plates: int  # labelled
    located: int  # labelled plates some candidate's quad box overlaps by IoU >= 0.5 (reported or not)
    best_iou: list[float]  # per labelled plate, the best IoU of any candidate
    exact: int  # labelled plates a reported plate matches and reads exactly
    errors: int  # edit distance of the reported text ("" if none matches) to each label, summed
    raw_exact: int  # the same for the OCR's text of the located candidate, before the format check
    raw_errors: int
    chars: int  # labelled characters
    false: int  # reported plates that match no labelled plate
    located_by: dict[int, int]  # labelled plate -> candidate index
    reported_by: dict[int, int]  # labelled plate -> candidate index (reported ones only)
    buckets: list[str] = field(default_factory=list)  # per labelled plate, its error bucket

    @property
    def wrong(self) -> int:
        """Plates not read exactly plus false plates: how bad the photo went."""
        return self.plates - self.exact + self.false


def score_photo(plates: list[Plate], candidates: list, accepted: tuple[str, ...] | None = None) -> PhotoScore:
    """Score one photo's candidates against its labelled plates; `accepted`: the reader's formats
    (its config.formats), for `error_buckets`."""
    labels = [p.box for p in plates]
    boxes = [quad_box(c.corners) for c in candidates]
    located = match_boxes(labels, boxes)
    reported_idx = [j for j, c in enumerate(candidates) if c.reported]
    reported = {i: (reported_idx[k], iou)
                for i, (k, iou) in match_boxes(labels, [boxes[j] for j in reported_idx]).items()}
    exact = errors = raw_exact = raw_errors = 0
    for i, plate in enumerate(plates):
        text = candidates[reported[i][0]].text if i in reported else ""
        raw = candidates[located[i][0]].text if i in located else ""
        exact += text == plate.text
        raw_exact += raw == plate.text
        errors += edit_distance(text, plate.text)
        raw_errors += edit_distance(raw, plate.text)
    score = PhotoScore(plates=len(plates), located=len(located),
                       best_iou=[max((box_iou(a, b) for b in boxes), default=0.0) for a in labels],
                       exact=exact, errors=errors, raw_exact=raw_exact, raw_errors=raw_errors,
                       chars=sum(len(p.text) for p in plates), false=len(reported_idx) - len(reported),
                       located_by={i: j for i, (j, _) in located.items()},
                       reported_by={i: j for i, (j, _) in reported.items()})
    score.buckets = error_buckets(plates, candidates, score, accepted)
    return score


def error_buckets(plates: list[Plate], candidates: list, score: PhotoScore,
                  accepted: tuple[str, ...] | None = None) -> list[str]:
    """The error bucket of each labelled plate: the first of these that holds, so every plate is in
    exactly one ("located": a candidate's box is matched to it one to one at IoU >= 0.5, reported
    or not, as `recall` counts; "its text": that candidate's OCR text, voted over rereads, before
    the format check, as `raw_exact` compares):

    - read: a reported candidate matched to it reads exactly its text (the plates `exact` counts);
    - missed: no candidate's box overlaps it by IoU >= IOU_NEAR (0.1);
    - box_off: some candidate overlaps it by IoU >= 0.1, but none located it;
    - misread: located, its text is not the label;
    - wrong_format: located, its text right, but the text fits none of the `accepted` formats
      (ReaderParams.FORMATS), so the reader could not report it;
    - not_reported: located, its text right and of an accepted format, yet not reported as this
      plate: presence not over PRESENT_THRESHOLD, presence x text confidence under MIN_CONFIDENCE
      (TILE_MIN_CONFIDENCE for tile candidates and in photos), or another reading reported in its place
      (MAX_PLATES, an overlapping report, a report with a better overlap).

    The photo's reported candidates matched to no labelled plate are its false plates
    (`score.false`), apart. Without `accepted`, a located reading with no format counts as
    wrong_format even where its presence alone kept it from the format check."""
    buckets = []
    for i, plate in enumerate(plates):
        reported = candidates[score.reported_by[i]] if i in score.reported_by else None
        located = candidates[score.located_by[i]] if i in score.located_by else None
        if reported is not None and reported.text == plate.text:
            buckets.append("read")
        elif score.best_iou[i] < IOU_NEAR:
            buckets.append("missed")
        elif located is None:
            buckets.append("box_off")
        elif located.text != plate.text:
            buckets.append("misread")
        elif (located.format is None) if accepted is None else (formats.match(located.text, accepted) is None):
            buckets.append("wrong_format")
        else:
            buckets.append("not_reported")
    return buckets


def bucket_counts(scores: list[PhotoScore]) -> dict[str, int]:
    """Labelled plates per error bucket (every one of BUCKETS, 0 too), then the false plates."""
    counts = dict.fromkeys(BUCKETS, 0)
    for s in scores:
        for bucket in s.buckets:
            counts[bucket] += 1
    return {**counts, "false": sum(s.false for s in scores)}


def summarise(scores: list[PhotoScore]) -> dict[str, float | int]:
    """A dataset's metrics: counts, then recall, mean_iou, exact, cer, raw_exact, raw_cer and the
    error buckets' shares bucket_missed, ... (`exact` is the share read) over labelled plates (left
    out when there is none), and false_per_photo."""
    plates = sum(s.plates for s in scores)
    chars = sum(s.chars for s in scores)
    out: dict[str, float | int] = {"photos": len(scores), "plates": plates}
    if plates:
        out.update({
            "recall": sum(s.located for s in scores) / plates,
            "mean_iou": float(np.mean([iou for s in scores for iou in s.best_iou])),
            "exact": sum(s.exact for s in scores) / plates,
            "cer": sum(s.errors for s in scores) / chars,
            "raw_exact": sum(s.raw_exact for s in scores) / plates,
            "raw_cer": sum(s.raw_errors for s in scores) / chars,
        })
        counts = bucket_counts(scores)
        out.update({f"bucket_{bucket}": counts[bucket] / plates for bucket in BUCKETS if bucket != "read"})
    out["false_per_photo"] = sum(s.false for s in scores) / len(scores) if scores else 0.0
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def worst_first(scores: list[PhotoScore]) -> list[int]:
    """Photo indices, the worst first: most plates missed or misread plus false plates, then the
    OCR's own errors, then the worst localisation."""
    def badness(i):
        s = scores[i]
        return (-s.wrong, -(s.raw_errors / max(s.chars, 1)), min(s.best_iou, default=1.0), i)
    return sorted(range(len(scores)), key=badness)
