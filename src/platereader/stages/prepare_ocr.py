"""prepare_ocr: scenes -> plate crops rectified from the true corners (with jitter) + text labels.

The jitter moves the quad by up to CORNER_JITTER = [share of the plate's width, share of its
height], and each corner by up to half that, so the OCR learns to read the slightly off crops the
localizer's predicted corners give in the stack. A two-row plate gives the crop of one of its rows
(drawn at random), cut from the jittered quad as the reader cuts it (geometry.quads.ROWS), with that
row's text.
Writes data/prepared/ocr/{train,val}/{images,texts}.npy and meta.json.
"""

from functools import partial

import numpy as np
import torch

import params
from platereader import validate
from platereader.datasets import build, item_rng, split_sizes, write_splits
from platereader.errors import UserError, run_main
from platereader.geometry.quads import ROWS, row_quad
from platereader.geometry.rectify import rectify, to_uint8
from platereader.plots import log_images, overlay
from platereader.synth.scenes import (make_scene, perturb_quad, text_length, validate_augmentations,
                                      validate_generator_params, validate_scene_params, validate_stage_formats,
                                      with_augmentations, with_formats)
from platereader.synth.sets import text_dtype

OUT_DIR = "data/prepared/ocr"
PLOTS_DIR = "out/prepared/ocr"
NUM_SAMPLES = 8


def validate_params() -> None:
    validate_scene_params(params)
    if params.GeneratorParams.NO_PLATE_RATE >= 1:
        raise UserError("params.py:GeneratorParams.NO_PLATE_RATE = 1 leaves no plates for the OCR set: "
                        "use a value below 1")
    p = params.PrepareOCRParams
    validate.integer(p, "SEED")
    validate.integer(p, "MAX_IMAGES", 2)
    validate.number(p, "VAL_SPLIT", 0, 1, low_open=True, high_open=True)
    validate.integer(p, "CROP_HEIGHT", 8, 256)
    if p.CROP_HEIGHT % 8:
        raise UserError(f"params.py:PrepareOCRParams.CROP_HEIGHT = {p.CROP_HEIGHT}: expected a multiple of 8")
    validate_augmentations(p, allow_all_zero=True)
    validate_stage_formats(params.GeneratorParams, p)
    gen = ocr_generator(params.GeneratorParams, p.AUGMENTATIONS, p.FORMATS)
    validate_generator_params(gen)
    validate.integer(p, "CROP_WIDTH", 8 * text_length(gen), 1024)  # CTC needs ~2 steps per char
    if p.CROP_WIDTH % 4:
        raise UserError(f"params.py:PrepareOCRParams.CROP_WIDTH = {p.CROP_WIDTH}: expected a multiple of 4")
    validate.pair(p, "CROP_MARGIN", 0, 0.5)
    validate.pair(p, "CORNER_JITTER", 0, 0.5)


def ocr_generator(gen, augmentations: dict, formats: dict):
    """The generator the OCR's scenes come from: `gen` with the stage's augmentation and plate
    format weights in place of some of its own."""
    return with_formats(with_augmentations(gen, augmentations), formats)


def make_chunk(start: int, stop: int, base_seed: int, stage_seed: int, gen, scene_size: int,
               crop_h: int, crop_w: int, margin: list[float], jitter: list[float],
               augmentations: dict, formats: dict | None = None) -> dict[str, np.ndarray]:
    gen = ocr_generator(gen, augmentations, formats or {})
    scenes, corners, texts = [], [], []
    for index in range(start, stop):
        rng = item_rng(base_seed, stage_seed, index)
        scene = make_scene(rng, gen, scene_size)
        while not scene.present:  # the OCR set holds plates only; draw again from the same RNG
            scene = make_scene(rng, gen, scene_size)
        scenes.append(scene.image)
        quad = perturb_quad(scene.corners, rng, jitter, 0.0, (jitter[0] / 2, jitter[1] / 2))
        text = scene.text
        if scene.rows:
            row = int(rng.integers(len(scene.rows)))
            quad, text = row_quad(quad, ROWS[row]).astype(np.float32), scene.rows[row]
        corners.append(quad)
        texts.append(text)
    crops = rectify(torch.from_numpy(np.stack(scenes)).unsqueeze(1), torch.from_numpy(np.stack(corners)),
                    crop_h, crop_w, margin, torch.float64)  # float64: pixel flips between runs become rare
    images = to_uint8(crops.squeeze(1)).numpy()
    return {"images": images, "texts": np.array(texts, dtype=text_dtype(gen))}


def main() -> None:
    validate_params()
    p = params.PrepareOCRParams
    data = build(p.MAX_IMAGES, partial(make_chunk, base_seed=params.SEED, stage_seed=p.SEED,
                                       gen=params.GeneratorParams, scene_size=params.SCENE_SIZE,
                                       crop_h=p.CROP_HEIGHT, crop_w=p.CROP_WIDTH, margin=p.CROP_MARGIN,
                                       jitter=p.CORNER_JITTER, augmentations=p.AUGMENTATIONS,
                                       formats=p.FORMATS),
                 params.MULTIPROCESSING, "prepare_ocr")
    n_train, n_val = split_sizes(p.MAX_IMAGES, p.VAL_SPLIT)
    splits = {"train": {k: v[:n_train] for k, v in data.items()},
              "val": {k: v[n_train:] for k, v in data.items()}}
    meta = {"crop_height": p.CROP_HEIGHT, "crop_width": p.CROP_WIDTH, "crop_margin": p.CROP_MARGIN,
            "train": n_train, "val": n_val}
    write_splits(OUT_DIR, splits, meta)
    samples = {f"val_{i}.png": overlay(data["images"][n_train + i], caption=str(data["texts"][n_train + i]))
               for i in range(min(NUM_SAMPLES, n_val))}
    log_images(PLOTS_DIR, samples)
    print(f"prepare_ocr: {n_train} train + {n_val} val crops -> {OUT_DIR}")


if __name__ == "__main__":
    run_main(main)
