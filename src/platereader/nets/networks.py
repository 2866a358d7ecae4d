"""The two networks: a corner localizer and a CTC plate reader, both small enough for a CPU.

Each model stores its own constructor arguments (`config`) so a saved file rebuilds itself
(`load_model`), and takes uint8-range float images (B, 1, H, W); normalisation happens inside.
"""

import copy
import os
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from platereader.errors import UserError
from platereader.formats import ALPHABET

BLANK = 0  # CTC class 0; class i + 1 is ALPHABET[i]


def conv_bn(cin: int, cout: int, stride=1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def channels_last(model: nn.Module) -> nn.Module:
    """Convolution weights stored channels-last (NHWC), so that oneDNN's CPU convolutions skip
    layout conversions in training and reading. The maths is the same; each network's constructor
    calls it, so loading and copies keep it."""
    return model.to(memory_format=torch.channels_last)


def normalise(images: torch.Tensor) -> torch.Tensor:
    return images.float() * (1 / 127.5) - 1


class Localizer(nn.Module):
    """Scene (B, 1, S, S) -> 4 corner heatmaps at stride 4 and a plate-present logit.

    Corners are read from the heatmaps by soft-argmax, which keeps sub-pixel precision while the
    convolutions stay translation-equivariant (better than regressing coordinates from a flat
    vector). A top-down path brings context from the coarse 1/16 map back to 1/4, where the
    heatmaps live. No convolution runs at full resolution: that is what keeps it cheap on a CPU.
    """

    float_modules = ("head.1",)  # the heatmap logits stay float in the int8 copy (src/platereader/nets/quantize.py)
    trunk_modules = ("down2", "down3", "down4")  # what `trunk` runs, in order (and `quantize.int8_trunk`)

    def __init__(self, width: int = 16, input_size: int = 64):
        super().__init__()
        self.config = {"width": width, "input_size": input_size}
        w = width
        self.down2 = nn.Sequential(conv_bn(1, w, 2), conv_bn(w, 2 * w, 2))  # 1/4
        self.down3 = nn.Sequential(conv_bn(2 * w, 4 * w, 2), conv_bn(4 * w, 4 * w))  # 1/8
        self.down4 = nn.Sequential(conv_bn(4 * w, 4 * w, 2), conv_bn(4 * w, 4 * w))  # 1/16
        self.lat3 = nn.Conv2d(4 * w, 4 * w, 1)
        self.lat2 = nn.Conv2d(4 * w, 2 * w, 1)
        self.head = nn.Sequential(conv_bn(2 * w, 2 * w), nn.Conv2d(2 * w, 4, 1))
        self.present = nn.Linear(4 * w, 1)
        channels_last(self)

    def forward(self, images: torch.Tensor):
        """Returns (heatmap logits (B, 4, S/4, S/4), present logits (B,))."""
        x2 = self.down2(normalise(images))
        x3 = self.down3(x2)
        x4 = self.down4(x3)
        up3 = x3 + F.interpolate(self.lat3(x4), size=x3.shape[-2:], mode="nearest")
        up2 = x2 + F.interpolate(self.lat2(up3), size=x2.shape[-2:], mode="nearest")
        return self.head(up2), self.present(x4.amax((2, 3))).squeeze(1)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The 1/16 feature map the presence head reads, from `normalise`d images."""
        for name in self.trunk_modules:
            x = getattr(self, name)(x)
        return x

    def presence_map(self, images: torch.Tensor, window: int, trunk=None) -> torch.Tensor:
        """Plate-present logits (B, h, w) of every `window` x `window` square of larger images (B,
        1, H, W), one every 16 pixels: the trunk runs once over the image and the presence head on
        each window's cells, so a photo is searched for a fraction of the cost of cutting it into
        inputs. Cell (i, j) is the window whose top-left pixel is (16 j, 16 i). trunk: what
        computes `self.trunk` (the int8 copy's, `quantize.int8_trunk`)."""
        x4 = (trunk or self.trunk)(normalise(images))
        cells = max(1, window // 16)
        pooled = F.max_pool2d(x4, cells, stride=1) if min(x4.shape[-2:]) >= cells else x4.amax((2, 3), keepdim=True)
        return self.present(pooled.permute(0, 2, 3, 1)).squeeze(-1)

    @staticmethod
    def corners(heatmaps: torch.Tensor, input_size: int) -> torch.Tensor:
        """Soft-argmax: heatmap logits (B, 4, h, w) -> corners (B, 4, 2) in input pixels."""
        b, k, h, w = heatmaps.shape
        prob = heatmaps.float().flatten(2).softmax(-1).view(b, k, h, w)
        stride_x, stride_y = input_size / w, input_size / h
        xs = (torch.arange(w, dtype=prob.dtype, device=prob.device) + 0.5) * stride_x
        ys = (torch.arange(h, dtype=prob.dtype, device=prob.device) + 0.5) * stride_y
        x = (prob.sum(2) * xs).sum(-1)
        y = (prob.sum(3) * ys).sum(-1)
        return torch.stack([x, y], -1)


def standardise(crops: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit contrast per crop: a plate reads the same in shade, glare or low contrast."""
    x = crops.float()
    mean = x.mean((2, 3), keepdim=True)
    std = x.std((2, 3), keepdim=True).clamp_min(8.0)  # a flat crop is not blown up into noise
    return (x - mean) / std


class PlateOCR(nn.Module):
    """Rectified crop (B, 1, H, W) -> per-column class logits (T=W/4, B, len(ALPHABET)+1).

    A CNN turns the crop into one feature vector per 4 pixel columns (height collapsed), and a
    bidirectional GRU gives every column the context of the whole plate before classification
    (which digit a blurred stroke belongs to depends on its neighbours). The first layer keeps
    the full resolution: glyph strokes are 1-2 pixels wide in small plates.
    """

    def __init__(self, width: int = 32, crop_height: int = 32, crop_width: int = 128):
        super().__init__()
        self.config = {"width": width, "crop_height": crop_height, "crop_width": crop_width}
        w = width
        self.features = nn.Sequential(
            conv_bn(1, w // 2),  # H, W
            conv_bn(w // 2, w, 2),  # H/2, W/2
            conv_bn(w, 2 * w, 2),  # H/4, W/4
            conv_bn(2 * w, 2 * w),
            nn.MaxPool2d((2, 1)),  # H/8: columns stay at W/4, one CTC step each
            conv_bn(2 * w, 4 * w),
        )
        # Collapse the remaining rows into one feature vector per column.
        self.collapse = nn.Sequential(nn.Conv2d(4 * w, 4 * w, (crop_height // 8, 1), bias=False),
                                      nn.BatchNorm2d(4 * w), nn.ReLU(inplace=True))
        # As wide per direction as the features: a narrower GRU squeezes them and learns far slower.
        self.sequence = nn.GRU(4 * w, 4 * w, bidirectional=True)
        self.classify = nn.Linear(8 * w, len(ALPHABET) + 1)
        channels_last(self)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        x = self.collapse(self.features(standardise(crops)))  # (B, C, 1, T)
        x = x.squeeze(2).permute(2, 0, 1)  # (T, B, C)
        x = self.sequence(x)[0] + torch.cat((x, x), -1)  # the skip feeds both directions
        return self.classify(x)  # (T, B, classes) as CTCLoss expects


def encode_text(text: str) -> list[int]:
    return [ALPHABET.index(c) + 1 for c in text]


_CHAR_BYTES = np.frombuffer(b"\0" + ALPHABET.encode(), dtype=np.uint8)  # class index -> byte, blank -> NUL


def ctc_greedy_decode(logits: torch.Tensor) -> list[tuple[str, float]]:
    """Best path decoding: (T, B, C) logits -> [(text, confidence)] per sample."""
    return ctc_best_path(logits.float().softmax(-1))


def ctc_best_path(prob: torch.Tensor) -> list[tuple[str, float]]:
    """Best path decoding of (T, B, C) class probabilities -> [(text, confidence)] per sample.

    Confidence is the product over time steps of the best class probability, i.e. the
    probability of the decoded path; it is low when any column is ambiguous.
    """
    best_p, best = prob.max(-1)  # (T, B)
    conf = best_p.clamp_min(1e-12).log().sum(0).exp().tolist()
    # Collapse repeats, drop blanks: a class is kept where it differs from the step before. Done on
    # whole arrays, then each row's kept bytes joined: no Python loop over the time steps.
    previous = torch.cat([torch.full_like(best[:1], BLANK), best[:-1]])
    kept = torch.where((best != previous) & (best != BLANK), best, BLANK).T.cpu().numpy()  # (B, T)
    rows = _CHAR_BYTES[kept]
    return [(row.tobytes().replace(b"\0", b"").decode(), c) for row, c in zip(rows, conf)]


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An inference copy of `model` with every BatchNorm folded into the convolution before it:
    the same outputs (to float rounding) for one pass less over each feature map."""
    model = copy.deepcopy(model).eval()
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                if isinstance(module[i], nn.Conv2d) and isinstance(module[i + 1], nn.BatchNorm2d):
                    module[i] = fuse_conv_bn_eval(module[i], module[i + 1])
                    module[i + 1] = nn.Identity()
    return model


MODELS = {"Localizer": Localizer, "PlateOCR": PlateOCR}


def save_model(model: nn.Module, path, extra: dict | None = None) -> None:
    """A model file: class name, constructor config, weights (and metadata such as crop margin)."""
    torch.save({"class": type(model).__name__, "config": model.config,
                "state_dict": model.state_dict(), "extra": extra or {}}, path)


def load_model(path, map_location="cpu") -> tuple[nn.Module, dict]:
    with warnings.catch_warnings():
        # An int8 state (src/platereader/nets/quantize.py) loads through torch.ao's deprecated storage and
        # quantized-tensor paths; their warnings say nothing a user of this file can act on.
        warnings.filterwarnings("ignore", message=".*(TypedStorage|quantized tensor creation)")
        blob = torch.load(path, map_location=map_location, weights_only=True)
    model = MODELS[blob["class"]](**blob["config"])
    model.load_state_dict(blob["state_dict"])
    return model.eval(), blob["extra"]


def load_trained(path) -> tuple[nn.Module, dict]:
    """`load_model` with a plain error when the file is missing or unreadable."""
    if not os.path.isfile(path):
        raise UserError(f"model file {path} is missing: train it first with `dvc repro` "
                        "(or `dvc pull` if a remote holds the results)")
    try:
        return load_model(path)
    except Exception as exc:
        raise UserError(f"model file {path} cannot be read ({exc.__class__.__name__}: {exc}); "
                        "retrain it with `dvc repro --force` or restore it with `dvc checkout`") from None
