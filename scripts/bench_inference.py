"""Stack inference speed: PlateReader.read on 256x256 scenes, in this process, on the CPU.

    python -m scripts.bench_inference [--models out/models] [--batch 1 32 256] [--images 1024] [--float]

Uses the trained models when they exist, as the reader runs them (their int8 copies; --float: the
float networks), with the rest of params.py:ReaderParams; otherwise freshly initialised float ones
of the default size (speed does not depend on the weights). Prints plates/s per batch size.
"""

import os

import numpy as np
import torch

import params
from platereader.nets.networks import Localizer, PlateOCR
from platereader.reader import PlateReader
from platereader.synth.scenes import make_scene
from scripts.common import best_seconds, load_reader, parser, precision, reader_config


def reader_for(models_dir: str, int8: bool) -> tuple[PlateReader, str]:
    if all(os.path.isfile(os.path.join(models_dir, m, "model.pt")) for m in ("localize", "ocr")):
        reader = load_reader(models_dir, int8=int8)
        return reader, f"trained models from {models_dir}, {precision(reader)}"
    localizer = Localizer(params.TrainLocalizeParams.WIDTH, params.PrepareLocalizeParams.INPUT_SIZE)
    p = params.PrepareOCRParams
    ocr = PlateOCR(params.TrainOCRParams.WIDTH, p.CROP_HEIGHT, p.CROP_WIDTH)
    reader = PlateReader(localizer, ocr, {"crop_margin": p.CROP_MARGIN},
                         {"window_margin": params.PrepareLocalizeParams.WINDOW_MARGIN}, reader_config(int8=False))
    return reader, "untrained default-size models, float"


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--models", default="out/models")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 32, 256])
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3, help="best of N timed passes")
    ap.add_argument("--float", action="store_true", help="the float networks, not the int8 copies")
    args = ap.parse_args()
    reader, source = reader_for(args.models, int8=not args.float)
    scenes = [make_scene(np.random.default_rng([0, 99, i]), params.GeneratorParams, params.SCENE_SIZE).image
              for i in range(args.images)]
    print(f"{source}; {args.images} scenes of {params.SCENE_SIZE}x{params.SCENE_SIZE}; "
          f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}")
    for batch in args.batch:
        best = best_seconds(reader.read, scenes, batch, args.repeats)
        print(f"batch {batch:4d}: {len(scenes) / best:8.1f} plates/s  ({1000 * best / len(scenes):.2f} ms/plate)")


if __name__ == "__main__":
    main()
