"""Stack inference speed: PlateReader.read on 256x256 scenes, in this process, on the CPU.

    python scripts/bench_inference.py [--models out/models] [--batch 1 32 256] [--images 1024] [--float]

Uses the trained models when they exist, as the reader runs them (their int8 copies; --float: the
float networks); otherwise freshly initialised float ones of the default size (speed does not
depend on the weights). Prints plates/s per batch size.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import params  # noqa: E402
from platereader.synth.scenes import make_scene  # noqa: E402
from platereader.nets.networks import Localizer, PlateOCR  # noqa: E402
from platereader.reader import PlateReader  # noqa: E402


def reader_for(models_dir: str, int8: bool) -> tuple[PlateReader, str]:
    if all(os.path.isfile(os.path.join(models_dir, m, "model.pt")) for m in ("localize", "ocr")):
        reader = PlateReader.load(models_dir, int8)
        return reader, f"trained models from {models_dir}, {'int8' if reader.int8 else 'float'}"
    localizer = Localizer(params.TrainLocalizeParams.WIDTH, params.PrepareLocalizeParams.INPUT_SIZE)
    ocr = PlateOCR(params.TrainOCRParams.WIDTH, params.PrepareOCRParams.CROP_HEIGHT, params.PrepareOCRParams.CROP_WIDTH)
    return PlateReader(localizer, ocr, {"crop_margin": params.PrepareOCRParams.CROP_MARGIN}), "untrained default-size models"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="out/models")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 32, 256])
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3, help="best of N timed passes")
    parser.add_argument("--float", action="store_true", help="the float networks, not the int8 copies")
    args = parser.parse_args()
    reader, source = reader_for(args.models, int8=not args.float)
    scenes = [make_scene(np.random.default_rng([0, 99, i]), params.GeneratorParams, params.SCENE_SIZE).image
              for i in range(args.images)]
    print(f"{source}; {args.images} scenes of {params.SCENE_SIZE}x{params.SCENE_SIZE}; "
          f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}")
    for batch in args.batch:
        reader.read(scenes[:batch])  # warm-up
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            for i in range(0, len(scenes), batch):
                reader.read(scenes[i:i + batch])
            best = min(best, time.perf_counter() - start)
        print(f"batch {batch:4d}: {len(scenes) / best:8.1f} plates/s  ({1000 * best / len(scenes):.2f} ms/plate)")


if __name__ == "__main__":
    main()
