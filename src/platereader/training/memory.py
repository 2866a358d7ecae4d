"""Allocator tuning for training and inference on the CPU."""

import ctypes
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory() -> None:
    """Let glibc keep freed memory for reuse instead of returning it to the system.

    Every training step frees and reallocates the same large activation buffers (tens of MB); by
    default glibc serves each with a fresh mmap that the kernel must zero page by page, which
    measured here as up to a third of a CPU training step (scripts/bench_train.py). Keeping the
    memory costs nothing but resident size, bounded by the largest step. No-op off glibc.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)
    libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
    libc.mallopt(M_TOP_PAD, 256 << 20)
