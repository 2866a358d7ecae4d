"""evaluate_ocr: exact plate and character accuracy of the OCR on the validation crops, with the
network the reader runs (the int8 copy unless ReaderParams.INT8 is False)."""

import numpy as np
import torch

import params
from platereader import validate
from platereader.datasets import load_split
from platereader.errors import run_main
from platereader.metrics import edit_distance, write_metrics
from platereader.nets.networks import ctc_greedy_decode, load_trained
from platereader.nets.quantize import inference_copy
from platereader.plots import GREEN, RED, log_images, overlay

DATA_DIR = "data/prepared/ocr"
OUT_DIR = "out/evaluations/ocr"


@torch.inference_mode()
def read_crops(model, images: np.ndarray, batch_size: int) -> list[tuple[str, float]]:
    results = []
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(images[start:start + batch_size]).unsqueeze(1)
        results += ctc_greedy_decode(model(batch))
    return results


def main() -> None:
    validate.integer(params.EvaluateParams, "BATCH_SIZE", 1)
    validate.integer(params.EvaluateParams, "NUM_PLOT_IMAGES", 0)
    validate.boolean(params.ReaderParams, "INT8")
    model, extra = load_trained("out/models/ocr/model.pt")
    model, _ = inference_copy(model, extra, params.ReaderParams.INT8)
    val = load_split(DATA_DIR, "val")
    results = read_crops(model, val["images"], params.EvaluateParams.BATCH_SIZE)
    truth = [str(t) for t in val["texts"]]
    pred = [text for text, _ in results]
    errors = sum(edit_distance(p, t) for p, t in zip(pred, truth))
    metrics = {
        "plate_acc": float(np.mean([p == t for p, t in zip(pred, truth)])),
        # Edit distance over the longer of the two texts: 0 for a wrong read of any length, never below.
        "char_acc": 1.0 - errors / max(1, sum(max(len(p), len(t)) for p, t in zip(pred, truth))),
        "val_images": len(truth),
    }
    # Show mistakes first: they are what a reviewer wants to see.
    order = sorted(range(len(truth)), key=lambda i: pred[i] == truth[i])
    samples = {}
    for rank, i in enumerate(order[:params.EvaluateParams.NUM_PLOT_IMAGES]):
        ok = pred[i] == truth[i]
        caption = f"true {truth[i]}  read {pred[i] or '-'} ({results[i][1]:.2f})"
        samples[f"val_{rank}.png"] = overlay(val["images"][i], caption=caption,
                                             caption_color=GREEN if ok else RED)
    log_images(OUT_DIR, samples)  # first: DVCLive clears its folder's metrics.json when it starts
    write_metrics(f"{OUT_DIR}/metrics.json", metrics)
    print(f"evaluate_ocr: {metrics}")


if __name__ == "__main__":
    run_main(main)
