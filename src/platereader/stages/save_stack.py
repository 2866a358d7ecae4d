"""save_stack: the trained networks and params.py:ReaderParams -> the MLEM package out/mlem/plate_reader.

    python -m platereader.stages.save_stack [--models out/models] [--output out/mlem/plate_reader]
"""

import argparse

import params
from platereader.errors import run_main
from platereader.packaging import DEFAULT_MODELS, DEFAULT_OUTPUT, iter_files, save_stack
from platereader.reader import PlateReader, ReaderConfig


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m platereader.stages.save_stack", description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=DEFAULT_MODELS,
                        help="folder holding localize/model.pt and ocr/model.pt (default: %(default)s)")
    parser.add_argument("--output", default=DEFAULT_OUTPUT,
                        help="MLEM model path, without .mlem (default: %(default)s)")
    args = parser.parse_args()
    config = ReaderConfig.from_params(params.ReaderParams)
    save_stack(PlateReader.load(args.models, config), args.output)
    for path in iter_files(args.output):
        print(f"wrote {path}")


if __name__ == "__main__":
    run_main(main)
