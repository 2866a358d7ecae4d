"""The training loop both models share: batches from in-memory arrays, AdamW + one-cycle schedule,
DVCLive and TensorBoard logging, a checkpoint every epoch, resume, incremental learning, NaN guard.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import sys
import time
from typing import Callable

import numpy as np
import torch

from platereader.nets.networks import load_model, save_model
from platereader.nets.quantize import CALIBRATION_INPUTS, calibrate
from platereader.nets.quantize import available as int8_available
from platereader import validate
from platereader.errors import UserError
from platereader.training import distributed
from platereader.training.memory import keep_freed_memory

LossFn = Callable[[torch.nn.Module, torch.Tensor, dict[str, torch.Tensor]], torch.Tensor]


def validate_train_params(p) -> None:
    validate.integer(p, "SEED")
    validate.integer(p, "EPOCHS", 1)
    validate.integer(p, "BATCH_SIZE", 2, 65536)
    validate.number(p, "LEARNING_RATE", 0, 10, low_open=True)
    validate.number(p, "WEIGHT_DECAY", 0, 1)
    validate.integer(p, "WIDTH", 4, 512)
    validate.model_path(p, "INIT_MODEL")
    validate.choice(p, "PRECISION", PRECISIONS)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


PRECISIONS = ("auto", "float32", "bfloat16")


def forward_dtype(precision: str, dev: torch.device) -> torch.dtype:
    """What a training step's forward pass computes in (weights, optimizer and validation loss stay
    float32). "auto": bfloat16 on a CPU with AMX, which multiplies it in hardware (training 1.3x
    as fast on the Intel box, docs/history.md), float32 elsewhere (slower in bfloat16 without it)."""
    if precision == "auto":
        amx = dev.type == "cpu" and torch.cpu._is_amx_tile_supported()
        return torch.bfloat16 if amx else torch.float32
    return torch.bfloat16 if precision == "bfloat16" else torch.float32


def _fingerprint(p, model: torch.nn.Module, train: dict[str, np.ndarray]) -> str:
    """What a checkpoint must match to be resumed: params, the model's code, config and weight
    shapes, and the training data. Code counts: a network changed under the same params would
    otherwise resume a finished run (or fail to load its weights)."""
    h = hashlib.sha256()
    h.update(json.dumps({k: getattr(p, k) for k in sorted(vars(p)) if k.isupper()}, sort_keys=True).encode())
    h.update(json.dumps(model.config, sort_keys=True).encode())
    h.update(json.dumps({k: list(v.shape) for k, v in model.state_dict().items()}).encode())
    h.update(inspect.getsource(sys.modules[type(model).__module__]).encode())
    for name in sorted(train):  # images too: data that differs only in pixels is other data (~1 s)
        h.update(name.encode() + str(train[name].shape).encode() + train[name].tobytes())
    return h.hexdigest()


class _Logger:
    """DVCLive (metrics.json + plots/metrics/*.tsv, x = step = epoch) and TensorBoard side by side."""

    def __init__(self, run_dir: str):
        from dvclive import Live
        from torch.utils.tensorboard import SummaryWriter

        self.live = Live(dir=run_dir, save_dvc_exp=False, dvcyaml=None, report=None, resume=False)
        self.board = SummaryWriter(os.path.join(run_dir, "tensorboard"))

    def log_epoch(self, epoch: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.live.log_metric(key, value)
            self.board.add_scalar(key, value, epoch)
        self.live.next_step()

    def close(self, summary: dict[str, float]) -> None:
        for key, value in summary.items():
            self.live.summary[key] = value
        self.live.end()
        self.board.close()


def _nan_error(name: str, epoch: int, p_name: str) -> UserError:
    return UserError(
        f"{name} training diverged: the loss became NaN or infinite in epoch {epoch + 1}. Remedies: lower "
        f"params.py:{p_name}.LEARNING_RATE, raise {p_name}.BATCH_SIZE, or start from a trained model with "
        f"{p_name}.INIT_MODEL (checkpoints of the last good epoch are kept)")


def train(*, name: str, p, make_model: Callable[[], torch.nn.Module], loss_fn: LossFn, train: dict[str, np.ndarray],
          val: dict[str, np.ndarray], run_dir: str, checkpoint_dir: str, model_path: str,
          model_extra: dict) -> dict[str, float]:
    """Train a new `make_model()` on arrays (`images` uint8 (N, H, W) plus label arrays) and save it.

    Resumes from checkpoint_dir/last.pt when it was written for the same params and data.
    Returns the summary metrics also written to run_dir/metrics.json.

    One process by default. Under torchrun (or with PLATEREADER_NPROC set, which starts the calling
    program again under torchrun) every rank trains on its slice of each global batch of
    p.BATCH_SIZE and rank 0 alone writes: src/platereader/training/distributed.py.
    """
    distributed.relaunch_if_requested(sys._getframe(1).f_globals)
    ctx = distributed.start()
    with ctx.guard(name):
        return _train(ctx, name=name, p=p, make_model=make_model, loss_fn=loss_fn, train=train, val=val,
                      run_dir=run_dir, checkpoint_dir=checkpoint_dir, model_path=model_path, model_extra=model_extra)


def _train(ctx: distributed.Single, *, name: str, p, make_model: Callable[[], torch.nn.Module], loss_fn: LossFn,
           train: dict[str, np.ndarray], val: dict[str, np.ndarray], run_dir: str, checkpoint_dir: str,
           model_path: str, model_extra: dict) -> dict[str, float]:
    dev = ctx.device if ctx.enabled else device()
    torch.manual_seed(p.SEED)  # before the model exists: its initial weights come from this seed
    model = make_model()
    if dev.type == "cpu":
        keep_freed_memory()
        torch.set_num_threads(ctx.threads())
        torch.use_deterministic_algorithms(True, warn_only=True)
    init = validate.model_path(p, "INIT_MODEL")
    if init:
        _init_from(model, init, p_name=type(p).__name__)
    model.to(dev)

    n = len(train["images"])
    if p.BATCH_SIZE % ctx.world_size:
        raise UserError(f"params.py:{type(p).__name__}.BATCH_SIZE = {p.BATCH_SIZE} is the global batch and must "
                        f"divide evenly among the {ctx.world_size} training processes: make it a multiple of "
                        f"{ctx.world_size}, or start another number of processes")
    local_batch = p.BATCH_SIZE // ctx.world_size  # this rank's slice of every global batch
    steps_per_epoch = max(1, n // p.BATCH_SIZE)  # whole batches only: BatchNorm dislikes a batch of 1
    net = ctx.wrap(model)  # DDP (BatchNorm over the global batch) under torchrun; the model itself alone
    optimizer = torch.optim.AdamW(model.parameters(), lr=p.LEARNING_RATE, weight_decay=p.WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=p.LEARNING_RATE, pct_start=0.15,
                                                    total_steps=p.EPOCHS * steps_per_epoch)
    fingerprint = _fingerprint(p, model, train)
    checkpoint_path = os.path.join(checkpoint_dir, "last.pt")
    start_epoch, history, trained = 0, [], (0, 0.0)  # inputs trained on and seconds it took, all runs
    # Rank 0 reads the checkpoint (other nodes need none) and hands it to the others.
    state = _resumable(name, p, checkpoint_path, fingerprint, "cpu" if ctx.enabled else dev) if ctx.is_main else None
    state = ctx.broadcast(state)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, history, trained = state["epoch"], state["history"], state.get("trained", (0, 0.0))
        if ctx.is_main:
            print(f"{name}: resuming from the checkpoint after epoch {start_epoch} of {p.EPOCHS}")

    tensors = {k: torch.from_numpy(v).to(dev) for k, v in train.items()}
    val_tensors = {k: torch.from_numpy(v).to(dev) for k, v in val.items()}
    logger = _Logger(run_dir) if ctx.is_main else None
    for epoch, values in enumerate(history if logger else []):  # replay the epochs a resumed run already did
        logger.log_epoch(epoch, values)
    if ctx.is_main:
        os.makedirs(checkpoint_dir, exist_ok=True)
    seen, busy = trained  # a resumed run's speed counts the epochs before the resume too
    dtype = forward_dtype(p.PRECISION[0], dev)
    for epoch in range(start_epoch, p.EPOCHS):
        net.train()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(p.SEED * 100003 + epoch)).to(dev)
        total, t0 = 0.0, time.perf_counter()
        for step in range(steps_per_epoch):
            first = step * p.BATCH_SIZE + ctx.rank * local_batch
            idx = order[first:first + local_batch]
            with torch.autocast(dev.type, dtype=dtype, enabled=dtype != torch.float32):
                loss = loss_fn(net, tensors["images"][idx], {k: v[idx] for k, v in tensors.items() if k != "images"})
            batch_loss = ctx.mean(loss)  # the global batch's loss, on every rank (so all stop together)
            if not torch.isfinite(batch_loss):
                raise _nan_error(name, epoch, type(p).__name__)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += batch_loss.item()
        busy += time.perf_counter() - t0
        seen += steps_per_epoch * p.BATCH_SIZE
        values = {"train/loss": total / steps_per_epoch,
                  "val/loss": evaluate_loss(model, loss_fn, val_tensors, p.BATCH_SIZE, ctx),
                  "lr": scheduler.get_last_lr()[0]}
        if not math.isfinite(values["val/loss"]):
            raise _nan_error(name, epoch, type(p).__name__)
        history.append(values)
        if not ctx.is_main:
            continue
        logger.log_epoch(epoch, values)
        print(f"{name}: epoch {epoch + 1}/{p.EPOCHS} train loss {values['train/loss']:.4f} "
              f"val loss {values['val/loss']:.4f} ({steps_per_epoch * p.BATCH_SIZE / (time.perf_counter() - t0):.0f} img/s)")
        _atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "history": history,
                      "trained": (seen, busy), "fingerprint": fingerprint}, checkpoint_path)

    summary = {"final_train_loss": history[-1]["train/loss"], "final_val_loss": history[-1]["val/loss"],
               "epochs": p.EPOCHS, "train_images_per_s": round(seen / busy, 1) if busy else 0.0,
               "device": dev.type, "processes": ctx.world_size, "precision": str(dtype).removeprefix("torch.")}
    if not ctx.is_main:
        return summary
    # The int8 copy the reader runs (src/platereader/nets/quantize.py), calibrated on a fixed sample of the
    # training inputs, which are what the reader feeds it (whole scenes and windows; plate crops).
    # Where PyTorch has no int8 kernels (ARM) the file holds the float network only.
    model, extra = ctx.unwrap(model).cpu(), dict(model_extra)
    if int8_available():
        sample = torch.randperm(n, generator=torch.Generator().manual_seed(p.SEED))[:CALIBRATION_INPUTS]
        extra["int8"] = calibrate(model, torch.from_numpy(train["images"][sample.numpy()]).unsqueeze(1))
    os.makedirs(os.path.dirname(model_path), exist_ok=True)
    save_model(model, model_path, extra)
    logger.close({k: v for k, v in summary.items() if k not in ("device", "processes", "precision")})
    return summary


def _resumable(name: str, p, checkpoint_path: str, fingerprint: str, map_location) -> dict | None:
    """The checkpoint's state when it was written for these params, code and data, else None."""
    if not os.path.isfile(checkpoint_path):
        return None
    state = torch.load(checkpoint_path, map_location=map_location, weights_only=False)
    if state.get("fingerprint") == fingerprint:
        return state
    print(f"{name}: ignoring {checkpoint_path}, it was written for other params or data")
    return None


@torch.no_grad()
def evaluate_loss(model, loss_fn: LossFn, data: dict[str, torch.Tensor], batch_size: int,
                  ctx: distributed.Single = distributed.Single()) -> float:
    """Mean loss over `data` in batches of `batch_size`; under torchrun the ranks share the batches
    (rank r takes batches r, r + world_size, ...) and add up their sums."""
    model.eval()
    n = len(data["images"])
    total = 0.0
    for start in range(ctx.rank * batch_size, n, batch_size * ctx.world_size):
        sl = slice(start, start + batch_size)
        batch = data["images"][sl]
        total += loss_fn(model, batch, {k: v[sl] for k, v in data.items() if k != "images"}).item() * len(batch)
    return ctx.sum(total) / max(n, 1)


def _init_from(model: torch.nn.Module, path: str, p_name: str) -> None:
    """Incremental learning: start from the weights of a trained model of the same kind and shape."""
    try:
        source, _ = load_model(path)
    except Exception as exc:  # a corrupt or foreign file: say which and why
        raise UserError(f"params.py:{p_name}.INIT_MODEL = [{path!r}] is not a model file saved by this "
                        f"project ({exc.__class__.__name__}: {exc})") from None
    if type(source) is not type(model) or source.config != model.config:
        raise UserError(f"params.py:{p_name}.INIT_MODEL = [{path!r}] is a {type(source).__name__} {source.config}, "
                        f"but this stage trains a {type(model).__name__} {model.config}: point it at a "
                        "matching model or change WIDTH/INPUT_SIZE to match")
    model.load_state_dict(source.state_dict())
    print(f"starting from the weights of {path}")


def _atomic_save(obj, path: str) -> None:
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)
