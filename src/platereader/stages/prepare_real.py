"""prepare_real: the photos of RealParams.TRAIN_DATASETS (folders under data/real) as training arrays
that train_localize and train_ocr mix into their synthetic ones (RealParams.TRAIN_SHARE).

Made the way prepare_localize and prepare_ocr make theirs, with their parameters, so the networks
see a real plate as they see a synthetic one:

- localizer, per photo: COPIES first-pass inputs, the whole photo fit to INPUT_SIZE and COPIES - 1
  random crops of half to all of each side that hold its largest plate (the target; a photo without
  a plate is present=False), fit the same way; per labelled plate, COPIES windows unwarped from its
  quad moved as prepare_localize moves them (WINDOW_SHIFT, WINDOW_SCALE, WINDOW_CORNER_NOISE,
  WINDOW_MARGIN); a photo without a plate gets windows on random plate-shaped quads;
- OCR, per labelled plate: COPIES crops rectified from its quad moved by up to CORNER_JITTER, with
  CROP_MARGIN.

A photo that is also in EVAL_DATASETS (same bytes, whatever its name) is refused: one line, nothing
written. Writes data/prepared/real/{localize,ocr}/train/*.npy, each with meta.json, and
data/prepared/real/meta.json (the datasets and the sha256 of every photo). With no dataset the
arrays are empty and the train stages train exactly as without real photos.
"""

import json
import os
import shutil

import numpy as np
import torch

import params
from platereader import realdata, validate
from platereader.datasets import item_rng, write_splits
from platereader.errors import run_main
from platereader.geometry.frames import fit_square, scene_to_frame, square_frames, window_inputs
from platereader.geometry.rectify import rectify, to_uint8
from platereader.synth.scenes import perturb_quad

OUT_DIR = "data/prepared/real"


def validate_params() -> None:
    p, loc, ocr = params.RealParams, params.PrepareLocalizeParams, params.PrepareOCRParams
    validate.integer(params, "SEED")
    validate.integer(p, "SEED")
    validate.integer(p, "COPIES", 1, 1000)
    validate.integer(loc, "INPUT_SIZE", 16, 1024)
    validate.pair(loc, "WINDOW_MARGIN", 0, 2)
    validate.pair(loc, "WINDOW_SHIFT", 0, 1)
    validate.number(loc, "WINDOW_SCALE", 0, 0.9)
    validate.pair(loc, "WINDOW_CORNER_NOISE", 0, 1)
    validate.integer(ocr, "CROP_HEIGHT", 8, 256)
    validate.integer(ocr, "CROP_WIDTH", 8, 1024)
    validate.pair(ocr, "CROP_MARGIN", 0, 0.5)
    validate.pair(ocr, "CORNER_JITTER", 0, 0.5)


