"""evaluate_real: the PlateReader on labelled photographs, each dataset of RealParams.EVAL_DATASETS
(folders under data/real, docs/real-data.md) scored on its own.

Per dataset, over its labelled plates: recall (some candidate's quad, reported or not, has a box
overlapping the labelled box by IoU >= 0.5: the localizer), mean_iou (the best such overlap),
exact and cer (the reported plate matched to it by IoU >= 0.5 reads the label exactly; character
error rate, a plate without a matching report counting every character), raw_exact and raw_cer
(the same for the OCR's text of the located candidate before the format check: progress on plates
of formats the reader does not report yet), the shares of the plates in each error bucket
(bucket_missed, bucket_box_off, bucket_misread, bucket_wrong_format, bucket_not_reported:
platereader.realdata.error_buckets), false_per_photo (reported plates matching no labelled
plate), and the photo and plate counts. Texts are compared without spaces, dashes and dots.
Written to out/evaluations/real/metrics.json as {dataset: {metric: value}}; the mean time per
photo (one photo per read, after a warm-up read; also per photo size) goes to speed.json beside,
not to the metrics.
Overlays of the worst photos: out/evaluations/real/<dataset>/plots/images/.

With no dataset listed (the default: a fresh clone has none), the metrics are {} and the stage
succeeds without reading anything, so `make pipeline` runs offline end to end.
"""

import json
import os
import shutil
import time

import numpy as np
import torch
from PIL import Image

import params
from platereader import realdata, validate
from platereader.errors import run_main
from platereader.geometry.rectify import to_uint8
from platereader.metrics import write_metrics
from platereader.plots import BLUE, GREEN, RED, log_images, overlay
from platereader.reader import PlateReader, ReaderConfig, group_by_shape

OUT_DIR = "out/evaluations/real"
ORANGE = (255, 150, 0)  # a candidate the reader did not report
PLOT_SIDE = 800  # overlays are shrunk to this longer side


def plot(reader: PlateReader, photo: realdata.Photo, gray: np.ndarray, candidates,
         score: realdata.PhotoScore) -> Image.Image:
    """The photo with its labelled plates (blue) and the candidates: green read right, red
    reported wrong or false, orange not reported; under it the crop the OCR read for the first
    located plate (or the first candidate), and per labelled plate its error bucket, what the OCR
    read there and the best IoU."""
    scale = min(1.0, PLOT_SIDE / max(gray.shape))
    size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
    small = gray if scale == 1 else np.asarray(Image.fromarray(gray).resize(size, Image.BILINEAR))
    right = {j for i, j in score.reported_by.items() if candidates[j].text == photo.plates[i].text}
    quads = [(plate.corners * scale, BLUE) for plate in photo.plates]
    quads += [(c.corners * scale, GREEN if j in right else RED if c.reported else ORANGE)
              for j, c in enumerate(candidates)]
    crop = None
    if candidates:  # the crop of the first located candidate, else of the first one
        corners = torch.from_numpy(candidates[next(iter(score.located_by.values()), 0)].corners[None])
        crop = to_uint8(reader.crops(group_by_shape([gray]), corners)[0, 0]).numpy()
    read = {i: candidates[j].text or "-" for i, j in score.located_by.items()}
    plates = [f"{plate.text}: {score.buckets[i]}{f', ocr {read[i]}' if i in read else ''}, iou {score.best_iou[i]:.2f}"
              for i, plate in enumerate(photo.plates)]
    reported = ", ".join(c.text for c in candidates if c.reported) or "(none)"
    caption = f"{os.path.basename(photo.path)}  {'; '.join(plates) or 'no plate'}  reported {reported}"
    return overlay(small, quads, caption, GREEN if score.wrong == 0 else RED, crop=crop, scale=1)


def main() -> None:
    p = params.RealParams
    plots = validate.integer(params.EvaluateParams, "NUM_PLOT_IMAGES", 0)
    config = ReaderConfig.from_params(params.ReaderParams)
    names = realdata.dataset_names(p, "EVAL_DATASETS")
    train_names = realdata.dataset_names(p, "TRAIN_DATASETS")
    datasets = [realdata.load_dataset(name) for name in names]  # every label checked before a read
    realdata.check_disjoint([realdata.load_dataset(name) for name in train_names], datasets)

    reader = PlateReader.load("out/models", config) if datasets else None
    metrics, speed, samples = {}, {}, {}
    for dataset in datasets:
        scores, shown, seconds = [], [], {}  # seconds: {"WxH": [per photo]}
        for k, photo in enumerate(dataset.photos):
            gray = photo.load()
            if k == 0:
                reader.inspect([gray])  # warm-up: the first read allocates and picks kernels
            start = time.perf_counter()
            candidates = reader.inspect([gray])[0]
            seconds.setdefault(f"{gray.shape[1]}x{gray.shape[0]}", []).append(time.perf_counter() - start)
            scores.append(realdata.score_photo(photo.plates, candidates, reader.config.formats))
            shown.append(candidates)
        metrics[dataset.name] = realdata.summarise(scores)
        every = [t for times in seconds.values() for t in times]
        speed[dataset.name] = {"ms_per_photo": round(1000 * float(np.mean(every)), 1), "photos": len(every),
                               "by_size": {size: {"ms_per_photo": round(1000 * float(np.mean(t)), 1), "photos": len(t)}
                                           for size, t in sorted(seconds.items(), key=lambda kv: -len(kv[1]))}}
        samples[dataset.name] = {
            f"worst_{rank}.png": plot(reader, dataset.photos[i], dataset.photos[i].load(), shown[i], scores[i])
            for rank, i in enumerate(realdata.worst_first(scores)[:plots])}
        print(f"evaluate_real: {dataset.name}: {metrics[dataset.name]}, {speed[dataset.name]['ms_per_photo']} ms "
              "per photo")

    # Overlays of datasets no longer evaluated go; then the new ones, the metrics and the speed.
    if os.path.isdir(OUT_DIR):
        for entry in os.listdir(OUT_DIR):
            if os.path.isdir(os.path.join(OUT_DIR, entry)):
                shutil.rmtree(os.path.join(OUT_DIR, entry))
    for name, images in samples.items():
        log_images(f"{OUT_DIR}/{name}", images)
    write_metrics(f"{OUT_DIR}/metrics.json", metrics)
    if reader is not None:
        speed.update({"threads": torch.get_num_threads(), "int8": reader.int8})
    with open(f"{OUT_DIR}/speed.json", "w") as f:
        json.dump(speed, f, indent=2, sort_keys=True)
        f.write("\n")
    if not datasets:
        print("evaluate_real: no dataset in params.py:RealParams.EVAL_DATASETS, nothing to score "
              "(docs/real-data.md)")


if __name__ == "__main__":
    run_main(main)
