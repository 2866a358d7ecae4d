"""The two training losses and the OCR's target encoding."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from platereader.nets.networks import Localizer, PlateOCR, encode_text


def localize_loss(model: Localizer, images: torch.Tensor, labels: dict[str, torch.Tensor], *,
                  heatmap_sigma: float, heatmap_weight: float) -> torch.Tensor:
    """Corner error (soft-argmax, in heatmap cells) + `heatmap_weight` x heatmap cross-entropy
    against a Gaussian blob of `heatmap_sigma` cells at the true corner (a gradient everywhere
    early on) + plate-present BCE. Corner terms count only for scenes that hold a plate."""
    heatmaps, present_logits = model(images.unsqueeze(1))
    size = images.shape[-1]
    present = labels["present"].float()
    presence_loss = F.binary_cross_entropy_with_logits(present_logits, present)
    if present.sum() == 0:
        return presence_loss
    b, k, h, w = heatmaps.shape
    cell = size / w
    true = labels["corners"] / cell  # in cells
    pred = Localizer.corners(heatmaps, size) / cell
    coord = F.smooth_l1_loss(pred, true, reduction="none").sum(-1).mean(-1)
    grid_x = torch.arange(w, device=images.device) + 0.5
    grid_y = torch.arange(h, device=images.device) + 0.5
    gx = torch.exp(-((grid_x.view(1, 1, 1, w) - true[..., 0, None, None]) ** 2) / (2 * heatmap_sigma ** 2))
    gy = torch.exp(-((grid_y.view(1, 1, h, 1) - true[..., 1, None, None]) ** 2) / (2 * heatmap_sigma ** 2))
    target = (gx * gy).flatten(2)
    target = target / target.sum(-1, keepdim=True).clamp_min(1e-12)
    ce = -(target * heatmaps.float().flatten(2).log_softmax(-1)).sum(-1).mean(-1)
    per_scene = coord + heatmap_weight * ce
    return (per_scene * present).sum() / present.sum() + presence_loss


def localize_loss_for(p) -> partial:
    """`localize_loss` with the weights of a train-localize config (HEATMAP_SIGMA, HEATMAP_WEIGHT)."""
    return partial(localize_loss, heatmap_sigma=p.HEATMAP_SIGMA, heatmap_weight=p.HEATMAP_WEIGHT)


def encode_targets(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Texts -> padded label indices (N, L) int64 and lengths (N,) for CTC."""
    width = max(1, max((len(t) for t in texts), default=1))
    targets = np.zeros((len(texts), width), dtype=np.int64)
    lengths = np.zeros(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        codes = encode_text(str(text))
        targets[i, :len(codes)] = codes
        lengths[i] = len(codes)
    return targets, lengths


def ctc_loss(model: PlateOCR, images: torch.Tensor, labels: dict[str, torch.Tensor]) -> torch.Tensor:
    log_probs = model(images.unsqueeze(1)).float().log_softmax(-1)  # (T, B, C)
    steps = torch.full((images.shape[0],), log_probs.shape[0], dtype=torch.long)
    # Padded targets (B, L): CTC reads the first `lengths[b]` entries of each row.
    return F.ctc_loss(log_probs, labels["targets"], steps, labels["lengths"].cpu(), blank=0, reduction="mean")


def with_targets(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Prepared OCR arrays (images, texts) -> what `ctc_loss` trains on."""
    targets, lengths = encode_targets(data["texts"])
    return {"images": data["images"], "targets": targets, "lengths": lengths}
