"""train_ocr: the CTC plate reader on data/prepared/ocr -> out/models/ocr/model.pt."""

import params
from platereader.datasets import load_meta, load_split
from platereader.errors import run_main
from platereader.nets.networks import PlateOCR
from platereader.training.loop import train, validate_train_params
from platereader.training.losses import ctc_loss, with_targets

DATA_DIR = "data/prepared/ocr"


def main() -> None:
    p = params.TrainOCRParams
    validate_train_params(p)
    meta = load_meta(DATA_DIR)
    summary = train(name="train_ocr", p=p,
                    make_model=lambda: PlateOCR(p.WIDTH, meta["crop_height"], meta["crop_width"]),
                    loss_fn=ctc_loss, train=with_targets(load_split(DATA_DIR, "train")),
                    val=with_targets(load_split(DATA_DIR, "val")), run_dir="out/runs/ocr",
                    checkpoint_dir="out/checkpoints/ocr", model_path="out/models/ocr/model.pt",
                    model_extra={"crop_margin": meta["crop_margin"]})
    print(f"train_ocr: done, {summary}")


if __name__ == "__main__":
    run_main(main)
