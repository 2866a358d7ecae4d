"""Which of the generator's degradations the reader loses plates to; no DVC run needed.

    python scripts/degradations.py [--models out/models] [--seeds 13 21] [--images 2000]

Reads fresh scenes of seeds no stage uses twice: as generated, and as their clean twins, the same
scenes (plate, text, geometry, background) without the photometric degradations (motion blur,
blur, shade, noise, brightness, resize, JPEG and the pad frame: `compose_scene(photometric=False)`).
Then, for each augmentation code, val_acc over the scenes that drew it and over those that did not,
and the clean twins' val_acc over the same scenes; and motion blur by plate width. What the
reader loses to a degradation is the gap between a row's scenes and their clean twins.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import params  # noqa: E402
from platereader.synth.augment import AUG_CODES  # noqa: E402
from platereader.datasets import item_rng  # noqa: E402
from platereader.synth.scenes import compose_scene  # noqa: E402
from platereader.stages.evaluate_stack import read_all, score  # noqa: E402
from platereader.stages.prepare_stack import check_unused_seeds  # noqa: E402
from platereader.reader import PlateReader  # noqa: E402
from platereader.errors import UserError, run_main  # noqa: E402

WIDTH_BANDS = (0.0, 0.45, 0.6, 1.01)  # plate width as a share of the scene side


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="out/models")
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 21])
    parser.add_argument("--images", type=int, default=2000, help="scenes per seed")
    parser.add_argument("--batch", type=int, default=params.EvaluateParams.BATCH_SIZE)
    args = parser.parse_args()
    check_unused_seeds(args.seeds, "--seeds")
    if args.images < 1 or args.batch < 1:
        raise UserError("--images and --batch must be at least 1")
    gen, size = params.GeneratorParams, params.SCENE_SIZE
    real, clean = [], []
    for seed in args.seeds:
        for i in range(args.images):
            real.append(compose_scene(item_rng(params.SEED, seed, i), gen, size))
            clean.append(compose_scene(item_rng(params.SEED, seed, i), gen, size, photometric=False))
    texts = np.array([s.text for s in real])
    present = np.array([s.present for s in real])
    reader = PlateReader.load(args.models)
    right, clean_right = ([score(read_all(reader, np.stack([s.image for s in scenes]), args.batch)[0],
                                 texts, present)[0] for scenes in (real, clean)])
    print(f"{len(real)} scenes of seeds {' '.join(map(str, args.seeds))}: val_acc {right.mean():.4f} as "
          f"generated, {clean_right.mean():.4f} as clean twins; {(~right).sum()} wrong, "
          f"{(~right & clean_right).sum()} of them read right as clean twins")
    print(f"{'code':6s} {'scenes':>6s} {'val_acc':>8s} {'without':>8s} {'wrong':>6s} {'clean twins':>12s}")
    for code in AUG_CODES + ("jpeg",):
        has = np.array([code in s.augmentations for s in real])
        if has.any():
            print(f"{code:6s} {has.sum():6d} {right[has].mean():8.4f} {right[~has].mean():8.4f} "
                  f"{(~right[has]).sum():6d} {clean_right[has].mean():12.4f}")
    width = np.array([np.linalg.norm(s.corners[1] - s.corners[0]) / size for s in real])
    blurred = np.array(["mot" in s.augmentations for s in real])
    print("plates by width (share of the scene side): val_acc with motion blur / without (scenes)")
    for lo, hi in zip(WIDTH_BANDS, WIDTH_BANDS[1:]):
        band = present & (width >= lo) & (width < hi)
        print(f"  {lo:.2f}-{min(hi, 1):.2f}: {right[band & blurred].mean():.4f} ({(band & blurred).sum()}) / "
              f"{right[band & ~blurred].mean():.4f} ({(band & ~blurred).sum()})")


if __name__ == "__main__":
    run_main(main)
