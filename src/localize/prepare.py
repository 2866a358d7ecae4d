"""prepare_localize: scenes -> downscaled localizer inputs with corner and present labels.

Writes data/prepared/localize/{train,val}/{images,corners,present}.npy and meta.json;
sample images with their true quads under out/prepared/localize/plots/images/.
"""

from functools import partial

import numpy as np
from PIL import Image

import params
from src.datasets.build import build, item_rng, split_sizes, write_splits
from src.datasets.scenes import make_scene, validate_scene_params
from src.models.preprocess import fit_square
from src.utils import validate
from src.utils.errors import run_main
from src.utils.plots import GREEN, log_images, overlay

OUT_DIR = "data/prepared/localize"
PLOTS_DIR = "out/prepared/localize"
NUM_SAMPLES = 8


def validate_params() -> None:
    validate_scene_params(params)
    p = params.PrepareLocalizeParams
    validate.integer(p, "SEED")
    validate.integer(p, "MAX_IMAGES", 2)
    validate.number(p, "VAL_SPLIT", 0, 1, low_open=True, high_open=True)
    validate.integer(p, "INPUT_SIZE", 16, params.SCENE_SIZE)


def make_chunk(start: int, stop: int, base_seed: int, stage_seed: int, gen, scene_size: int,
               input_size: int) -> dict[str, np.ndarray]:
    images, corners, present = [], [], []
    for index in range(start, stop):
        scene = make_scene(item_rng(base_seed, stage_seed, index), gen, scene_size)
        small, scale = fit_square(Image.fromarray(scene.image), input_size)
        images.append(small)
        corners.append(scene.corners * scale)
        present.append(scene.present)
    return {"images": np.stack(images), "corners": np.stack(corners).astype(np.float32),
            "present": np.array(present, dtype=bool)}


def main() -> None:
    validate_params()
    p = params.PrepareLocalizeParams
    data = build(p.MAX_IMAGES, partial(make_chunk, base_seed=params.SEED, stage_seed=p.SEED,
                                       gen=params.GeneratorParams, scene_size=params.SCENE_SIZE,
                                       input_size=p.INPUT_SIZE),
                 params.MULTIPROCESSING, "prepare_localize")
    n_train, n_val = split_sizes(p.MAX_IMAGES, p.VAL_SPLIT)
    splits = {"train": {k: v[:n_train] for k, v in data.items()},
              "val": {k: v[n_train:] for k, v in data.items()}}
    meta = {"scene_size": params.SCENE_SIZE, "input_size": p.INPUT_SIZE, "train": n_train, "val": n_val,
            "scale": p.INPUT_SIZE / params.SCENE_SIZE}
    write_splits(OUT_DIR, splits, meta)
    samples = {}
    for i in range(min(NUM_SAMPLES, n_val)):
        quads = [(data["corners"][n_train + i], GREEN)] if data["present"][n_train + i] else []
        samples[f"val_{i}.png"] = overlay(data["images"][n_train + i], quads, scale=4)
    log_images(PLOTS_DIR, samples)
    print(f"prepare_localize: {n_train} train + {n_val} val scenes -> {OUT_DIR}")


if __name__ == "__main__":
    run_main(main)
