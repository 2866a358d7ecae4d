"""Loading a trained model file with a plain error when it is missing or unreadable."""

import os

from src.models.networks import load_model
from src.utils.errors import UserError


def load_trained(path: str):
    if not os.path.isfile(path):
        raise UserError(f"model file {path} is missing: train it first with `dvc repro` "
                        "(or `dvc pull` if a remote holds the results)")
    try:
        return load_model(path)
    except Exception as exc:
        raise UserError(f"model file {path} cannot be read ({exc.__class__.__name__}: {exc}); "
                        "retrain it with `dvc repro --force` or restore it with `dvc checkout`") from None
