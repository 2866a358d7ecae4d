"""train_localize: the corner localizer on data/prepared/localize -> out/models/localize/model.pt."""

import torch
import torch.nn.functional as F

import params
from src.datasets.build import load_meta, load_split
from src.models.networks import Localizer
from src.models.training import train, validate_train_params
from src.utils.errors import run_main

DATA_DIR = "data/prepared/localize"
HEATMAP_SIGMA = 1.0  # width of the target blob on the heatmap, in heatmap cells


def localize_loss(model: Localizer, images: torch.Tensor, labels: dict[str, torch.Tensor]) -> torch.Tensor:
    """Corner error (soft-argmax, in heatmap cells) + heatmap cross-entropy against a Gaussian
    blob at the true corner (gives a gradient everywhere early on) + plate-present BCE.
    Corner terms count only for scenes that hold a plate."""
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
    gx = torch.exp(-((grid_x.view(1, 1, 1, w) - true[..., 0, None, None]) ** 2) / (2 * HEATMAP_SIGMA ** 2))
    gy = torch.exp(-((grid_y.view(1, 1, h, 1) - true[..., 1, None, None]) ** 2) / (2 * HEATMAP_SIGMA ** 2))
    target = (gx * gy).flatten(2)
    target = target / target.sum(-1, keepdim=True).clamp_min(1e-12)
    ce = -(target * heatmaps.float().flatten(2).log_softmax(-1)).sum(-1).mean(-1)
    per_scene = coord + 0.5 * ce
    return (per_scene * present).sum() / present.sum() + presence_loss


def main() -> None:
    p = params.TrainLocalizeParams
    validate_train_params(p)
    meta = load_meta(DATA_DIR)
    train_data, val_data = load_split(DATA_DIR, "train"), load_split(DATA_DIR, "val")
    summary = train(name="train_localize", p=p,
                    make_model=lambda: Localizer(width=p.WIDTH, input_size=meta["input_size"]),
                    loss_fn=localize_loss, train=train_data,
                    val=val_data, run_dir="out/runs/localize", checkpoint_dir="out/checkpoints/localize",
                    model_path="out/models/localize/model.pt",
                    model_extra={"scene_size": meta["scene_size"]})
    print(f"train_localize: done, {summary}")


if __name__ == "__main__":
    run_main(main)
