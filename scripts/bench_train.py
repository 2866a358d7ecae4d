"""Training speed of both networks on the CPU: images/s of forward + backward + optimizer steps.

    python -m scripts.bench_train [--steps 10] [--batch 128] [--precision float32 bfloat16] [--plain-malloc]

Runs on random inputs of the default shapes (speed does not depend on the data). --plain-malloc
leaves glibc's allocator as it is, to compare with the tuning training uses
(src/platereader/training/memory.py); run it in a separate process, the tuning cannot be undone.
--precision times the forward pass in each precision given, as training's PRECISION sets it.
"""

import os
import time

import torch

import params
from platereader.nets.networks import Localizer, PlateOCR
from platereader.training.loop import PRECISIONS, forward_dtype
from platereader.training.losses import ctc_loss, localize_loss_for
from platereader.training.memory import keep_freed_memory
from scripts.common import parser


def images_per_s(model, loss_fn, images, labels, steps: int, dtype: torch.dtype) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for i in range(steps + 2):  # two warm-up steps
        if i == 2:
            start = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):  # as training does
            loss = loss_fn(model, images, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return steps * len(images) / (time.perf_counter() - start)


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--precision", nargs="+", choices=PRECISIONS, default=["float32"])
    ap.add_argument("--plain-malloc", action="store_true")
    args = ap.parse_args()
    if not args.plain_malloc:
        keep_freed_memory()
    torch.set_num_threads(os.cpu_count() or 1)
    malloc = "glibc defaults" if args.plain_malloc else "keep_freed_memory()"
    torch.manual_seed(0)
    b, size, p = args.batch, params.PrepareLocalizeParams.INPUT_SIZE, params.PrepareOCRParams
    corners = (torch.tensor([[0.125, 0.3], [0.875, 0.3], [0.875, 0.53], [0.125, 0.53]]) * size).expand(b, 4, 2)
    scenes = torch.randint(0, 256, (b, size, size), dtype=torch.uint8)
    crops = torch.randint(0, 256, (b, p.CROP_HEIGHT, p.CROP_WIDTH), dtype=torch.uint8)
    targets = torch.randint(1, 37, (b, 8))
    loss = localize_loss_for(params.TrainLocalizeParams)
    for precision in args.precision:
        dtype = forward_dtype(precision, torch.device("cpu"))
        torch.manual_seed(0)  # the same initial weights in each precision
        localizer = Localizer(params.TrainLocalizeParams.WIDTH, size)
        loc = images_per_s(localizer, loss, scenes, {"corners": corners, "present": torch.ones(b, dtype=torch.bool)},
                           args.steps, dtype)
        ocr = PlateOCR(params.TrainOCRParams.WIDTH, p.CROP_HEIGHT, p.CROP_WIDTH)
        rate = images_per_s(ocr, ctc_loss, crops, {"targets": targets, "lengths": torch.full((b,), 8)},
                            args.steps, dtype)
        print(f"batch {b}, {torch.get_num_threads()} threads, {malloc}, {precision} ({str(dtype)[6:]}): "
              f"localizer {loc:.0f} images/s, OCR {rate:.0f} images/s")


if __name__ == "__main__":
    main()
