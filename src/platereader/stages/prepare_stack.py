"""prepare_stack: a held-out scene set from its own seed, never used for training.

Writes data/prepared/stack/test/{images,clean_images,corners,present,texts}.npy (full-size scenes,
and their clean twins: the same scenes without photometric degradations) and meta.json.
"""

from functools import partial

import params
from platereader import validate
from platereader.datasets import build, write_splits
from platereader.errors import UserError, run_main
from platereader.plots import GREEN, log_images, overlay
from platereader.synth.scenes import validate_scene_params
from platereader.synth.sets import scene_arrays

OUT_DIR = "data/prepared/stack"
PLOTS_DIR = "out/prepared/stack"
NUM_SAMPLES = 8


def validate_params() -> None:
    validate_scene_params(params)
    p = params.PrepareStackParams
    validate.integer(p, "SEED")
    validate.integer(p, "MAX_IMAGES", 1)
    if p.SEED in {params.PrepareLocalizeParams.SEED, params.PrepareOCRParams.SEED}:
        raise UserError(f"params.py:PrepareStackParams.SEED = {p.SEED} is also a training set's seed: "
                        "the stack set must come from its own seed, pick another value")


def main() -> None:
    validate_params()
    p = params.PrepareStackParams
    data = build(p.MAX_IMAGES, partial(scene_arrays, base_seed=params.SEED, stage_seed=p.SEED,
                                       gen=params.GeneratorParams, scene_size=params.SCENE_SIZE, clean_twins=True),
                 params.MULTIPROCESSING, "prepare_stack")
    write_splits(OUT_DIR, {"test": data}, {"scene_size": params.SCENE_SIZE, "test": p.MAX_IMAGES})
    samples = {f"test_{i}.png": overlay(data["images"][i], [(data["corners"][i], GREEN)] if data["present"][i] else [],
                                        caption=str(data["texts"][i]) or "(no plate)")
               for i in range(min(NUM_SAMPLES, p.MAX_IMAGES))}
    log_images(PLOTS_DIR, samples)
    print(f"prepare_stack: {p.MAX_IMAGES} scenes -> {OUT_DIR}")


if __name__ == "__main__":
    run_main(main)
