"""evaluate_stack: the PlateReader on the held-out stack scenes (never used for training).

val_acc counts a scene as right when canton and number are both exact (seed 004's measure), or
when the scene holds no plate and the reader says so. mean_iou and corner_err_px (scene pixels)
measure the reader's corners (all its passes) on every scene with a plate, read correctly or not.
plates_per_s times batched reading in this process on the CPU, pre-processing included.
"""

import time

import numpy as np
import torch

import params
from src.datasets.build import load_split
from src.models.geometry import corner_errors, quad_iou
from src.models.rectify import to_uint8
from src.stack.reader import PlateReader, group_by_shape
from src.utils import validate
from src.utils.errors import run_main
from src.utils.metrics import write_metrics
from src.utils.plots import BLUE, GREEN, RED, log_images, overlay

DATA_DIR = "data/prepared/stack"
OUT_DIR = "out/evaluations/stack"


def read_all(reader: PlateReader, images: np.ndarray, batch_size: int) -> tuple[list[dict], float]:
    """Answers for every image and the throughput in images per second."""
    reader.read(list(images[:batch_size]))  # warm-up: first calls allocate and pick kernels
    start = time.perf_counter()
    answers = []
    for i in range(0, len(images), batch_size):
        answers += reader.read(list(images[i:i + batch_size]))
    return answers, len(images) / (time.perf_counter() - start)


def score(answers: list[dict], texts, present: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """Which answers are right (canton and number exact, or no plate for an empty scene) and the
    accuracies: over all scenes, over those with a plate, over those without."""
    correct = np.array([(a["canton"] or "") + (a["number"] or "") == str(t) for a, t in zip(answers, texts)])
    return correct, {"val_acc": float(correct.mean()),
                     "plate_acc": float(correct[present].mean()) if present.any() else 0.0,
                     "no_plate_acc": float(correct[~present].mean()) if (~present).any() else 1.0}


def locate_all(reader: PlateReader, images: np.ndarray, batch_size: int) -> np.ndarray:
    """The reader's corners (N, 4, 2) for every scene, whether or not its text was read."""
    return np.concatenate([reader.locate(list(images[i:i + batch_size]))[0].numpy()
                           for i in range(0, len(images), batch_size)] or [np.zeros((0, 4, 2))])


def main() -> None:
    validate.integer(params.EvaluateParams, "BATCH_SIZE", 1)
    validate.integer(params.EvaluateParams, "NUM_PLOT_IMAGES", 0)
    reader = PlateReader.load("out/models")
    test = load_split(DATA_DIR, "test")
    answers, per_s = read_all(reader, test["images"], params.EvaluateParams.BATCH_SIZE)
    truth = [str(t) for t in test["texts"]]
    has = test["present"]
    correct, accuracies = score(answers, truth, has)
    located = locate_all(reader, test["images"][has], params.EvaluateParams.BATCH_SIZE)
    ious = [quad_iou(p, t) for p, t in zip(located, test["corners"][has])]
    metrics = {
        **accuracies,
        "mean_iou": float(np.mean(ious)) if ious else 0.0,
        "corner_err_px": float(corner_errors(located, test["corners"][has]).mean()) if ious else 0.0,
        "plates_per_s": round(per_s, 1),
        "test_images": len(truth),
        "threads": torch.get_num_threads(),
    }
    order = sorted(range(len(truth)), key=lambda i: bool(correct[i]))  # mistakes first
    samples = {}
    for rank, i in enumerate(order[:params.EvaluateParams.NUM_PLOT_IMAGES]):
        a, ok = answers[i], bool(correct[i])
        crop = None
        if a["corners"]:
            crop = reader.crops(group_by_shape([test["images"][i]]), torch.tensor([a["corners"]]))[0, 0]
            crop = to_uint8(crop).numpy()
        quads = ([(test["corners"][i], BLUE)] if has[i] else []) + [(a["corners"], GREEN if ok else RED)]
        caption = f"true {truth[i] or '(none)'}  read {a['plate'] or '(none)'} ({a['confidence']:.2f})"
        samples[f"test_{rank}.png"] = overlay(test["images"][i], quads, caption, GREEN if ok else RED, crop=crop)
    log_images(OUT_DIR, samples)  # first: DVCLive clears its folder's metrics.json when it starts
    write_metrics(f"{OUT_DIR}/metrics.json", metrics)
    print(f"evaluate_stack: {metrics}")


if __name__ == "__main__":
    run_main(main)
