"""Where the reader goes wrong on labelled photos: every labelled plate in one error bucket
(read, missed, box_off, misread, wrong_format, not_reported: platereader.realdata.error_buckets),
false plates apart, per dataset, with overlays of the photos grouped per bucket.

    python -m scripts.real_errors DATASET_DIR [DATASET_DIR ...] [--models out/models]
                                  [--out out/real_errors] [-S NAME=VALUE ...]

A DATASET_DIR is a folder in either layout of docs/real-data.md, anywhere. Each photo is read on
its own with PlateReader.inspect, configured as params.py:ReaderParams with each -S NAME=VALUE
replacing an entry (a Python literal), e.g. -S "FORMATS=['swiss','brazil']"
-S "PHOTO_TILE_SIDES=[0.5,0.3]". Prints two markdown tables: per dataset evaluate_real's metrics
with `label_exact` (the OCR alone on crops cut at the labelled corners: whether a misreading is the
OCR's or its quad's), and the labelled plates in each bucket (count and share) with the false
plates (count and per photo); then per dataset the characters the OCR confuses most on located
plates (label > read, over same-length stretches of text that differ). Writes evaluate_real's
overlay of each photo to OUT/<dataset>/<bucket>/ for each bucket its plates fall in, and to false/
when it has a false plate (an earlier run's overlays there are replaced).
The default OUT is git-ignored: overlays show the photos, which keep their own licences (the
OpenALPR sets are AGPL-3.0), so never commit them.
"""

import difflib
import glob
import os
from collections import Counter

import numpy as np
import torch

import params
from platereader import realdata
from platereader.errors import UserError, run_main
from platereader.reader import PlateReader
from platereader.stages.evaluate_real import plot
from scripts.common import add_setting_option, load_reader, parser, reader_changes

OUT_DIR = "out/real_errors"  # git-ignored
GROUPS = realdata.BUCKETS + ("false",)


def load_folders(paths: list[str]) -> list[realdata.Dataset]:
    """Each folder as a dataset named by its last component (loaded and checked as evaluate_real
    loads data/real/<name>)."""
    datasets = []
    for path in paths:
        folder = os.path.normpath(path)
        datasets.append(realdata.load_dataset(os.path.basename(folder), os.path.dirname(folder)))
    names = [d.name for d in datasets]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"two datasets are named {twice[0]} (their folders' last names): the overlays go to "
                        "OUT/<name>; give folders with distinct names")
    return datasets


def clear_overlays(out: str, dataset: realdata.Dataset) -> str:
    """OUT/<dataset>, emptied of an earlier run's overlays; refused when it holds a dataset."""
    target = os.path.realpath(os.path.join(out, dataset.name))
    folder = os.path.realpath(dataset.folder)
    if os.path.commonpath([target, folder]) in (target, folder):
        raise UserError(f"--out {out} would put overlays into the dataset folder {dataset.folder}: give "
                        f"another --out (default {OUT_DIR})")
    for group in GROUPS:
        for old in glob.glob(os.path.join(glob.escape(target), group, "*.png")):
            os.remove(old)
    return target


