"""Where the stack's mistakes come from: each wrong answer on the stack test set, put in one bucket.

    python -m scripts.stack_errors [--models out/models] [--batch 64]

Needs the prepared stack set (data/prepared/stack) and trained models (out/models), i.e. a run of
the pipeline. The reader's best candidate per scene (`PlateReader.inspect`) decides the bucket, in
the order they are checked:

  no plate, read as one       the scene has no plate, the reader gave one
  missed                      presence under the threshold on the last window and in the tiles
  quad elsewhere              the reader's quad overlaps the true one by IoU < 0.5
  OCR, given a rough quad     the OCR reads the crop from the true corners right, the reader's wrong
  OCR, even on true corners   the OCR is wrong on the crop from the true corners too
"""

import collections

import numpy as np
import torch

from platereader.datasets import load_split
from platereader.errors import run_main
from platereader.geometry.quads import quad_iou
from platereader.reader import PlateReader, group_by_shape
from platereader.scoring import inspect_all, score
from scripts.common import STACK_DIR, add_reader_options, load_reader, parser


def texts_on_true_corners(reader: PlateReader, images: np.ndarray, corners: np.ndarray, batch: int) -> list[str]:
    """What the OCR reads from the crop cut at the true corners, without rereads."""
    texts = []
    for i in range(0, len(images), batch):
        crops = reader.crops(group_by_shape(list(images[i:i + batch])), torch.from_numpy(corners[i:i + batch]))
        texts += [text for text, _ in reader.texts(crops, [True] * len(crops))]
    return texts


def bucket_errors(reader: PlateReader, test: dict, batch: int) -> collections.Counter:
    candidates, _ = inspect_all(reader, test["images"], batch)
    truth = [str(t) for t in test["texts"]]
    correct, _ = score(candidates, truth, test["present"])  # the verdict, as evaluate_stack scores it
    wrong = np.flatnonzero(~correct & test["present"])
    on_truth = dict(zip(wrong, texts_on_true_corners(reader, test["images"][wrong], test["corners"][wrong], batch)))
    counts = collections.Counter(right=int(correct.sum()))
    for i in np.flatnonzero(~correct):
        best = candidates[i][0]
        if not test["present"][i]:
            counts["no plate, read as one"] += 1
        elif best.presence <= reader.config.present_threshold:
            counts["missed"] += 1
        elif quad_iou(best.corners, test["corners"][i]) < 0.5:
            counts["quad elsewhere"] += 1
        elif on_truth[i] == truth[i]:
            counts["OCR, given a rough quad"] += 1
        else:
            counts["OCR, even on true corners"] += 1
    return counts


def main() -> None:
    ap = parser(__doc__)
    add_reader_options(ap)
    args = ap.parse_args()
    test = load_split(STACK_DIR, "test")
    counts = bucket_errors(load_reader(args.models), test, args.batch)
    total = sum(counts.values())
    for name, n in counts.most_common():
        print(f"{name:28s} {n:5d}  {n / total:6.1%}")
    print(f"{'scenes':28s} {total:5d}")


if __name__ == "__main__":
    run_main(main)
