"""prepare_localize: scenes -> localizer inputs with corner and present labels, for both passes.

Each scene gives two samples: the whole scene shrunk to INPUT_SIZE (the first pass) and a window
unwarped from its plate's quad moved about as the first pass errs (WINDOW_SHIFT, WINDOW_SCALE,
WINDOW_CORNER_NOISE), widened by WINDOW_MARGIN (the later passes; platereader/geometry/frames.py).
A scene without a plate gives a window on a random plate-shaped quad.
Writes data/prepared/localize/{train,val}/{images,corners,present,zoomed,frames}.npy and meta.json
(`frames`: the scene quad each input shows, to map corners back to scene pixels); sample images
with their true quads under out/prepared/localize/plots/images/.
"""

from functools import partial

import numpy as np
import torch

import params
from platereader import validate
from platereader.datasets import build, item_rng, split_sizes, write_splits
from platereader.errors import run_main
from platereader.geometry.frames import fit_square, scene_to_frame, whole_scene_frames, window_inputs
from platereader.plots import GREEN, log_images, overlay
from platereader.synth.scenes import (make_scene, perturb_quad, validate_scene_params, validate_stage_formats,
                                      with_formats)

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
    validate.pair(p, "WINDOW_MARGIN", 0, 2)
    validate.pair(p, "WINDOW_SHIFT", 0, 1)
    validate.number(p, "WINDOW_SCALE", 0, 0.9)
    validate.pair(p, "WINDOW_CORNER_NOISE", 0, 1)
    validate_stage_formats(params.GeneratorParams, p)


def random_quad(rng: np.random.Generator, scene_size: int) -> np.ndarray:
    """A plate-shaped quad anywhere in the scene: the window of a scene without a plate."""
    width = rng.uniform(0.3, 0.9) * scene_size
    height = width / rng.uniform(3.5, 4.7)
    x0, y0 = rng.uniform(0, scene_size - width), rng.uniform(0, scene_size - height)
    return np.array([[x0, y0], [x0 + width, y0], [x0 + width, y0 + height], [x0, y0 + height]], np.float32)


def make_chunk(start: int, stop: int, base_seed: int, stage_seed: int, gen, scene_size: int,
               p) -> dict[str, np.ndarray]:
    """Scenes [start, stop) as first-pass inputs and windows, with labels; `p` the
    PrepareLocalizeParams (input size, the window's margin and errors, the plate formats)."""
    input_size, margin = p.INPUT_SIZE, tuple(p.WINDOW_MARGIN)
    gen = with_formats(gen, p.FORMATS)  # here, not in the caller: the worker processes get picklable params
    scenes, frames = [], []
    for index in range(start, stop):
        rng = item_rng(base_seed, stage_seed, index)
        scene = make_scene(rng, gen, scene_size)
        scenes.append(scene)
        frames.append(perturb_quad(scene.corners, rng, p.WINDOW_SHIFT, p.WINDOW_SCALE, p.WINDOW_CORNER_NOISE)
                      if scene.present else random_quad(rng, scene_size))
    # float64 resampling: pixel flips between runs become rare (see `rectify`).
    images = torch.from_numpy(np.stack([s.image for s in scenes])).unsqueeze(1)
    small, scale = fit_square(images, input_size, torch.float64)
    frames = torch.from_numpy(np.stack(frames))
    windows = window_inputs(images, frames, input_size, margin, torch.float64)
    corners = np.stack([s.corners for s in scenes])
    present = np.array([s.present for s in scenes], dtype=bool)
    window_corners = scene_to_frame(frames, torch.from_numpy(corners), input_size, margin)
    window_corners[~torch.from_numpy(present)] = 0
    return {"images": small.numpy(), "corners": (corners * scale).astype(np.float32), "present": present,
            "frames": whole_scene_frames(torch.full((len(scenes),), scale), input_size, margin).numpy(),
            "window_images": windows.numpy(), "window_corners": window_corners.numpy(),
            "window_frames": frames.numpy()}


def both_passes(data: dict[str, np.ndarray], part: slice) -> dict[str, np.ndarray]:
    """The scenes of one split, whole then windowed, as one set of training arrays."""
    n = len(data["images"][part])
    return {"images": np.concatenate([data["images"][part], data["window_images"][part]]),
            "corners": np.concatenate([data["corners"][part], data["window_corners"][part]]),
            "present": np.concatenate([data["present"][part], data["present"][part]]),
            "zoomed": np.repeat(np.array([False, True]), n),
            "frames": np.concatenate([data["frames"][part], data["window_frames"][part]])}


def main() -> None:
    validate_params()
    p = params.PrepareLocalizeParams
    data = build(p.MAX_IMAGES, partial(make_chunk, base_seed=params.SEED, stage_seed=p.SEED,
                                       gen=params.GeneratorParams, scene_size=params.SCENE_SIZE,
                                       p=p),
                 params.MULTIPROCESSING, "prepare_localize")
    n_train, n_val = split_sizes(p.MAX_IMAGES, p.VAL_SPLIT)
    splits = {"train": both_passes(data, slice(0, n_train)), "val": both_passes(data, slice(n_train, None))}
    meta = {"scene_size": params.SCENE_SIZE, "input_size": p.INPUT_SIZE, "train": n_train, "val": n_val,
            "scale": p.INPUT_SIZE / params.SCENE_SIZE, "window_margin": list(p.WINDOW_MARGIN)}
    write_splits(OUT_DIR, splits, meta)
    samples = {}
    for i in range(min(NUM_SAMPLES, n_val)):
        for prefix in ("", "window_"):
            quads = [(data[prefix + "corners"][n_train + i], GREEN)] if data["present"][n_train + i] else []
            samples[f"val_{i}{'_window' if prefix else ''}.png"] = overlay(data[prefix + "images"][n_train + i], quads,
                                                                          scale=4)
    log_images(PLOTS_DIR, samples)
    print(f"prepare_localize: {n_train} train + {n_val} val scenes -> {OUT_DIR}")


if __name__ == "__main__":
    run_main(main)
