"""prepare_stack: a held-out scene set from its own seed, never used for training.

Writes data/prepared/stack/test/{images,corners,present,texts}.npy (full-size scenes) and meta.json.
"""

from functools import partial

import numpy as np

import params
from src.datasets.build import build, item_rng, write_splits
from src.datasets.scenes import make_scene, validate_scene_params
from src.utils import validate
from src.utils.errors import UserError, run_main
from src.utils.plots import GREEN, log_images, overlay

OUT_DIR = "data/prepared/stack"
PLOTS_DIR = "out/prepared/stack"
NUM_SAMPLES = 8


def check_unused_seeds(seeds, option: str) -> None:
    """Scenes made to test trained models (scripts/fresh_seeds.py, scripts/robustness.py) must come
    from seeds no prepare stage uses; `option` names the command-line option that gave them."""
    taken = sorted({params.PrepareLocalizeParams.SEED, params.PrepareOCRParams.SEED,
                    params.PrepareStackParams.SEED} & set(seeds))
    if taken:
        raise UserError(f"{option} {taken}: a seed of a training set or of the stack set (params.py), pick others")


def validate_params() -> None:
    validate_scene_params(params)
    p = params.PrepareStackParams
    validate.integer(p, "SEED")
    validate.integer(p, "MAX_IMAGES", 1)
    other_seeds = {params.PrepareLocalizeParams.SEED, params.PrepareOCRParams.SEED}
    if p.SEED in other_seeds:
        raise UserError(f"params.py:PrepareStackParams.SEED = {p.SEED} is also a training set's seed: "
                        "the stack set must come from its own seed, pick another value")


def make_chunk(start: int, stop: int, base_seed: int, stage_seed: int, gen, scene_size: int):
    scenes = [make_scene(item_rng(base_seed, stage_seed, i), gen, scene_size) for i in range(start, stop)]
    return {"images": np.stack([s.image for s in scenes]),
            "corners": np.stack([s.corners for s in scenes]).astype(np.float32),
            "present": np.array([s.present for s in scenes], dtype=bool),
            "texts": np.array([s.canton + s.number for s in scenes], dtype="<U8")}


def main() -> None:
    validate_params()
    p = params.PrepareStackParams
    data = build(p.MAX_IMAGES, partial(make_chunk, base_seed=params.SEED, stage_seed=p.SEED,
                                       gen=params.GeneratorParams, scene_size=params.SCENE_SIZE),
                 params.MULTIPROCESSING, "prepare_stack")
    write_splits(OUT_DIR, {"test": data}, {"scene_size": params.SCENE_SIZE, "test": p.MAX_IMAGES})
    samples = {f"test_{i}.png": overlay(data["images"][i], [(data["corners"][i], GREEN)] if data["present"][i] else [],
                                        caption=str(data["texts"][i]) or "(no plate)")
               for i in range(min(NUM_SAMPLES, p.MAX_IMAGES))}
    log_images(PLOTS_DIR, samples)
    print(f"prepare_stack: {p.MAX_IMAGES} scenes -> {OUT_DIR}")


if __name__ == "__main__":
    run_main(main)
