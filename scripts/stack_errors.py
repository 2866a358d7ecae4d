"""Where the stack's mistakes come from: each wrong answer on the stack test set, put in one bucket.

    python scripts/stack_errors.py [--models out/models] [--batch 64]

Needs the prepared stack set (data/prepared/stack) and trained models (out/models), i.e. a run of
the pipeline. The buckets, in the order they are checked:

  no plate, read as one       the scene has no plate, the reader gave one
  missed                      plate-present probability under the threshold on the last window
  quad elsewhere              the reader's quad overlaps the true one by IoU < 0.5
  OCR, given a rough quad     the OCR reads the crop from the true corners right, the reader's wrong
  OCR, even on true corners   the OCR is wrong on the crop from the true corners too
"""

import argparse
import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from platereader.datasets import load_split  # noqa: E402
from platereader.geometry.quads import quad_iou  # noqa: E402
from platereader.stages.evaluate_stack import DATA_DIR  # noqa: E402
from platereader.reader import PRESENT_THRESHOLD, PlateReader, group_by_shape  # noqa: E402


@torch.inference_mode()
def bucket_errors(reader: PlateReader, test: dict, batch: int) -> collections.Counter:
    truth = [str(t) for t in test["texts"]]
    counts = collections.Counter()
    for start in range(0, len(truth), batch):
        images = list(test["images"][start:start + batch])
        answers = reader.read(images)  # the verdict, exactly as evaluate_stack scores it
        corners, present, _ = reader.locate(images)  # again, for what read() does not return
        true_corners = torch.from_numpy(test["corners"][start:start + batch]).float()
        texts_on_truth = reader.texts(reader.crops(group_by_shape(images), true_corners))
        for k, answer in enumerate(answers):
            i = start + k
            if (answer["canton"] or "") + (answer["number"] or "") == truth[i]:
                counts["right"] += 1
            elif not test["present"][i]:
                counts["no plate, read as one"] += 1
            elif present[k] <= PRESENT_THRESHOLD:
                counts["missed"] += 1
            elif quad_iou(corners[k].numpy(), test["corners"][i]) < 0.5:
                counts["quad elsewhere"] += 1
            elif texts_on_truth[k][0] == truth[i]:
                counts["OCR, given a rough quad"] += 1
            else:
                counts["OCR, even on true corners"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="out/models")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    test = load_split(DATA_DIR, "test")
    counts = bucket_errors(PlateReader.load(args.models), test, args.batch)
    total = sum(counts.values())
    for name, n in counts.most_common():
        print(f"{name:28s} {n:5d}  {n / total:6.1%}")
    print(f"{'scenes':28s} {total:5d}")


if __name__ == "__main__":
    main()
