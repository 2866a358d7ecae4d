"""evaluate_localize: corner and IoU metrics of the localizer on the validation scenes.

The plain keys (mean_iou, iou50_acc, iou75_acc, corner_err_px) measure the second pass, on windows
unwarped from each plate's quad moved as the first pass's errors would move it; `scene_*` keys
measure the first pass on whole scenes. Corner errors are in scene pixels. It runs the network the
reader runs (the int8 copy unless ReaderParams.INT8 is False) and counts a plate present above
ReaderParams.PRESENT_THRESHOLD. The passes chained, as the PlateReader runs them, are measured end
to end by evaluate_stack.
"""

import numpy as np
import torch

import params
from platereader import validate
from platereader.datasets import load_split
from platereader.errors import run_main
from platereader.geometry.frames import frame_to_scene
from platereader.geometry.quads import corner_errors, quad_iou
from platereader.metrics import write_metrics
from platereader.nets.networks import Localizer, load_trained
from platereader.nets.quantize import inference_copy
from platereader.plots import BLUE, GREEN, RED, log_images, overlay

DATA_DIR = "data/prepared/localize"
OUT_DIR = "out/evaluations/localize"


@torch.inference_mode()
def predict(model, input_size: int, images: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    corners, present = [], []
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(images[start:start + batch_size]).unsqueeze(1)
        heatmaps, logits = model(batch)
        corners.append(Localizer.corners(heatmaps, input_size).numpy())
        present.append(torch.sigmoid(logits).numpy())
    return np.concatenate(corners), np.concatenate(present)


def main() -> None:
    validate.integer(params.EvaluateParams, "BATCH_SIZE", 1)
    validate.integer(params.EvaluateParams, "NUM_PLOT_IMAGES", 0)
    validate.boolean(params.ReaderParams, "INT8")
    threshold = validate.number(params.ReaderParams, "PRESENT_THRESHOLD", 0, 1)
    model, extra = load_trained("out/models/localize/model.pt")
    served, _ = inference_copy(model, extra, params.ReaderParams.INT8)
    val = load_split(DATA_DIR, "val")
    size, margin = model.config["input_size"], tuple(extra["window_margin"])
    pred, present_p = predict(served, size, val["images"], params.EvaluateParams.BATCH_SIZE)
    has, zoomed = val["present"], val["zoomed"]
    metrics = {}
    for prefix, part in (("", zoomed), ("scene_", ~zoomed)):
        plates = part & has
        frames = torch.from_numpy(val["frames"][plates])
        pred_scene = frame_to_scene(frames, torch.from_numpy(pred[plates]), size, margin).numpy()
        true_scene = frame_to_scene(frames, torch.from_numpy(val["corners"][plates]), size, margin).numpy()
        ious = np.array([quad_iou(p, t) for p, t in zip(pred_scene, true_scene)])
        errors = corner_errors(pred_scene, true_scene)  # scene pixels
        metrics.update({
            prefix + "mean_iou": float(ious.mean()) if len(ious) else 0.0,
            prefix + "iou50_acc": float((ious >= 0.5).mean()) if len(ious) else 0.0,
            prefix + "iou75_acc": float((ious >= 0.75).mean()) if len(ious) else 0.0,
            prefix + "corner_err_px": float(errors.mean()) if len(errors) else 0.0,
            prefix + "present_acc": float(((present_p[part] > threshold) == has[part]).mean()),
        })
    metrics["val_images"] = int((~zoomed).sum())
    samples = {}
    shown = np.concatenate([np.flatnonzero(~zoomed)[:(params.EvaluateParams.NUM_PLOT_IMAGES + 1) // 2],
                            np.flatnonzero(zoomed)[:params.EvaluateParams.NUM_PLOT_IMAGES // 2]])
    for i in shown:
        ok = has[i] == (present_p[i] > threshold) and (not has[i] or quad_iou(pred[i], val["corners"][i]) >= 0.75)
        quads = ([(val["corners"][i], BLUE)] if has[i] else []) + [(pred[i], GREEN if ok else RED)]
        caption = f"p(plate)={present_p[i]:.2f} {'ok' if ok else 'wrong'}"
        samples[f"val_{'window' if zoomed[i] else 'scene'}_{i}.png"] = overlay(val["images"][i], quads, caption, GREEN if ok else RED, scale=4)
    log_images(OUT_DIR, samples)  # first: DVCLive clears its folder's metrics.json when it starts
    write_metrics(f"{OUT_DIR}/metrics.json", metrics)
    print(f"evaluate_localize: {metrics}")


if __name__ == "__main__":
    run_main(main)
