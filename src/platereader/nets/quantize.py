"""Int8 copies of the trained networks, for reading on a CPU.

Post-training static quantization with PyTorch's FX graph mode: at the end of training, `calibrate`
runs the float network on a sample of its own training inputs, records the range of every
activation, converts the network to int8 and returns that state; the model file keeps it next to
the float weights (extra["int8"]). `int8_copy` rebuilds the int8 network from the state alone, so
reading needs no data. The int8 convolutions are faster on a CPU and give the same answers to
within the noise of the test sets.

Layers named in a network's `float_modules` stay in float: the localizer's heatmap logits feed a
soft-argmax whose sub-pixel corners int8 steps would coarsen. Static quantization leaves recurrent
layers (the OCR's GRU) in float; `int8_copy` quantizes them dynamically (int8 weights, activation
scales taken per call), which needs no calibration.
"""

from __future__ import annotations

import copy
import warnings

import torch
import torch.nn as nn

from platereader.nets.networks import Localizer, fold_batchnorm

ENGINE = "x86"  # oneDNN/fbgemm int8 kernels: Intel and AMD CPUs (AVX2 or newer)
CALIBRATION_INPUTS = 512  # training inputs whose activation ranges set the int8 scales


def available() -> bool:
    """Whether this PyTorch build has the int8 kernels (not on ARM: the reader stays in float)."""
    return ENGINE in torch.backends.quantized.supported_engines


def _prepared(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """A float copy of `model` with observers on every quantizable layer's activations."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_fx

    torch.backends.quantized.engine = ENGINE  # process-wide, and already the default on x86
    mapping = get_default_qconfig_mapping(ENGINE)
    for name in getattr(model, "float_modules", ()):
        mapping = mapping.set_module_name(name, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notes of torch.ao's observers, not ours to fix
        return prepare_fx(copy.deepcopy(model).cpu().eval(), mapping, (example,))


def _converted(prepared: nn.Module) -> nn.Module:
    from torch.ao.quantization.quantize_fx import convert_fx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rebuilding from a state: its observers saw no data, by design
        return convert_fx(prepared).eval()


@torch.no_grad()
def calibrate(model: nn.Module, inputs: torch.Tensor, batch_size: int = 128) -> dict:
    """The int8 state of `model` calibrated on `inputs` (N, 1, H, W), uint8-range values."""
    inputs = inputs.cpu().float()
    prepared = _prepared(model, inputs[:1])
    for batch in inputs.split(batch_size):
        prepared(batch)
    return {"input_shape": list(inputs.shape[1:]), "state_dict": _converted(prepared).state_dict()}


def int8_copy(model: nn.Module, int8: dict | None) -> nn.Module | None:
    """The int8 network `calibrate` described, or None without a state or without int8 kernels."""
    if not int8 or not available():
        return None
    from torch.ao.quantization import quantize_dynamic

    converted = _converted(_prepared(model, torch.zeros(1, *int8["input_shape"])))
    converted.load_state_dict(int8["state_dict"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation note
        return quantize_dynamic(converted, {nn.GRU}, dtype=torch.qint8, inplace=True)


def inference_copy(model: nn.Module, extra: dict, int8: bool) -> tuple[nn.Module, bool]:
    """What reading runs, and whether it is int8: the int8 copy saved with the model when `int8`
    and the file and CPU allow it, else the float network with BatchNorm folded in."""
    copy = int8_copy(model, extra.get("int8")) if int8 else None
    return (copy, True) if copy is not None else (fold_batchnorm(model), False)


def int8_trunk(converted: nn.Module | None, prefixes=Localizer.trunk_modules):
    """The int8 copy's chain of convolutions named by `prefixes` (the localizer's trunk) as a
    function of float normalised images, float features out; None without an int8 copy or where
    its graph is not such a chain (the caller stays in float). The photo search runs the trunk over
    whole shrunk photos, where int8 convolutions are several times faster than float ones."""
    graph = getattr(converted, "graph", None)
    if graph is None:
        return None
    chain = [n for n in graph.nodes if n.op == "call_module" and n.target.split(".")[0] in prefixes]
    if not chain or any(n.args[0] is not prev for prev, n in zip(chain, chain[1:])):
        return None
    quantize = chain[0].args[0]
    if quantize.op != "call_function" or quantize.target is not torch.quantize_per_tensor:
        return None
    _, scale, zero_point, dtype = quantize.args
    scale, zero_point = (float(getattr(converted, scale.target)), int(getattr(converted, zero_point.target)))
    modules = [converted.get_submodule(n.target) for n in chain]

    def trunk(normalised: torch.Tensor) -> torch.Tensor:
        x = torch.quantize_per_tensor(normalised.contiguous(memory_format=torch.channels_last),
                                      scale, zero_point, dtype)
        for module in modules:
            x = module(x)
        return x.dequantize()

    return trunk
