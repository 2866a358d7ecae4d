"""Accuracy of trained models on fresh generator scenes, from seeds no stage uses; no DVC run needed.

    python -m scripts.fresh_seeds [--models out/models [DIR ...]] [--seeds 13 21] [--images 4000]
                                  [--reread-below 0.3 [X ...]] [--reread-shifts 0,-0.12/0,0.12 [S ...]]
                                  [--min-confidence 0.02 [X ...]] [--precision int8 float]
                                  [--formats brazil=1 eu=1] [--two-row-rate 1.0]

For every models folder, precision (the int8 copies the reader runs, or the float networks), seed,
`reread_below` (ReaderParams.REREAD_BELOW; 1.0 re-reads every plate), set of reread shifts
(REREAD_SHIFTS: dx,dy pairs, shares of the plate's width and height, joined by /; start a set with
a pair whose dx is not negative, or argparse takes it for an option) and floor of presence x text
confidence under which no plate is reported (MIN_CONFIDENCE), prints val_acc, plate_acc and
no_plate_acc as evaluate_stack scores them, plus the stack test set's (data/prepared/stack) when
it exists. --formats draws the scenes' plates from those formats instead (GeneratorParams.FORMATS,
NAME=WEIGHT), which the reader then accepts, and --two-row-rate sets GeneratorParams.TWO_ROW_RATE
(1.0: two-row plates only, where a format has them); the stack set is then left out. Every other setting is params.py's. Compare models or reader settings on 10 000 scenes
or more instead of the stack set's 2 000 (one standard error ±0.5 points there, ±0.23 on 10 000).
"""

import itertools
import os

import numpy as np

import params
from platereader.datasets import load_split
from platereader.errors import UserError, run_main
from platereader.scoring import inspect_all, score
from platereader.synth.plate_formats import format_names
from platereader.synth.scenes import validate_generator_params
from scripts.common import STACK_DIR, check_fresh, fresh_set, load_reader, parser, precision


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


def generator(items: list[str], two_row_rate: float | None):
    """params.py:GeneratorParams with --formats NAME=WEIGHT items and --two-row-rate in place, checked,
    and the reader's formats for its scenes (no change where neither is given)."""
    changes = {}
    if items:
        try:
            changes["FORMATS"] = {name: float(weight) for name, weight in (item.split("=") for item in items)}
        except ValueError:
            raise UserError(f"--formats {' '.join(items)}: expected NAME=WEIGHT items, e.g. brazil=1 eu=1") from None
    if two_row_rate is not None:
        changes["TWO_ROW_RATE"] = two_row_rate
    if not changes:
        return params.GeneratorParams, {}
    gen = type("GeneratorParams", (params.GeneratorParams,), changes)
    validate_generator_params(gen)
    return gen, {"formats": format_names(gen)}


def main() -> None:
    p = params.ReaderParams
    ap = parser(__doc__)
    ap.add_argument("--models", nargs="+", default=["out/models"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[13, 21])
    ap.add_argument("--images", type=int, default=4000, help="scenes per seed")
    ap.add_argument("--reread-below", type=float, nargs="+", default=[p.REREAD_BELOW])
    ap.add_argument("--reread-shifts", nargs="+", default=[format_shifts(p.REREAD_SHIFTS)])
    ap.add_argument("--min-confidence", type=float, nargs="+", default=[p.MIN_CONFIDENCE])
    ap.add_argument("--precision", nargs="+", choices=["int8", "float"], default=["int8"])
    ap.add_argument("--batch", type=int, default=params.EvaluateParams.BATCH_SIZE)
    ap.add_argument("--formats", nargs="+", metavar="NAME=WEIGHT", default=[])
    ap.add_argument("--two-row-rate", type=float)
    args = ap.parse_args()
    shift_sets = [parse_shifts(value) for value in args.reread_shifts]
    check_fresh(args.seeds, "--seeds", args.images, args.batch)
    gen, accepted = generator(args.formats, args.two_row_rate)
    sets = {"stack set": load_split(STACK_DIR, "test")} if os.path.isdir(STACK_DIR) and gen is params.GeneratorParams else {}
    sets.update({f"seed {seed}": fresh_set(seed, args.images, gen) for seed in args.seeds})
    for models, prec, below, shifts, floor in itertools.product(
            args.models, args.precision, args.reread_below, shift_sets, args.min_confidence):
        reader = load_reader(models, int8=prec == "int8", reread_below=below, reread_shifts=shifts,
                             min_confidence=floor, **accepted)
        setting = (f"{models} {precision(reader)} reread_below {below} shifts {format_shifts(shifts)} "
                   f"min_confidence {floor}")
        pooled = []
        for name, data in sets.items():
            candidates, per_s = inspect_all(reader, data["images"], args.batch)
            correct, acc = score(candidates, data["texts"], data["present"])
            pooled.append(correct)
            print(f"{setting}: {name:9s} ({len(correct)} scenes) "
                  + ", ".join(f"{k} {v:.4f}" for k, v in acc.items()) + f" ({per_s:.0f} scenes/s)")
        print(f"{setting}: all {sum(map(len, pooled))} scenes val_acc {np.concatenate(pooled).mean():.4f}")


if __name__ == "__main__":
    run_main(main)
