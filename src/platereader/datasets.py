"""Generate a dataset in fixed chunks, on all cores or one, with byte-identical results.

Each chunk covers a fixed range of indices and every item draws from its own RNG
(`item_rng`), so neither the number of processes nor the order they finish in can change a byte.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

CHUNK_SIZE = 256


def item_rng(base_seed: int, stage_seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([base_seed, stage_seed, index])


def _init_worker() -> None:
    # One BLAS/OpenMP thread per worker process: the processes already use every core.
    torch.set_num_threads(1)


def build(count: int, make_chunk: Callable[[int, int], dict[str, np.ndarray]], parallel: bool,
          desc: str) -> dict[str, np.ndarray]:
    """Call make_chunk(start, stop) over [0, count) in CHUNK_SIZE pieces; concatenate in order.

    `make_chunk` must be a picklable top-level function (or functools.partial of one).
    """
    bounds = [(start, min(start + CHUNK_SIZE, count)) for start in range(0, count, CHUNK_SIZE)]
    processes = min(os.cpu_count() or 1, len(bounds)) if parallel else 1
    progress = tqdm(total=count, desc=desc, unit="img", mininterval=1.0)
    parts = []
    if processes > 1:
        # "spawn": forked children of a process that touched torch's thread pool can hang.
        with mp.get_context("spawn").Pool(processes, initializer=_init_worker) as pool:
            for part in pool.imap(_call, [(make_chunk, a, b) for a, b in bounds]):
                parts.append(part)
                progress.update(len(next(iter(part.values()))))
    else:
        # One torch thread, as in the workers: resampling sums in a thread-dependent order, and the
        # data must not depend on how it was generated.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for start, stop in bounds:
                parts.append(make_chunk(start, stop))
                progress.update(stop - start)
        finally:
            torch.set_num_threads(threads)
    progress.close()
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _call(job):
    make_chunk, start, stop = job
    return make_chunk(start, stop)


def write_splits(out_dir: str, splits: dict[str, dict[str, np.ndarray]], meta: dict) -> None:
    """Write {split: {name: array}} as out_dir/<split>/<name>.npy plus meta.json, atomically.

    Files go to a temporary sibling folder that replaces out_dir only once complete, so an
    interrupted stage never leaves a half-written dataset behind.
    """
    tmp = out_dir.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for split, arrays in splits.items():
        os.makedirs(os.path.join(tmp, split), exist_ok=True)
        for name, array in arrays.items():
            np.save(os.path.join(tmp, split, f"{name}.npy"), array, allow_pickle=False)
    with open(os.path.join(tmp, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)


def load_split(data_dir: str, split: str) -> dict[str, np.ndarray]:
    """Arrays of one split written by write_splits, with a plain error if it is missing."""
    folder = os.path.join(data_dir, split)
    if not os.path.isdir(folder):
        from platereader.errors import UserError
        raise UserError(f"prepared data {folder} is missing: run the prepare stage first (`dvc repro`)")
    return {name[:-4]: np.load(os.path.join(folder, name), allow_pickle=False)
            for name in sorted(os.listdir(folder)) if name.endswith(".npy")}


def load_meta(data_dir: str) -> dict:
    path = os.path.join(data_dir, "meta.json")
    if not os.path.isfile(path):
        from platereader.errors import UserError
        raise UserError(f"prepared data {path} is missing: run the prepare stage first (`dvc repro`)")
    with open(path) as f:
        return json.load(f)


def split_sizes(count: int, val_split: float) -> tuple[int, int]:
    """(train, val) counts: the last round(count * val_split) items are the validation set."""
    n_val = min(count - 1, max(1, round(count * val_split))) if count > 1 else 0
    return count - n_val, n_val
