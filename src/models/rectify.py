"""Perspective-unwarp a plate from its 4 corners into a fixed-size crop.

One function serves the OCR prepare stage (true corners) and the PlateReader (predicted corners), so
the OCR model sees crops made the same way in training and in use.

Coordinates are continuous pixel coordinates: an image of width W spans x in [0, W], pixel centres
at x + 0.5. Corners are ordered top-left, top-right, bottom-right, bottom-left of the plate.
"""

import torch
import torch.nn.functional as F


def square_to_quad(corners: torch.Tensor) -> torch.Tensor:
    """Homographies (B, 3, 3) mapping the unit square (0,0),(1,0),(1,1),(0,1) onto the quads."""
    corners = corners.to(torch.float64)
    batch = corners.shape[0]
    src = torch.tensor([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=torch.float64)
    rows = []
    rhs = []
    for k in range(4):
        u, v = src[k]
        x, y = corners[:, k, 0], corners[:, k, 1]
        zero, one = torch.zeros(batch, dtype=torch.float64), torch.ones(batch, dtype=torch.float64)
        rows.append(torch.stack([u * one, v * one, one, zero, zero, zero, -u * x, -v * x], 1))
        rows.append(torch.stack([zero, zero, zero, u * one, v * one, one, -u * y, -v * y], 1))
        rhs += [x, y]
    a = torch.stack(rows, 1)  # (B, 8, 8)
    b = torch.stack(rhs, 1)  # (B, 8)
    # A degenerate quad (collinear corners) has no homography; lstsq keeps it finite.
    h = torch.linalg.lstsq(a, b.unsqueeze(-1)).solution.squeeze(-1)
    return torch.cat([h, torch.ones(batch, 1, dtype=torch.float64)], 1).view(batch, 3, 3)


def _sampling_grid(corners, height, width, out_h, out_w, margin):
    """grid_sample grid (B, out_h, out_w, 2) for quads in images of size (height, width)."""
    hom = square_to_quad(corners)
    v = (torch.arange(out_h, dtype=torch.float64) + 0.5) / out_h
    u = (torch.arange(out_w, dtype=torch.float64) + 0.5) / out_w
    v, u = torch.meshgrid(-margin + (1 + 2 * margin) * v, -margin + (1 + 2 * margin) * u, indexing="ij")
    uv1 = torch.stack([u, v, torch.ones_like(u)], -1).reshape(-1, 3)  # (P, 3)
    xyw = torch.einsum("bij,pj->bpi", hom, uv1)
    denom = xyw[..., 2:]
    denom = torch.where(denom.abs() < 1e-9, torch.full_like(denom, 1e-9), denom)
    xy = xyw[..., :2] / denom
    grid = torch.stack([2 * xy[..., 0] / width - 1, 2 * xy[..., 1] / height - 1], -1)
    return grid.view(-1, out_h, out_w, 2).to(torch.float32)


def rectify(images: torch.Tensor, corners: torch.Tensor, out_h: int, out_w: int,
            margin: float = 0.0) -> torch.Tensor:
    """Unwarp quads from images into (B, 1, out_h, out_w) float crops.

    images: (B, 1, H, W) float or uint8; corners: (B, 4, 2) in pixel coordinates of those images;
    margin: extra border around the quad as a share of the plate's width and height.
    Large plates are box-filtered down first so that shrinking them does not alias.
    """
    images = images.to(torch.float32)
    corners = corners.to(torch.float32)
    height, width = images.shape[-2:]
    # How many source pixels fall on one crop pixel, per plate (longest quad side vs crop size).
    top = (corners[:, 1] - corners[:, 0]).norm(dim=1)
    bottom = (corners[:, 2] - corners[:, 3]).norm(dim=1)
    left = (corners[:, 3] - corners[:, 0]).norm(dim=1)
    right = (corners[:, 2] - corners[:, 1]).norm(dim=1)
    scale = torch.maximum(torch.maximum(top, bottom) / out_w, torch.maximum(left, right) / out_h)
    factors = (scale * (1 + 2 * margin)).floor().clamp(1, 16).to(torch.int64)
    out = torch.empty(images.shape[0], 1, out_h, out_w)
    for factor in factors.unique().tolist():
        idx = (factors == factor).nonzero().squeeze(1)
        src = images[idx]
        if factor > 1:
            src = F.avg_pool2d(src, factor, ceil_mode=True)
        grid = _sampling_grid(corners[idx] / factor, src.shape[-2], src.shape[-1], out_h, out_w, margin)
        out[idx] = F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out
