"""Which of the generator's degradations the reader loses plates to; no DVC run needed.

    python -m scripts.degradations [--models out/models] [--seeds 13 21] [--images 2000]

Reads fresh scenes of seeds no stage uses twice: as generated, and as their clean twins, the same
scenes (plate, text, geometry, background) without the photometric degradations (motion blur,
blur, shade, noise, brightness, resize, JPEG and the pad frame: `compose_scene(photometric=False)`).
Then, for each augmentation code, val_acc over the scenes that drew it and over those that did not,
and the clean twins' val_acc over the same scenes; and motion blur by plate width. What the
reader loses to a degradation is the gap between a row's scenes and their clean twins.
"""

import numpy as np

import params
from platereader.datasets import item_rng
from platereader.errors import run_main
from platereader.scoring import inspect_all, score
from platereader.synth.augment import AUG_CODES
from platereader.synth.scenes import compose_scene
from scripts.common import add_reader_options, check_fresh, load_reader, parser

WIDTH_BANDS = (0.0, 0.45, 0.6, 1.01)  # plate width as a share of the scene side


def rate(right: np.ndarray, where: np.ndarray) -> str:
    """val_acc over the scenes `where` picks and how many, "-" for none (a small --images)."""
    return f"{right[where].mean():.4f} ({where.sum()})" if where.any() else "- (0)"


def main() -> None:
    ap = parser(__doc__)
    add_reader_options(ap)
    ap.add_argument("--seeds", type=int, nargs="+", default=[13, 21])
    ap.add_argument("--images", type=int, default=2000, help="scenes per seed")
    args = ap.parse_args()
    check_fresh(args.seeds, "--seeds", args.images, args.batch)
    gen, size = params.GeneratorParams, params.SCENE_SIZE
    real, clean = [], []
    for seed in args.seeds:
        for i in range(args.images):
            real.append(compose_scene(item_rng(params.SEED, seed, i), gen, size))
            clean.append(compose_scene(item_rng(params.SEED, seed, i), gen, size, photometric=False))
    texts = np.array([s.text for s in real])
    present = np.array([s.present for s in real])
    reader = load_reader(args.models)
    right, clean_right = ([score(inspect_all(reader, np.stack([s.image for s in scenes]), args.batch)[0],
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
        print(f"  {lo:.2f}-{min(hi, 1):.2f}: {rate(right, band & blurred)} / {rate(right, band & ~blurred)}")


if __name__ == "__main__":
    run_main(main)
