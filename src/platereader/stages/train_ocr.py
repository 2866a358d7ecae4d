"""train_ocr: the CTC plate reader on data/prepared/ocr -> out/models/ocr/model.pt.

The plate crops prepare_real made of real photos (data/prepared/real/ocr, none by default) are
mixed in, repeated to make up RealParams.TRAIN_SHARE of the training items; without them the
training set is the synthetic one as it is.
"""

import params
from platereader import validate
from platereader.datasets import load_meta, load_split
from platereader.errors import run_main
from platereader.nets.networks import PlateOCR
from platereader.training.loop import train, validate_train_params
from platereader.training.mixing import check_made_alike, with_real
from platereader.training.losses import ctc_loss, with_targets

DATA_DIR = "data/prepared/ocr"
REAL_DIR = "data/prepared/real/ocr"


def main() -> None:
    p = params.TrainOCRParams
    validate_train_params(p)
    share = validate.number(params.RealParams, "TRAIN_SHARE", 0, 0.95)
    meta, real_meta = load_meta(DATA_DIR), load_meta(REAL_DIR)
    check_made_alike(meta, real_meta, ("crop_height", "crop_width", "crop_margin"), DATA_DIR, REAL_DIR)
    summary = train(name="train_ocr", p=p,
                    make_model=lambda: PlateOCR(p.WIDTH, meta["crop_height"], meta["crop_width"]),
                    loss_fn=ctc_loss,
                    train=with_targets(with_real(load_split(DATA_DIR, "train"), load_split(REAL_DIR, "train"), share)),
                    val=with_targets(load_split(DATA_DIR, "val")), run_dir="out/runs/ocr",
                    checkpoint_dir="out/checkpoints/ocr", model_path="out/models/ocr/model.pt",
                    model_extra={"crop_margin": meta["crop_margin"]})
    print(f"train_ocr: done, {summary}")


if __name__ == "__main__":
    run_main(main)
