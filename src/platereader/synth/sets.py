"""Labelled scene sets as arrays: the stack's test set and the fresh sets scripts score models on."""

from __future__ import annotations

import numpy as np

from platereader import formats
from platereader.datasets import item_rng
from platereader.errors import UserError
from platereader.synth.scenes import compose_scene, make_scene, text_length

MAX_TEXT = formats.SWISS.max_length  # the default generator draws Swiss plates only
TEXT_DTYPE = f"<U{MAX_TEXT}"


def text_dtype(gen) -> str:
    """The dtype of the texts of `gen`'s scenes: as wide as the longest plate of its formats
    (TEXT_DTYPE for Swiss plates only)."""
    return f"<U{text_length(gen)}"


def scene_arrays(start: int, stop: int, base_seed: int, stage_seed: int, gen, scene_size: int,
                 clean_twins: bool = False) -> dict[str, np.ndarray]:
    """Scenes [start, stop) of a seed as arrays: images, corners, present, texts ("" = no plate);
    with `clean_twins` also clean_images, the same scenes without their photometric degradations
    (same plate, geometry and background), which tell unreadable plates from misread ones."""
    scenes = [make_scene(item_rng(base_seed, stage_seed, i), gen, scene_size) for i in range(start, stop)]
    arrays = {"images": np.stack([s.image for s in scenes]),
              "corners": np.stack([s.corners for s in scenes]).astype(np.float32),
              "present": np.array([s.present for s in scenes], dtype=bool),
              "texts": np.array([s.text for s in scenes], dtype=text_dtype(gen))}
    if clean_twins:
        arrays["clean_images"] = np.stack([
            compose_scene(item_rng(base_seed, stage_seed, i), gen, scene_size, photometric=False).image
            for i in range(start, stop)])
    return arrays


def check_unused_seeds(seeds, option: str, taken) -> None:
    """Scenes made to test trained models must come from seeds no prepare stage uses (`taken`);
    `option` names the command-line option that gave them."""
    clash = sorted(set(taken) & set(seeds))
    if clash:
        raise UserError(f"{option} {clash}: a seed of a training set or of the stack set (params.py), pick others")
