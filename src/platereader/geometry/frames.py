"""Scene -> localizer inputs, shared by the prepare stage and the PlateReader.

The localizer runs in passes. The first pass sees the whole scene shrunk to `size` (`fit_square`) and
finds the plate roughly; the second sees a window unwarped from that first quad, widened by a
margin (`window_inputs`): there the plate is upright and fills the input, its height ~2.5x
as many pixels as in a square zoom, so the second pass places the corners precisely. One network
serves both kinds: prepare_localize trains it on whole scenes and on such windows, and the model
file keeps the margin it was trained with. Further window passes, each from the last quad, fix
most quads the first pass got too far off.

Every input is a *frame*: a quad in scene pixels that `rectify` unwarps (with the margin) into
the input, so `frame_to_scene` maps any prediction back to the scene, for either pass.
"""

import torch
import torch.nn.functional as F

from platereader.geometry.rectify import apply_homography, crop_to_image, rectify, to_uint8

PAD_VALUE = 0  # the letterbox border (only non-square scenes get one)
Margin = tuple[float, float]  # a window around a quad: shares of the quad's width, height


def fit_square(scenes: torch.Tensor, size: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, float]:
    """Shrink scenes (B, 1, H, W) of one size so the longer side is `size`, each top-left on a square.

    Returns the (B, size, size) uint8 inputs and the scale factor: model pixel = scene pixel * scale.
    Top-left placement keeps the mapping a pure scale, so corners map back by dividing. The shrink
    is antialiased (a triangle filter as wide as the scale, Pillow's BILINEAR; the same grey levels
    to within one), in one call for the batch. dtype: see `rectify` (float64 for stored data).
    """
    shrunk, scale = shrink(scenes, size, size, dtype)
    out = torch.full((scenes.shape[0], size, size), PAD_VALUE, dtype=torch.uint8)
    out[:, :shrunk.shape[1], :shrunk.shape[2]] = shrunk
    return out, scale


def shrink(scenes: torch.Tensor, longer: int, min_side: int = 1,
           dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, float]:
    """Scenes (B, 1, H, W) resized (antialiased) so the longer side is `longer`, padded at the right
    and bottom to at least `min_side` on each side: (B, H', W') uint8 and the scale factor."""
    height, width = scenes.shape[-2:]
    scale = longer / max(width, height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = F.interpolate(scenes.to(dtype), size=(new_h, new_w), mode="bilinear", antialias=True,
                            align_corners=False)
    out = torch.full((scenes.shape[0], max(new_h, min_side), max(new_w, min_side)), PAD_VALUE, dtype=torch.uint8)
    out[:, :new_h, :new_w] = to_uint8(resized.squeeze(1))
    # Per-axis scales differ from `scale` by rounding; use the longer side's exact one.
    return out, (new_w / width if width >= height else new_h / height)


def frame_to_scene(frames: torch.Tensor, points: torch.Tensor, size: int, margin: Margin) -> torch.Tensor:
    """Input pixels (B, K, 2) of frames (B, 4, 2) -> scene pixels."""
    return apply_homography(crop_to_image(frames, size, size, margin), points).to(torch.float32)


def scene_to_frame(frames: torch.Tensor, points: torch.Tensor, size: int, margin: Margin) -> torch.Tensor:
    """Scene pixels (B, K, 2) -> input pixels of frames (B, 4, 2)."""
    to_scene = crop_to_image(frames, size, size, margin)
    return apply_homography(torch.linalg.inv(to_scene), points).to(torch.float32)


def square_frames(left: torch.Tensor, top: torch.Tensor, side: torch.Tensor, margin: Margin) -> torch.Tensor:
    """The frames (B, 4, 2) whose inputs show the squares [left, left + side] x [top, top + side]
    of the scenes: the frame is the square less `margin`, which `rectify` adds back."""
    mx, my = margin
    left, top, side = (v.to(torch.float64) for v in (left, top, side))
    x0, x1 = left + side * mx / (1 + 2 * mx), left + side * (1 + mx) / (1 + 2 * mx)
    y0, y1 = top + side * my / (1 + 2 * my), top + side * (1 + my) / (1 + 2 * my)
    return torch.stack([torch.stack([x0, y0], 1), torch.stack([x1, y0], 1),
                        torch.stack([x1, y1], 1), torch.stack([x0, y1], 1)], 1).to(torch.float32)


def whole_scene_frames(scales: torch.Tensor, size: int, margin: Margin) -> torch.Tensor:
    """The frames (B, 4, 2) of first-pass inputs: `fit_square` shows scene [0, size / scale]^2."""
    zero = torch.zeros(len(scales), dtype=torch.float64)
    return square_frames(zero, zero, size / scales.to(torch.float64), margin)


def window_inputs(scenes: torch.Tensor, frames: torch.Tensor, size: int, margin: Margin,
                  dtype=torch.float32, coarser=(), rows=None) -> torch.Tensor:
    """Second-pass inputs: scenes (B, 1, H, W) unwarped from frames (B, 4, 2) -> (B, size, size) uint8.

    Beyond the scene the edge pixels repeat. dtype, coarser (the scenes' `halvings`) and rows (the
    scene of each frame): see `rectify`.
    """
    crops = rectify(scenes, frames, size, size, margin, dtype, coarser, rows)
    return to_uint8(crops.squeeze(1))
