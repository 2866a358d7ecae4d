"""Scoring the PlateReader on labelled scene sets: evaluate_stack and the scripts that compare
models or settings on fresh seeds share these, so they score alike."""

from __future__ import annotations

import time

import numpy as np

from platereader.reader import PlateReader, PlateReading


def inspect_all(reader: PlateReader, images, batch_size: int) -> tuple[list[list[PlateReading]], float]:
    """Every candidate of every image (`PlateReader.inspect`), and the throughput in images per
    second after a warm-up batch (first calls allocate and pick kernels)."""
    reader.inspect(list(images[:batch_size]))
    start = time.perf_counter()
    candidates = []
    for i in range(0, len(images), batch_size):
        candidates += reader.inspect(list(images[i:i + batch_size]))
    return candidates, len(images) / (time.perf_counter() - start)


def answer_text(candidates: list[PlateReading]) -> str:
    """The text of the best reported plate, "" when the reader reports none."""
    reported = [c for c in candidates if c.reported]
    return reported[0].text if reported else ""


def score(candidates: list[list[PlateReading]], texts, present: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """Which images are right (the reported plate's text exact, or no plate for an empty scene)
    and the accuracies: over all scenes, over those with a plate, over those without."""
    correct = np.array([answer_text(c) == str(t) for c, t in zip(candidates, texts)])
    return correct, {"val_acc": float(correct.mean()),
                     "plate_acc": float(correct[present].mean()) if present.any() else 0.0,
                     "no_plate_acc": float(correct[~present].mean()) if (~present).any() else 1.0}
