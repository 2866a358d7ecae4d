"""Perspective-unwarp a plate from its 4 corners into a fixed-size crop.

One function serves the OCR prepare stage (true corners) and the PlateReader (predicted corners), so
the OCR model sees crops made the same way in training and in use.

Coordinates are continuous pixel coordinates: an image of width W spans x in [0, W], pixel centres
at x + 0.5. Corners are ordered top-left, top-right, bottom-right, bottom-left of the plate.
"""

import torch
import torch.nn.functional as F

from platereader.geometry.homography import square_to_quad_coefficients


def square_to_quad(corners: torch.Tensor) -> torch.Tensor:
    """Homographies (B, 3, 3) mapping the unit square (0,0),(1,0),(1,1),(0,1) onto the quads."""
    coefficients = square_to_quad_coefficients(*corners.to(torch.float64).flatten(1).unbind(1))
    return torch.stack([*coefficients, torch.ones_like(coefficients[0])], 1).view(-1, 3, 3)


def apply_homography(h: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Map points (B, K, 2) by homographies (B, 3, 3)."""
    h, points = h.to(torch.float64), points.to(torch.float64)
    mapped = points @ h[:, :2, :2].transpose(1, 2) + h[:, None, :2, 2]
    w = points @ h[:, 2:, :2].transpose(1, 2) + h[:, None, 2:, 2]
    return mapped / torch.where(w.abs() < 1e-12, torch.full_like(w, 1e-12), w)


def crop_to_image(corners: torch.Tensor, out_h: int, out_w: int, margin) -> torch.Tensor:
    """Homographies (B, 3, 3) from crop pixels to image pixels, for the crops `rectify` makes."""
    mx, my = _margins(margin)
    to_unit = torch.tensor([[(1 + 2 * mx) / out_w, 0, -mx], [0, (1 + 2 * my) / out_h, -my], [0, 0, 1]],
                           dtype=torch.float64)
    return square_to_quad(corners) @ to_unit


def _margins(margin) -> tuple[float, float]:
    return (float(margin), float(margin)) if isinstance(margin, (int, float)) else tuple(map(float, margin))


def _sampling_grid(corners, height, width, out_h, out_w, margin, dtype):
    """grid_sample grid (B, out_h, out_w, 2) for quads in images of size (height, width)."""
    mx, my = _margins(margin)
    # Crop cell centres in plate units (u, v in [0, 1] inside the quad, beyond it in the margin).
    v = (-my + (1 + 2 * my) * (torch.arange(out_h, dtype=torch.float64) + 0.5) / out_h).view(1, -1, 1)
    u = (-mx + (1 + 2 * mx) * (torch.arange(out_w, dtype=torch.float64) + 0.5) / out_w).view(1, 1, -1)
    # Fold grid_sample's [-1, 1] normalisation into the homography, then apply it by broadcasting:
    # each term that varies along one axis only is summed at that size, so each of x, y and w costs
    # one full-size add, and x, y are divided straight into the grid.
    to_grid = torch.tensor([[2 / width, 0, -1], [0, 2 / height, -1], [0, 0, 1]], dtype=torch.float64)
    h = (to_grid @ square_to_quad(corners)).to(dtype).view(-1, 9, 1, 1)
    u, v = u.to(dtype), v.to(dtype)
    grid = torch.empty(h.shape[0], out_h, out_w, 2, dtype=dtype)
    w = (h[:, 6] * u + h[:, 8]) + h[:, 7] * v
    torch.div((h[:, 0] * u + h[:, 2]) + h[:, 1] * v, w, out=grid[..., 0])
    torch.div((h[:, 3] * u + h[:, 5]) + h[:, 4] * v, w, out=grid[..., 1])
    # A quad that folds over itself sends some cells towards infinity (w near or at 0: inf, or NaN
    # for 0/0). Beyond +-1 the border pixel is sampled anyway, so clamping changes nothing else,
    # but keeps grid_sample's index arithmetic finite (an overflowing index gives NaN or arbitrary
    # pixels, run to run).
    return grid.nan_to_num_(0.0).clamp_(-2.0, 2.0)


def to_uint8(crops: torch.Tensor) -> torch.Tensor:
    """Float pixels -> uint8: rounded to the nearest grey level, clamped to [0, 255]."""
    return crops.round().clamp(0, 255).to(torch.uint8)


def halvings(image: torch.Tensor, count: int) -> list[torch.Tensor]:
    """Images (B, 1, H, W) shrunk 2x, 4x, ... `count` times (2x2 pixel means, an odd last row or
    column dropped), for `rectify(coarser=...)`: pixel x of the k-th spans x * 2^k of the image."""
    levels = [image.float()]
    for _ in range(count):
        if min(levels[-1].shape[-2:]) < 2:
            break
        levels.append(F.avg_pool2d(levels[-1], 2))
    return levels[1:]


def rectify(images: torch.Tensor, corners: torch.Tensor, out_h: int, out_w: int,
            margin: float | tuple[float, float] = 0.0, dtype: torch.dtype = torch.float32,
            coarser: list[torch.Tensor] = (), rows: torch.Tensor | None = None) -> torch.Tensor:
    """Unwarp quads from images into (B, 1, out_h, out_w) float crops.

    images: (B, 1, H, W) float or uint8; corners: (B, 4, 2) in pixel coordinates of those images;
    margin: extra border around the quad as a share of the plate's width and height (one number for
    both, or (x, y)).
    Where a plate is 2 or more times larger than the crop along an axis, that axis is supersampled
    (f bilinear samples averaged per crop pixel, f = whole source pixels per crop pixel) so that
    shrinking does not alias. Each crop depends only on its own image and corners, never on the
    rest of the batch. rows (B,): the image (row of `images`) each quad is cut from, for many
    quads of fewer images, none of them copied; one image (1, 1, H, W) serves all the quads.
    dtype=torch.float64 is for stored data: float32 sampling differs in the last bits from run to
    run (vectorised kernels), enough to flip many pixels that then round to uint8; in float64 such
    flips are rare, but not absent.
    coarser: the images' `halvings`: a crop that would be supersampled f >= 2 times along
    both axes is sampled from the one 2^k <= f times smaller instead (a box filter as wide, for
    about 1 / 4^k of the samples), so a window of a large part of a photo costs what a small one does.
    """
    images = images.to(dtype)
    corners = corners.to(torch.float32)
    if rows is None and len(images) == 1 and len(corners) > 1:
        rows = torch.zeros(len(corners), dtype=torch.int64)
    height, width = images.shape[-2:]
    # Source pixels per crop pixel along each axis (the longer of the two opposite quad sides).
    top = (corners[:, 1] - corners[:, 0]).norm(dim=1)
    bottom = (corners[:, 2] - corners[:, 3]).norm(dim=1)
    left = (corners[:, 3] - corners[:, 0]).norm(dim=1)
    right = (corners[:, 2] - corners[:, 1]).norm(dim=1)
    mx, my = _margins(margin)
    ratios = torch.stack([torch.maximum(left, right) * (1 + 2 * my) / out_h,
                          torch.maximum(top, bottom) * (1 + 2 * mx) / out_w], 1)
    factors = ratios.nan_to_num(1.0).floor().clamp(1, 8).to(torch.int64)  # (B, 2): y, x
    out = torch.empty(len(corners), 1, out_h, out_w, dtype=dtype)
    levels = factors.min(1).values.float().log2().floor().clamp(0, len(coarser)).to(torch.int64)
    for level in levels.unique().tolist():
        if level:
            idx = (levels == level).nonzero().squeeze(1)
            out[idx] = rectify(coarser[level - 1], corners[idx] / 2 ** level, out_h, out_w, margin, dtype,
                               rows=None if rows is None else rows[idx])
    if coarser and not (levels == 0).all():
        keep = (levels == 0).nonzero().squeeze(1)
        if len(keep):
            out[keep] = rectify(images, corners[keep], out_h, out_w, margin, dtype,
                                rows=None if rows is None else rows[keep])
        return out
    for fy, fx in factors.unique(dim=0).tolist():
        idx = ((factors[:, 0] == fy) & (factors[:, 1] == fx)).nonzero().squeeze(1)
        grid = _sampling_grid(corners[idx], height, width, out_h * fy, out_w * fx, margin, dtype)
        if rows is not None:
            sampled = _sample_stacked(images, grid, rows[idx])
        else:
            src = images if len(idx) == len(images) else images[idx]
            sampled = F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)
        out[idx] = F.avg_pool2d(sampled, (fy, fx)) if fy * fx > 1 else sampled
    return out


def _sample_stacked(images: torch.Tensor, grid: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """grid_sample of grids (k, gh, gw, 2), each in its image images[rows[k]] of (n, 1, H, W): one
    call per image with its grids side by side, so a crop is sampled as it would be alone (one
    tall image of all would need float coordinates as large as the stack, which lose bits)."""
    k, gh, gw, _ = grid.shape
    out = torch.empty(k, 1, gh, gw, dtype=images.dtype)
    for row in rows.unique().tolist():
        idx = (rows == row).nonzero().squeeze(1)
        grids = grid if len(idx) == k else grid[idx]  # one image's quads: no copy of the grid
        out[idx] = F.grid_sample(images[row:row + 1], grids.reshape(1, len(idx) * gh, gw, 2), mode="bilinear",
                                 padding_mode="border", align_corners=False).view(len(idx), 1, gh, gw)
    return out
