"""train_localize: the corner localizer on data/prepared/localize -> out/models/localize/model.pt.

The samples prepare_real made of real photos (data/prepared/real/localize, none by default) are
mixed in, repeated to make up RealParams.TRAIN_SHARE of the training items; without them the
training set is the synthetic one as it is.
"""

import numpy as np

import params
from platereader import validate
from platereader.datasets import load_meta, load_split
from platereader.errors import UserError, run_main
from platereader.nets.networks import Localizer
from platereader.training.loop import train, validate_train_params
from platereader.training.losses import localize_loss_for

DATA_DIR = "data/prepared/localize"
REAL_DIR = "data/prepared/real/localize"


def with_real(train: dict[str, np.ndarray], real: dict[str, np.ndarray], share: float) -> dict[str, np.ndarray]:
    """`train` and after it the `real` items repeated in order until they are `share` of the whole
    (so of each shuffled batch, on average); `train` itself when there are none or share is 0."""
    if not len(real["images"]) or not share:
        return train
    count = max(1, round(len(train["images"]) * share / (1 - share)))
    repeat = np.arange(count) % len(real["images"])
    return {key: np.concatenate([values, real[key][repeat]]) for key, values in train.items()}


def main() -> None:
    p = params.TrainLocalizeParams
    validate_train_params(p)
    share = validate.number(params.RealParams, "TRAIN_SHARE", 0, 0.95)
    meta, real_meta = load_meta(DATA_DIR), load_meta(REAL_DIR)
    if (real_meta["input_size"], real_meta["window_margin"]) != (meta["input_size"], meta["window_margin"]):
        raise UserError(f"{REAL_DIR} was made for other localizer inputs than {DATA_DIR}: run prepare_real again "
                        "(`dvc repro prepare_real`)")
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
