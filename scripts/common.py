"""What the scripts that read scenes with trained models share: the reader as params.py configures
it (with a setting varied), fresh scene sets from seeds no stage uses, and their option checks."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import time

import numpy as np

import params
from platereader.errors import UserError
from platereader.reader import PlateReader, ReaderConfig
from platereader.synth.sets import check_unused_seeds, scene_arrays

STACK_DIR = "data/prepared/stack"  # prepare_stack's output: the stack test set
# Seeds the prepare stages draw from: scenes made to test trained models must come from others.
STAGE_SEEDS = (params.PrepareLocalizeParams.SEED, params.PrepareOCRParams.SEED, params.PrepareStackParams.SEED)


def parser(doc: str) -> argparse.ArgumentParser:
    """A parser whose --help shows the script's docstring (its usage lines) as written."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_reader_options(ap: argparse.ArgumentParser, batch: int = params.EvaluateParams.BATCH_SIZE) -> None:
    """--models (one folder) and --batch (scenes per read)."""
    ap.add_argument("--models", default="out/models", help="folder with localize/ and ocr/ model.pt")
    ap.add_argument("--batch", type=int, default=batch, help="scenes per read")


def add_setting_option(ap: argparse.ArgumentParser) -> None:
    """-S NAME=VALUE, repeatable: a params.py:ReaderParams entry for this run (`reader_changes`)."""
    ap.add_argument("-S", dest="changes", action="append", default=[], metavar="NAME=VALUE",
                    help="a params.py:ReaderParams entry for this run, e.g. \"FORMATS=['swiss','brazil']\"")


def reader_changes(items: list[str]) -> dict:
    """-S NAME=VALUE items as `load_reader` changes, checked as params.py:ReaderParams is."""
    values = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().removeprefix("params.py:").removeprefix("ReaderParams.").upper()
        if not sep or name.lower() not in ReaderConfig.__dataclass_fields__:
            raise UserError(f"-S {item!r}: expected NAME=VALUE with NAME a params.py:ReaderParams entry "
                            f"({', '.join(f.upper() for f in ReaderConfig.__dataclass_fields__)})")
        try:
            values[name] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            raise UserError(f"-S {item!r}: {text.strip()!r} is no Python literal: quote strings and lists, "
                            "e.g. -S \"FORMATS=['swiss','brazil']\"") from None
    checked = ReaderConfig.from_params(type("ReaderParams", (params.ReaderParams,), values))
    return {name.lower(): getattr(checked, name.lower()) for name in values}


def reader_config(**changes) -> ReaderConfig:
    """params.py:ReaderParams, with the named fields replaced (e.g. int8=False)."""
    return dataclasses.replace(ReaderConfig.from_params(params.ReaderParams), **changes)


def load_reader(models: str, **changes) -> PlateReader:
    """The trained reader in `models`, configured as `reader_config(**changes)`."""
    return PlateReader.load(models, reader_config(**changes))


def precision(reader: PlateReader) -> str:
    """What the reader runs: float where the model files hold no int8 copy, whatever was asked."""
    return "int8" if reader.int8 else "float"


def check_fresh(seeds, option: str, images: int, batch: int) -> None:
    """The options of a script that reads fresh scenes: unused seeds, at least one scene and batch."""
    check_unused_seeds(seeds, option, STAGE_SEEDS)
    if images < 1 or batch < 1:
        raise UserError("--images and --batch must be at least 1")


def fresh_set(seed: int, images: int, gen=params.GeneratorParams) -> dict[str, np.ndarray]:
    """Scenes 0..images-1 of `seed` as arrays (images, corners, present, texts), as prepare_stack
    makes them."""
    return scene_arrays(0, images, params.SEED, seed, gen, params.SCENE_SIZE)


def best_seconds(read, images: list, batch: int, repeats: int) -> float:
    """The fastest of `repeats` timed passes of `read` over `images` in batches, after a warm-up
    batch (first calls allocate and pick kernels)."""
    read(images[:batch])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(images), batch):
            read(images[i:i + batch])
        best = min(best, time.perf_counter() - start)
    return best
