"""Read plates from image files: python -m src.stack.predict IMAGE [IMAGE ...] [--models out/models]

Prints one JSON object per image (file, plate, canton, number, confidence, corners) on stdout.
A missing or unreadable file gets a line on stderr; the other files are still read, and the exit
status is 1 when any file failed.
"""

import argparse
import json
import sys

from src.stack.reader import PlateReader
from src.utils.errors import UserError, run_main
from src.utils.images import load_image

BATCH = 32


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m src.stack.predict", description=__doc__.split("\n")[0])
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="JPEG, PNG, WebP, BMP, GIF or TIFF file")
    parser.add_argument("--models", default="out/models", help="folder with localize/ and ocr/ model.pt")
    args = parser.parse_args()
    reader = PlateReader.load(args.models)
    failed = 0
    pending: list[tuple[str, object]] = []

    def flush():
        for (name, _), answer in zip(pending, reader.read([image for _, image in pending])):
            print(json.dumps({"file": name, **answer}), flush=True)
        pending.clear()

    for name in args.images:
        try:
            pending.append((name, load_image(name)))
        except UserError as exc:
            flush()  # keep the output in the order of the arguments
            print(f"error: {exc}", file=sys.stderr, flush=True)
            failed += 1
            continue
        if len(pending) == BATCH:
            flush()
    flush()
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    run_main(main)
