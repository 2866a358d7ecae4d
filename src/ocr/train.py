"""train_ocr: the CTC plate reader on data/prepared/ocr -> out/models/ocr/model.pt."""

import numpy as np
import torch
import torch.nn.functional as F

import params
from src.datasets.build import load_meta, load_split
from src.models.networks import PlateOCR, encode_text
from src.models.training import train, validate_train_params
from src.utils.errors import run_main

DATA_DIR = "data/prepared/ocr"


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
    lengths = labels["lengths"]
    # Padded targets (B, L): CTC reads the first `lengths[b]` entries of each row.
    return F.ctc_loss(log_probs, labels["targets"], steps, lengths.cpu(), blank=0, reduction="mean")


def with_targets(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    targets, lengths = encode_targets(data["texts"])
    return {"images": data["images"], "targets": targets, "lengths": lengths}


def main() -> None:
    p = params.TrainOCRParams
    validate_train_params(p)
    meta = load_meta(DATA_DIR)
    train_data = with_targets(load_split(DATA_DIR, "train"))
    val_data = with_targets(load_split(DATA_DIR, "val"))
    summary = train(name="train_ocr", p=p,
                    make_model=lambda: PlateOCR(p.WIDTH, meta["crop_height"], meta["crop_width"]),
                    loss_fn=ctc_loss, train=train_data, val=val_data,
                    run_dir="out/runs/ocr", checkpoint_dir="out/checkpoints/ocr",
                    model_path="out/models/ocr/model.pt", model_extra={"crop_margin": meta["crop_margin"]})
    print(f"train_ocr: done, {summary}")


if __name__ == "__main__":
    run_main(main)
