"""Scene generator throughput: scenes per second in one process and in a process pool.

    python -m scripts.bench_generator                # 256 x 256, 4000 scenes, a pool of all CPUs
    python -m scripts.bench_generator --scenes 20000 --processes 4 --size 256

Prints one line per measurement; "per CPU second" (CPU time of the rendering processes) is less
sensitive to other jobs sharing the machine than the wall-clock figure. "warm" excludes each
process's one-off cache fill (fonts, glyph sizes, photos, textures: it is measured separately as
"cold"), which a prepare stage pays once per process for tens of thousands of scenes.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time

import numpy as np

import params
from platereader.synth.scenes import make_scene, validate_generator_params

SEED = 12345
WARMUP = 1500  # scenes each process renders before timing (fills the glyph caches)


def _scenes(args: tuple[int, int, int]) -> float:
    """Render scenes start..stop-1; returns the CPU seconds this process spent on them."""
    start, stop, size = args
    cpu = time.process_time()
    for i in range(start, stop):
        make_scene(np.random.default_rng([SEED, 0, i]), params.GeneratorParams, size)
    return time.process_time() - cpu


def _warm(size: int, barrier) -> None:
    _scenes((10_000_000, 10_000_000 + WARMUP, size))
    barrier.wait()


def _chunks(n: int, size: int, chunk: int = 100) -> list[tuple[int, int, int]]:
    return [(s, min(n, s + chunk), size) for s in range(0, n, chunk)]


def main() -> None:
    # Not scripts.common's parser: that module imports torch, which each spawned worker would too.
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=4000, help="scenes per measurement")
    ap.add_argument("--size", type=int, default=params.SCENE_SIZE)
    ap.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    validate_generator_params(params.GeneratorParams)
    n, size = args.scenes, args.size
    print(f"scene generator benchmark: {n} scenes of {size}x{size}, {os.cpu_count()} CPUs")

    t = time.perf_counter()
    _scenes((0, min(n, WARMUP), size))
    cold = min(n, WARMUP) / (time.perf_counter() - t)
    print(f"1 process, cold (caches filling): {cold:8.0f} scenes/s")
    t = time.perf_counter()
    cpu = _scenes((0, n, size))
    print(f"1 process, warm:                  {n / (time.perf_counter() - t):8.0f} scenes/s"
          f"   ({n / cpu:.0f} per CPU second)")

    ctx = mp.get_context("spawn")  # fresh processes: nothing inherited from the timing above
    t = time.perf_counter()
    with ctx.Pool(args.processes) as pool:
        pool.map(_scenes, _chunks(n, size), chunksize=1)
    print(f"{args.processes} processes, cold (start + caches): {n / (time.perf_counter() - t):8.0f} scenes/s")
    barrier = ctx.Barrier(args.processes + 1)
    with ctx.Pool(args.processes, initializer=_warm, initargs=(size, barrier)) as pool:
        barrier.wait()  # every worker has warmed up
        t = time.perf_counter()
        cpu = sum(pool.map(_scenes, _chunks(n, size), chunksize=1))
        rate = n / (time.perf_counter() - t)
    print(f"{args.processes} processes, warm:                 {rate:8.0f} scenes/s"
          f"   ({n / cpu:.0f} per CPU second)")


if __name__ == "__main__":
    main()
