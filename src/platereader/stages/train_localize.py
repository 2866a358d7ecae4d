"""train_localize: the corner localizer on data/prepared/localize -> out/models/localize/model.pt."""

import params
from platereader.datasets import load_meta, load_split
from platereader.errors import run_main
from platereader.nets.networks import Localizer
from platereader.training.loop import train, validate_train_params
from platereader.training.losses import localize_loss_for

DATA_DIR = "data/prepared/localize"


def main() -> None:
    p = params.TrainLocalizeParams
    validate_train_params(p)
    meta = load_meta(DATA_DIR)
    summary = train(name="train_localize", p=p,
                    make_model=lambda: Localizer(width=p.WIDTH, input_size=meta["input_size"]),
                    loss_fn=localize_loss_for(p), train=load_split(DATA_DIR, "train"),
                    val=load_split(DATA_DIR, "val"), run_dir="out/runs/localize",
                    checkpoint_dir="out/checkpoints/localize", model_path="out/models/localize/model.pt",
                    model_extra={"scene_size": meta["scene_size"], "window_margin": meta["window_margin"]})
    print(f"train_localize: done, {summary}")


if __name__ == "__main__":
    run_main(main)
