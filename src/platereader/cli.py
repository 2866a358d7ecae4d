"""The `platereader` command: what users run by hand.

    platereader read IMAGE [IMAGE ...] [--model out/mlem/plate_reader]   # one JSON line per image
                     [--formats swiss brazil us eu]                      # formats to report
    platereader serve [--host 127.0.0.1] [--port 8080] [--model ...]     # HTTP server (MLEM FastAPI)
    platereader report [--base main] [--out report.md]                   # the pull-request report
    platereader matrix [--models SPEC ...] [--datasets SPEC ...]         # models x datasets table

`read` and `serve` run the packaged reader (the save_stack stage's output), with the settings it
was packaged with (`read --formats` replaces the formats it reports). The pipeline's stages are `python -m platereader.stages.<stage>` (dvc.yaml).
"""

from __future__ import annotations

import argparse
import json
import sys

from platereader.errors import UserError, run_main

BATCH = 32


def read(argv: list[str]) -> None:
    """Print one JSON object per image: {"file": ..., "plates": [...]}. A missing or unreadable file
    gets a line on stderr, the others are still read, and the exit status is then 1."""
    from dataclasses import replace

    from platereader import formats, packaging
    from platereader.images import load_image
    from platereader.reader import answer_json

    parser = argparse.ArgumentParser(prog="platereader read", description=read.__doc__.split(".")[0])
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="JPEG, PNG, WebP, BMP, GIF or TIFF file")
    parser.add_argument("--model", default=packaging.DEFAULT_OUTPUT,
                        help="MLEM package written by the save_stack stage (default: %(default)s)")
    parser.add_argument("--formats", nargs="+", metavar="FORMAT",
                        help=f"plate formats to report, of {', '.join(formats.FORMATS)} (default: the package's)")
    args = parser.parse_args(argv)
    reader = packaging.load_reader(args.model)
    if args.formats:
        reader.config = replace(reader.config, formats=formats.check_names(args.formats, "--formats"))
    failed = 0
    pending: list[tuple[str, object]] = []

    def flush():
        for (name, _), readings in zip(pending, reader.read([image for _, image in pending])):
            print(json.dumps({"file": name, **answer_json(readings)}), flush=True)
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


def serve(argv: list[str]) -> None:
    from platereader import serving

    serving.main(argv)


def report(argv: list[str]) -> None:
    from platereader import report as report_module

    report_module.main(argv)


def matrix(argv: list[str]) -> None:
    from platereader import matrix as matrix_module

    matrix_module.main(argv)


COMMANDS = {"read": read, "serve": serve, "report": report, "matrix": matrix}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        raise SystemExit(0 if argv and argv[0] in ("-h", "--help") else 2)
    run_main(lambda: COMMANDS[argv[0]](argv[1:]))


if __name__ == "__main__":
    main()
