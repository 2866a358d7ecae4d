"""ONNX Runtime against the reader's PyTorch networks, side by side on this CPU.

    python -m scripts.bench_onnx [--models out/models] [--repeats 30] [--threads 2]

Exports the float networks as the reader runs them (BatchNorm folded) to ONNX in a temporary
folder, checks that ONNX Runtime gives PyTorch's outputs, then times each network call the reader
makes on a 1280x720 photo: the localizer on 1 and 16 inputs of 96x96 (the first pass, the
windows), its dense presence pass over the photo shrunk for the smallest window side (the photo
search's largest pass), and the OCR on 1 and 16 crops. Prints ms per call (median of --repeats)
for PyTorch int8 (what the reader runs by default; "-" where there is no int8 copy, as for the
presence pass), PyTorch float and ONNX Runtime float, and how many times faster ONNX Runtime is
than what the reader runs. Needs the optional packages: `pip install -e ".[onnx]"` (the test
tools include them).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import warnings

import numpy as np
import torch
import torch.nn as nn

import params
from platereader.errors import UserError, run_main
from platereader.nets.networks import fold_batchnorm, load_trained
from platereader.nets.quantize import inference_copy
from scripts.common import parser


class PresenceMap(nn.Module):
    """The photo search's dense pass as a module of its own (export needs a forward)."""

    def __init__(self, localizer: nn.Module, window: int):
        super().__init__()
        self.localizer, self.window = localizer, window

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.localizer.presence_map(images, self.window)


def onnx_session(model: nn.Module, example: torch.Tensor, path: str, threads: int):
    import onnxruntime

    with warnings.catch_warnings():  # the exporter's notes on the GRU and on data-dependent branches
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), path, input_names=["x"], dynamo=False,
                          dynamic_axes={"x": {0: "batch"}})
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def median_ms(call, repeats: int) -> float:
    call()  # warm-up: allocations, kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv=None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--models", default="out/models", help="folder with localize/ and ocr/ model.pt")
    ap.add_argument("--repeats", type=int, default=30, help="timed calls per network and engine")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="threads of both engines")
    args = ap.parse_args(argv)
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxruntime  # noqa: F401
    except ImportError:
        raise UserError('bench_onnx needs onnx and onnxruntime: pip install -e ".[onnx]"') from None
    if args.repeats < 1 or args.threads < 1:
        raise UserError("--repeats and --threads must be at least 1")
    torch.set_num_threads(args.threads)
    localizer, localizer_extra = load_trained(os.path.join(args.models, "localize", "model.pt"))
    ocr, ocr_extra = load_trained(os.path.join(args.models, "ocr", "model.pt"))
    size = localizer.config["input_size"]
    share = min(params.ReaderParams.PHOTO_TILE_SIDES)
    long_side = round(size / share)  # the photo shrunk so that a window of that share is one input
    photo = (1, 1, round(long_side * 720 / 1280), long_side)
    crop = (ocr.config["crop_height"], ocr.config["crop_width"])
    folded_localizer, folded_ocr = fold_batchnorm(localizer).eval(), fold_batchnorm(ocr).eval()
    int8_localizer, has_int8 = inference_copy(localizer, localizer_extra, True)
    int8_ocr, ocr_has_int8 = inference_copy(ocr, ocr_extra, True)
    if not (has_int8 and ocr_has_int8):  # models saved without their int8 copies
        int8_localizer = int8_ocr = None
    presence = PresenceMap(folded_localizer, size).eval()
    gen = torch.Generator().manual_seed(0)
    cases = [  # (call, inputs, float network, int8 network)
        ("localizer, 1 input", torch.rand(1, 1, size, size, generator=gen) * 255, folded_localizer, int8_localizer),
        ("localizer, 16 inputs", torch.rand(16, 1, size, size, generator=gen) * 255, folded_localizer, int8_localizer),
        (f"presence pass, {photo[3]}x{photo[2]}", torch.rand(*photo, generator=gen) * 255, presence, None),
        ("OCR, 1 crop", torch.rand(1, 1, *crop, generator=gen) * 255, folded_ocr, int8_ocr),
        ("OCR, 16 crops", torch.rand(16, 1, *crop, generator=gen) * 255, folded_ocr, int8_ocr),
    ]
    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {args.threads} threads, "
          f"median of {args.repeats} calls, ms per call")
    print("\n| call | PyTorch int8 | PyTorch float | ONNX Runtime float | the reader's / ORT |")
    print("| --- | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:  # the exporter traces outside inference mode
        sessions = [onnx_session(net, x, os.path.join(tmp, f"{k}.onnx"), args.threads)
                    for k, (_, x, net, _) in enumerate(cases)]
    with torch.inference_mode():
        for (name, x, net, net8), session in zip(cases, sessions):
            feed = {"x": x.numpy()}
            ours = net(x)
            ours = ours if isinstance(ours, tuple) else (ours,)
            theirs = session.run(None, feed)
            for a, b in zip(ours, theirs):
                if not np.allclose(a.numpy(), b, rtol=1e-3, atol=1e-3):
                    raise UserError(f"{name}: ONNX Runtime's outputs differ from PyTorch's "
                                    f"(max {np.abs(a.numpy() - b).max():.3g})")
            t_int8 = median_ms(lambda: net8(x), args.repeats) if net8 is not None else None
            t_float = median_ms(lambda: net(x), args.repeats)
            t_ort = median_ms(lambda: session.run(None, feed), args.repeats)
            int8 = f"{t_int8:.2f}" if t_int8 is not None else "-"
            ours_ms = t_int8 if t_int8 is not None else t_float  # what the reader runs
            print(f"| {name} | {int8} | {t_float:.2f} | {t_ort:.2f} | {ours_ms / t_ort:.2f} |", flush=True)


if __name__ == "__main__":
    run_main(main)
