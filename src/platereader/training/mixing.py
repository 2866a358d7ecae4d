"""Real labelled samples mixed into a synthetic training set (RealParams.TRAIN_SHARE)."""

from __future__ import annotations

import numpy as np

from platereader.errors import UserError


def with_real(train: dict[str, np.ndarray], real: dict[str, np.ndarray], share: float) -> dict[str, np.ndarray]:
    """`train` and after it the `real` items repeated in order until they are `share` of the whole
    (so of each shuffled batch, on average); `train` itself when there are none or share is 0."""
    if not len(real["images"]) or not share:
        return train
    count = max(1, round(len(train["images"]) * share / (1 - share)))
    repeat = np.arange(count) % len(real["images"])
    return {key: np.concatenate([values, real[key][repeat]]) for key, values in train.items()}


def check_made_alike(meta: dict, real_meta: dict, keys: tuple[str, ...], data_dir: str, real_dir: str) -> None:
    """The real samples must have been cut like the synthetic ones (input size, margins...)."""
    if [real_meta[k] for k in keys] != [meta[k] for k in keys]:
        raise UserError(f"{real_dir} was made with other {', '.join(keys)} than {data_dir}: run prepare_real "
                        "again (`dvc repro prepare_real`)")