def random_quad(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A plate-shaped quad anywhere in a photo without a plate: its window shows no plate."""
    w = rng.uniform(0.05, 0.3) * width
    h = min(w / rng.uniform(2.0, 5.0), height * 0.9)
    x0, y0 = rng.uniform(0, width - w), rng.uniform(0, height - h)
    return np.array([[x0, y0], [x0 + w, y0], [x0 + w, y0 + h], [x0, y0 + h]], np.float32)


def first_pass(photo: torch.Tensor, plate, rng: np.random.Generator, copies: int, size: int, margin):
    """`copies` whole-photo inputs: the photo, then crops holding `plate` (or anywhere without one)."""
    height, width = photo.shape[-2:]
    images, corners, frames = [], [], []
    for k in range(copies):
        f = 1.0 if k == 0 else rng.uniform(0.5, 1.0)
        cw, ch = max(1, round(width * f)), max(1, round(height * f))
        x_lo, y_lo, x_hi, y_hi = 0, 0, width - cw, height - ch
        if plate is not None:
            bx0, by0, bx1, by1 = plate.box
            x_lo, x_hi = max(0, int(np.ceil(bx1)) - cw), min(int(bx0), width - cw)
            y_lo, y_hi = max(0, int(np.ceil(by1)) - ch), min(int(by0), height - ch)
            if x_lo > x_hi or y_lo > y_hi:  # the plate does not fit in a crop this small
                cw, ch, x_lo, y_lo, x_hi, y_hi = width, height, 0, 0, 0, 0
        x0, y0 = int(rng.integers(x_lo, x_hi + 1)), int(rng.integers(y_lo, y_hi + 1))
        small, scale = fit_square(photo[..., y0:y0 + ch, x0:x0 + cw], size, torch.float64)
        images.append(small[0].numpy())
        corners.append(((plate.corners - [x0, y0]) * scale).astype(np.float32) if plate is not None
                       else np.zeros((4, 2), np.float32))
        frames.append(square_frames(*torch.tensor([[x0, y0, size / scale]], dtype=torch.float64).unbind(1),
                                    margin)[0].numpy())
    return images, corners, frames


def photo_arrays(photo: realdata.Photo, index: int) -> tuple[dict, dict]:
    """The localizer's and the OCR's samples of one photo, as lists per array name."""
    p, loc, ocr = params.RealParams, params.PrepareLocalizeParams, params.PrepareOCRParams
    size, margin, copies = loc.INPUT_SIZE, tuple(loc.WINDOW_MARGIN), p.COPIES
    rng = item_rng(params.SEED, p.SEED, index)
    image = torch.from_numpy(photo.load().copy())[None, None].to(torch.float64)
    largest = max(photo.plates, key=lambda plate: (plate.box[2] - plate.box[0]) * (plate.box[3] - plate.box[1]),
                  default=None)
    images, corners, frames = first_pass(image, largest, rng, copies, size, margin)
    present = [largest is not None] * copies
    localize = {"images": images, "corners": corners, "present": present, "zoomed": [False] * copies,
                "frames": frames}
    quads = ([perturb_quad(plate.corners, rng, loc.WINDOW_SHIFT, loc.WINDOW_SCALE, loc.WINDOW_CORNER_NOISE)
              for plate in photo.plates for _ in range(copies)] if photo.plates
             else [random_quad(rng, photo.height, photo.width) for _ in range(copies)])
    quads = torch.from_numpy(np.stack(quads))
    windows = window_inputs(image.expand(len(quads), -1, -1, -1), quads, size, margin, torch.float64)
    if photo.plates:
        truth = torch.from_numpy(np.stack([plate.corners for plate in photo.plates for _ in range(copies)]))
        window_corners = scene_to_frame(quads, truth, size, margin).numpy()
    else:
        window_corners = np.zeros((len(quads), 4, 2), np.float32)
    localize["images"] += list(windows.numpy())
    localize["corners"] += list(window_corners)
    localize["present"] += [bool(photo.plates)] * len(quads)
    localize["zoomed"] += [True] * len(quads)
    localize["frames"] += list(quads.numpy())
    texts, crops = [], []
    if photo.plates:
        jitter = ocr.CORNER_JITTER
        moved = np.stack([perturb_quad(plate.corners, rng, jitter, 0.0, (jitter[0] / 2, jitter[1] / 2))
                          for plate in photo.plates for _ in range(copies)])
        crops = list(to_uint8(rectify(image.expand(len(moved), -1, -1, -1), torch.from_numpy(moved),
                                      ocr.CROP_HEIGHT, ocr.CROP_WIDTH, ocr.CROP_MARGIN,
                                      torch.float64).squeeze(1)).numpy())
        texts = [plate.text for plate in photo.plates for _ in range(copies)]
    return localize, {"images": crops, "texts": texts}


def main() -> None:
    validate_params()
    p, loc, ocr = params.RealParams, params.PrepareLocalizeParams, params.PrepareOCRParams
    train = [realdata.load_dataset(name) for name in realdata.dataset_names(p, "TRAIN_DATASETS")]
    evaluated = [realdata.load_dataset(name) for name in realdata.dataset_names(p, "EVAL_DATASETS")]
    realdata.check_disjoint(train, evaluated)

    size, crop_h, crop_w = loc.INPUT_SIZE, ocr.CROP_HEIGHT, ocr.CROP_WIDTH
    localize = {"images": [], "corners": [], "present": [], "zoomed": [], "frames": []}
    reading = {"images": [], "texts": []}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the prepare stages: resampling sums in a thread-dependent order
    try:
        photos = [photo for dataset in train for photo in dataset.photos]
        for index, photo in enumerate(photos):
            a, b = photo_arrays(photo, index)
            for key in localize:
                localize[key] += a[key]
            for key in reading:
                reading[key] += b[key]
    finally:
        torch.set_num_threads(threads)
    width = max([len(t) for t in reading["texts"]] + [1])
    localize_arrays = {
        "images": np.array(localize["images"], np.uint8).reshape(-1, size, size),
        "corners": np.array(localize["corners"], np.float32).reshape(-1, 4, 2),
        "present": np.array(localize["present"], bool),
        "zoomed": np.array(localize["zoomed"], bool),
        "frames": np.array(localize["frames"], np.float32).reshape(-1, 4, 2)}
    ocr_arrays = {"images": np.array(reading["images"], np.uint8).reshape(-1, crop_h, crop_w),
                  "texts": np.array(reading["texts"], dtype=f"<U{width}")}

    tmp = OUT_DIR + ".tmp"  # whole or not at all: the folder replaces the old one once complete
    shutil.rmtree(tmp, ignore_errors=True)
    write_splits(f"{tmp}/localize", {"train": localize_arrays},
                 {"input_size": size, "window_margin": list(loc.WINDOW_MARGIN),
                  "train": len(localize_arrays["images"])})
    write_splits(f"{tmp}/ocr", {"train": ocr_arrays},
                 {"crop_height": crop_h, "crop_width": crop_w, "crop_margin": list(ocr.CROP_MARGIN),
                  "train": len(ocr_arrays["images"])})
    meta = {"datasets": {d.name: {"photos": len(d.photos), "plates": d.plates,
                                  "sha256": sorted(photo.sha256 for photo in d.photos)} for d in train}}
    with open(f"{tmp}/meta.json", "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")
    shutil.rmtree(OUT_DIR, ignore_errors=True)
    os.replace(tmp, OUT_DIR)
    print(f"prepare_real: {len(photos)} photos of {[d.name for d in train]} -> {len(localize_arrays['images'])} "
          f"localizer samples and {len(ocr_arrays['images'])} OCR crops in {OUT_DIR}")


if __name__ == "__main__":
    run_main(main)
