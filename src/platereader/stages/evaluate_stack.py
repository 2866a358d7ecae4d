"""evaluate_stack: the PlateReader on the held-out stack scenes (never used for training).

val_acc counts a scene as right when the reported plate's text is exact (seed 004's measure), or
when the scene holds no plate and the reader reports none. clean_val_acc is the same on the scenes'
clean twins (no photometric degradations): a reader that reads every readable plate scores ~1 there. mean_iou and corner_err_px (scene
pixels) measure the reader's quad (all its passes) on every scene with a plate, read correctly or
not. The reading speed goes to speed.json beside, not to the metrics.
"""

import json

import numpy as np
import torch

import params
from platereader import validate
from platereader.datasets import load_split
from platereader.errors import run_main
from platereader.geometry.quads import corner_errors, quad_iou
from platereader.geometry.rectify import to_uint8
from platereader.metrics import write_metrics
from platereader.plots import BLUE, GREEN, RED, log_images, overlay
from platereader.reader import PlateReader, ReaderConfig, group_by_shape
from platereader.scoring import inspect_all, score

DATA_DIR = "data/prepared/stack"
OUT_DIR = "out/evaluations/stack"


def main() -> None:
    validate.integer(params.EvaluateParams, "BATCH_SIZE", 1)
    validate.integer(params.EvaluateParams, "NUM_PLOT_IMAGES", 0)
    reader = PlateReader.load("out/models", ReaderConfig.from_params(params.ReaderParams))
    test = load_split(DATA_DIR, "test")
    candidates, per_s = inspect_all(reader, test["images"], params.EvaluateParams.BATCH_SIZE)
    truth = [str(t) for t in test["texts"]]
    has = test["present"]
    correct, accuracies = score(candidates, truth, has)
    clean, _ = inspect_all(reader, test["clean_images"], params.EvaluateParams.BATCH_SIZE)
    clean_correct, _ = score(clean, truth, has)
    located = np.stack([c[0].corners for c in candidates])[has]
    ious = [quad_iou(p, t) for p, t in zip(located, test["corners"][has])]
    metrics = {
        **accuracies,
        "clean_val_acc": float(clean_correct.mean()),
        "mean_iou": float(np.mean(ious)) if ious else 0.0,
        "corner_err_px": float(corner_errors(located, test["corners"][has]).mean()) if ious else 0.0,
        "test_images": len(truth),
    }
    order = sorted(range(len(truth)), key=lambda i: bool(correct[i]))  # mistakes first
    samples = {}
    for rank, i in enumerate(order[:params.EvaluateParams.NUM_PLOT_IMAGES]):
        best, ok = candidates[i][0], bool(correct[i])
        reported = best if best.reported else None
        crop = reader.crops(group_by_shape([test["images"][i]]), torch.from_numpy(best.corners[None]))[0, 0]
        quads = ([(test["corners"][i], BLUE)] if has[i] else []) + [(best.corners, GREEN if ok else RED)]
        caption = (f"true {truth[i] or '(none)'}  read {reported.plate if reported else '(none)'} "
                   f"({best.confidence:.2f})")
        samples[f"test_{rank}.png"] = overlay(test["images"][i], quads, caption, GREEN if ok else RED,
                                              crop=to_uint8(crop).numpy())
    log_images(OUT_DIR, samples)  # first: DVCLive clears its folder's metrics.json when it starts
    write_metrics(f"{OUT_DIR}/metrics.json", metrics)
    with open(f"{OUT_DIR}/speed.json", "w") as f:
        json.dump({"images_per_s": round(per_s, 1), "batch_size": params.EvaluateParams.BATCH_SIZE,
                   "threads": torch.get_num_threads(), "int8": reader.int8}, f, indent=2)
    print(f"evaluate_stack: {metrics}, {per_s:.0f} images/s")


if __name__ == "__main__":
    run_main(main)
