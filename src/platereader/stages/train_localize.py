"""train_localize: the corner localizer on data/prepared/localize -> out/models/localize/model.pt.

The samples prepare_real made of real photos (data/prepared/real/localize, none by default) are
mixed in, repeated to make up RealParams.TRAIN_SHARE of the training items; without them the
training set is the synthetic one as it is.
"""

import params
from platereader import validate
from platereader.datasets import load_meta, load_split
from platereader.errors import run_main
from platereader.nets.networks import Localizer
from platereader.training.loop import train, validate_train_params
from platereader.training.mixing import check_made_alike, with_real
from platereader.training.losses import localize_loss_for

DATA_DIR = "data/prepared/localize"
REAL_DIR = "data/prepared/real/localize"


def main() -> None:
    p = params.TrainLocalizeParams
    validate_train_params(p)
    share = validate.number(params.RealParams, "TRAIN_SHARE", 0, 0.95)
    meta, real_meta = load_meta(DATA_DIR), load_meta(REAL_DIR)
    check_made_alike(meta, real_meta, ("input_size", "window_margin"), DATA_DIR, REAL_DIR)
    summary = train(name="train_localize", p=p,
                    make_model=lambda: Localizer(width=p.WIDTH, input_size=meta["input_size"]),
                    loss_fn=localize_loss_for(p),
                    train=with_real(load_split(DATA_DIR, "train"), load_split(REAL_DIR, "train"), share),
                    val=load_split(DATA_DIR, "val"), run_dir="out/runs/localize",
                    checkpoint_dir="out/checkpoints/localize", model_path="out/models/localize/model.pt",
                    model_extra={"scene_size": meta["scene_size"], "window_margin": meta["window_margin"]})
    print(f"train_localize: done, {summary}")


if __name__ == "__main__":
    run_main(main)