def table(rows: list[tuple[realdata.Dataset, dict[str, int]]]) -> str:
    """Markdown: per dataset, photos, plates, each bucket's count (share of the plates) and the
    false plates (per photo)."""
    lines = ["| dataset | photos | plates | " + " | ".join(GROUPS) + " |", "| --- |" + " ---: |" * (len(GROUPS) + 2)]
    for dataset, counts in rows:
        plates, photos = dataset.plates, len(dataset.photos)
        cells = [f"{counts[b]} ({counts[b] / plates:.3f})" if plates else str(counts[b]) for b in realdata.BUCKETS]
        cells.append(f"{counts['false']} ({counts['false'] / photos:.3f}/photo)")
        lines.append(f"| {dataset.name} | {photos} | {plates} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


METRICS = ("recall", "mean_iou", "exact", "cer", "raw_exact", "raw_cer", "false_per_photo", "label_exact")


def confusions(pairs) -> Counter:
    """(label, read) texts -> counts of "A>B": label character A read as B, where a stretch of the
    read text replaces one of the label's of the same length (a dropped or added character is no
    confusion of shapes)."""
    counts: Counter = Counter()
    for label, read in pairs:
        for op, a0, a1, b0, b1 in difflib.SequenceMatcher(None, label, read, autojunk=False).get_opcodes():
            if op == "replace" and a1 - a0 == b1 - b0:
                counts.update(f"{x}>{y}" for x, y in zip(label[a0:a1], read[b0:b1]))
    return counts


def labels_read(reader: PlateReader, photo: realdata.Photo, gray: np.ndarray) -> int:
    """How many of the photo's labelled plates the OCR reads exactly (its likeliest text) from
    crops cut at the labelled corners, as the reader cuts them from its quads."""
    if not photo.plates:
        return 0
    corners = torch.tensor(np.stack([p.corners for p in photo.plates]), dtype=torch.float32)
    scene = torch.tensor(gray, dtype=torch.float32)[None, None]
    texts = reader.texts(reader.crops([(list(range(len(corners))), scene, None)], corners), [False] * len(corners))
    return sum(text == p.text for (text, _), p in zip(texts, photo.plates))


def metrics_table(rows: list[tuple[realdata.Dataset, dict]]) -> str:
    """Markdown: per dataset, evaluate_real's metrics (`realdata.summarise`)."""
    lines = ["| dataset | " + " | ".join(METRICS) + " |", "| --- |" + " ---: |" * len(METRICS)]
    for dataset, metrics in rows:
        lines.append(f"| {dataset.name} | " + " | ".join(f"{metrics[m]:.3f}" if m in metrics else "-" for m in METRICS)
                     + " |")
    return "\n".join(lines)


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("folders", nargs="+", metavar="DATASET_DIR", help="labelled photo folders (docs/real-data.md)")
    ap.add_argument("--models", default="out/models", help="folder with localize/ and ocr/ model.pt")
    ap.add_argument("--out", default=OUT_DIR, help="where the overlays go, OUT/<dataset>/<bucket>/")
    add_setting_option(ap)
    args = ap.parse_args()
    changes = reader_changes(args.changes)
    datasets = load_folders(args.folders)  # every label checked before a read
    reader = load_reader(args.models, **changes)
    targets = [clear_overlays(args.out, dataset) for dataset in datasets]
    rows, summaries, confused = [], [], []
    for dataset, target in zip(datasets, targets):
        scores, read_at_labels, located = [], 0, []
        for photo in dataset.photos:
            gray = photo.load()
            read_at_labels += labels_read(reader, photo, gray)
            candidates = reader.inspect([gray])[0]
            score = realdata.score_photo(photo.plates, candidates, reader.config.formats)
            located += [(photo.plates[i].text, candidates[k].text) for i, k in score.located_by.items()]
            scores.append(score)
            groups = set(score.buckets) | ({"false"} if score.false else set())
            image = plot(reader, photo, gray, candidates, score) if groups else None
            name = os.path.relpath(photo.path, dataset.folder).replace(os.sep, "__") + ".png"
            for group in sorted(groups):
                os.makedirs(os.path.join(target, group), exist_ok=True)
                image.save(os.path.join(target, group, name))
        rows.append((dataset, realdata.bucket_counts(scores)))
        confused.append((dataset, confusions(located)))
        summaries.append((dataset, {**realdata.summarise(scores),
                                    **({"label_exact": read_at_labels / dataset.plates} if dataset.plates else {})}))
    print(metrics_table(summaries) + "\n\n" + table(rows) + "\n")
    for dataset, counts in confused:
        print(f"most confused on {dataset.name} (label>read): "
              + (", ".join(f"{pair} {n}" for pair, n in counts.most_common(10)) or "none"))
    print(f"\noverlays: {args.out}/<dataset>/<bucket>/ (git-ignored by default; never commit them)")


if __name__ == "__main__":
    run_main(main)
