"""Accuracy of trained models on fresh generator scenes, from seeds no stage uses; no DVC run needed.

    python scripts/fresh_seeds.py [--models out/models [DIR ...]] [--seeds 13 21] [--images 4000]
                                  [--reread-below 0.3 [X ...]] [--reread-shifts 0,-0.12/0,0.12 [S ...]]
                                  [--min-confidence 0.02 [X ...]] [--precision int8 float]

For every models folder, precision (the int8 copies the reader runs, or the float networks), seed,
`reread_below` (the reader's REREAD_BELOW; 1.0 re-reads every plate) and set of reread shifts (its
REREAD_SHIFTS: dx,dy pairs, shares of the plate's width and height, joined by /; start a set with a
pair whose dx is not negative, or argparse takes it for an option) and floor of presence x text
confidence under which no plate is reported (its MIN_CONFIDENCE) prints val_acc, plate_acc
and no_plate_acc as evaluate_stack scores them, plus the stack test set's (data/prepared/stack)
when it exists. Compare models or reader settings on 10 000 scenes
instead of the stack set's 2 000 (one standard error ±0.5 points there, ±0.23 on 10 000).
"""

import argparse
import itertools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import params  # noqa: E402
from platereader.datasets import load_split  # noqa: E402
from platereader.stages.evaluate_stack import DATA_DIR, read_all, score  # noqa: E402
from platereader.stages.prepare_stack import check_unused_seeds, make_chunk  # noqa: E402
from platereader.reader import MIN_CONFIDENCE, REREAD_BELOW, REREAD_SHIFTS, PlateReader  # noqa: E402
from platereader.errors import UserError, run_main  # noqa: E402


def format_shifts(shifts) -> str:
    return "/".join(f"{dx:g},{dy:g}" for dx, dy in shifts)


def parse_shifts(value: str) -> tuple[tuple[float, float], ...]:
    """"0,-0.12/0,0.12" -> ((0.0, -0.12), (0.0, 0.12))."""
    try:
        shifts = tuple(tuple(float(v) for v in pair.split(",")) for pair in value.split("/"))
    except ValueError:
        shifts = ()
    if not shifts or any(len(pair) != 2 for pair in shifts):
        raise UserError(f"--reread-shifts {value!r}: expected dx,dy pairs joined by /, e.g. 0,-0.12/0,0.12")
    return shifts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["out/models"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 21])
    parser.add_argument("--images", type=int, default=4000, help="scenes per seed")
    parser.add_argument("--reread-below", type=float, nargs="+", default=[REREAD_BELOW])
    parser.add_argument("--reread-shifts", nargs="+", type=str,
                        default=[format_shifts(REREAD_SHIFTS)])
    parser.add_argument("--min-confidence", type=float, nargs="+", default=[MIN_CONFIDENCE])
    parser.add_argument("--precision", nargs="+", choices=["int8", "float"], default=["int8"])
    parser.add_argument("--batch", type=int, default=params.EvaluateParams.BATCH_SIZE)
    args = parser.parse_args()
    shift_sets = [parse_shifts(value) for value in args.reread_shifts]
    check_unused_seeds(args.seeds, "--seeds")
    if args.images < 1 or args.batch < 1:
        raise UserError("--images and --batch must be at least 1")
    sets = {}
    if os.path.isdir(DATA_DIR):
        sets["stack set"] = load_split(DATA_DIR, "test")
    for seed in args.seeds:
        sets[f"seed {seed}"] = make_chunk(0, args.images, params.SEED, seed, params.GeneratorParams, params.SCENE_SIZE)
    for models, precision in ((m, p) for m in args.models for p in args.precision):
        reader = PlateReader.load(models, int8=precision == "int8")
        run = f"{models} {'int8' if reader.int8 else 'float'}"  # float where the files hold no int8 copy
        for reread_below, shifts, floor in itertools.product(args.reread_below, shift_sets, args.min_confidence):
            reader.reread_below, reader.reread_shifts, reader.min_confidence = reread_below, shifts, floor
            setting = f"{run} reread_below {reread_below} shifts {format_shifts(shifts)} min_confidence {floor}"
            pooled = []
            for name, data in sets.items():
                answers, per_s = read_all(reader, data["images"], args.batch)
                correct, acc = score(answers, data["texts"], data["present"])
                pooled.append(correct)
                print(f"{setting}: {name:9s} ({len(correct)} scenes) "
                      + ", ".join(f"{k} {v:.4f}" for k, v in acc.items())
                      + f" ({per_s:.0f} scenes/s)")
            print(f"{setting}: all {sum(map(len, pooled))} scenes val_acc {np.concatenate(pooled).mean():.4f}")


if __name__ == "__main__":
    run_main(main)
