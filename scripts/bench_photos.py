"""Photo reading speed: PlateReader.read on image files (camera photos), one per read and batched.

    python -m scripts.bench_photos IMAGE [IMAGE ...] [--models out/models] [--batch 1 8] [--no-pyramid]
                                   [-S NAME=VALUE ...]

Reads the files as the CLI does (decoding not timed), with params.py:ReaderParams and each -S
NAME=VALUE replacing an entry (e.g. -S "PHOTO_TILE_SIDES=[0.5,0.3]"); --no-pyramid turns the photo
search off (PHOTO_MIN_SIDE beyond any photo), to compare side by side.
Prints milliseconds per photo and photos per second for each batch size (best of --repeats).
"""

import os

import torch

from platereader.images import load_image
from scripts.common import add_setting_option, best_seconds, load_reader, parser, precision, reader_changes


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("images", nargs="+", metavar="IMAGE")
    ap.add_argument("--models", default="out/models")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--repeats", type=int, default=3, help="best of N timed passes")
    ap.add_argument("--no-pyramid", action="store_true", help="without the photo search")
    add_setting_option(ap)
    args = ap.parse_args()
    changes = reader_changes(args.changes)
    reader = load_reader(args.models, **{**changes, **({"photo_min_side": 10 ** 9} if args.no_pyramid else {})})
    photos = [load_image(path) for path in args.images]
    sizes = sorted({f"{p.shape[1]}x{p.shape[0]}" for p in photos})
    print(f"{len(photos)} photos ({', '.join(sizes)}); {precision(reader)}; photo search "
          f"{'off' if args.no_pyramid else reader.config.photo_tile_sides}; torch threads "
          f"{torch.get_num_threads()}, cpus {os.cpu_count()}")
    for batch in args.batch:
        best = best_seconds(reader.read, photos, batch, args.repeats)
        print(f"batch {batch:3d}: {1000 * best / len(photos):7.1f} ms/photo  {len(photos) / best:6.1f} photos/s")


if __name__ == "__main__":
    main()
