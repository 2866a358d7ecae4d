"""How the trained reader holds up on scenes unlike its training data; no DVC run needed.

    python -m scripts.robustness [--models out/models] [--images 2000] [--seed 51] [--float]

The reader will meet plates drawn in other typefaces, photographed at other sizes and degraded in
ways the generator does not make. This reads --images scenes from a seed no stage uses under each
of these conditions and prints val_acc, plate_acc and no_plate_acc per condition (a markdown table):

- as trained: the generator's own scenes (the reference row);
- held-out typefaces: every plate (and every distractor text) drawn in one font file the training
  data never use, one row per font: matplotlib's serif fonts, and Liberation Sans, Sans Narrow,
  Mono and Serif where the system has them (Debian's fonts-liberation, which Chromium pulls in);
- degradations past the generator's ranges, applied to the same scenes: JPEG at quality 10 on
  every scene (training: 30 % of scenes at 20-90), a Gaussian blur of radius 2.5 on every scene
  (training: a box blur of 0.5-1.8 px on some), Gaussian noise of sigma 20, contrast squeezed to
  grey levels 80-176, the scene scaled up 2x (a larger photograph) or down to 160 px;
- small plates: plate widths of 20-35 % of the scene side (training: 35-95 %).
"""

import os

import numpy as np
from PIL import Image, ImageFilter

import params
from platereader.errors import run_main
from platereader.scoring import inspect_all, score
from platereader.synth import fonts
from platereader.synth.augment import jpeg
from scripts.common import add_reader_options, check_fresh, fresh_set, load_reader, parser, precision

MPL_HELD_OUT = ["DejaVuSerif.ttf", "cmr10.ttf", "cmb10.ttf"]  # not in fonts.MPL_FONT_FILES
SYSTEM_HELD_OUT = [f"/usr/share/fonts/truetype/liberation/Liberation{name}.ttf"
                   for name in ("Sans-Regular", "Sans-Bold", "SansNarrow-Regular", "Mono-Regular", "Serif-Regular")]


def held_out_fonts() -> list[str]:
    folder = fonts.mpl_font_dir() or ""
    candidates = [os.path.join(folder, f) for f in MPL_HELD_OUT] + SYSTEM_HELD_OUT
    return [path for path in candidates if os.path.exists(path) and path not in fonts.training_fonts()]


def each_image(function):
    """A degradation of a batch (N, H, W) uint8, one PIL image at a time."""
    return lambda images: np.stack([np.asarray(function(Image.fromarray(image))) for image in images])


def noise(images: np.ndarray, sigma: float = 20.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(images + rng.normal(0, sigma, images.shape), 0, 255).astype(np.uint8)


DEGRADATIONS = {
    "JPEG quality 10": each_image(lambda image: jpeg(image, 10)),
    "Gaussian blur, radius 2.5": each_image(lambda image: image.filter(ImageFilter.GaussianBlur(2.5))),
    "Gaussian noise, sigma 20": noise,
    "contrast squeezed to 80-176": lambda images: (80 + images.astype(np.float32) * 96 / 255).round().astype(np.uint8),
    "scene scaled up 2x (512 px)": each_image(lambda image: image.resize((512, 512), Image.BICUBIC)),
    "scene scaled down to 160 px": each_image(lambda image: image.resize((160, 160), Image.BOX)),
}
SMALL_PLATES = [0.2, 0.35]


def main() -> None:
    ap = parser(__doc__)
    add_reader_options(ap)
    ap.add_argument("--images", type=int, default=2000, help="scenes per condition")
    ap.add_argument("--seed", type=int, default=51)
    ap.add_argument("--float", action="store_true", help="read with the float networks, not the int8 copies")
    args = ap.parse_args()
    check_fresh([args.seed], "--seed", args.images, args.batch)
    reader = load_reader(args.models, int8=not args.float)

    def row(name: str, data: dict, images: np.ndarray | None = None) -> None:
        candidates, _ = inspect_all(reader, data["images"] if images is None else images, args.batch)
        _, acc = score(candidates, data["texts"], data["present"])
        print(f"| {name} | " + " | ".join(f"{acc[k]:.4f}" for k in ("val_acc", "plate_acc", "no_plate_acc")) + " |",
              flush=True)

    print(f"{args.models} ({precision(reader)}), {args.images} scenes of seed {args.seed} per row\n")
    print("| condition | val_acc | plate_acc | no_plate_acc |\n| --- | --- | --- | --- |")
    trained = fresh_set(args.seed, args.images)
    row("as trained", trained)
    for name, degrade in DEGRADATIONS.items():
        row(name, trained, degrade(trained["images"]))
    small = type("SmallPlates", (params.GeneratorParams,), {"PLATE_WIDTH_RANGE": SMALL_PLATES})
    row(f"small plates ({SMALL_PLATES[0]:.0%}-{SMALL_PLATES[1]:.0%} of the scene)",
        fresh_set(args.seed, args.images, small))
    for path in held_out_fonts():
        fonts.use_fonts((path,))
        try:
            row(f"typeface {os.path.basename(path)}", fresh_set(args.seed, args.images))
        finally:
            fonts.use_fonts(None)


if __name__ == "__main__":
    run_main(main)
