"""Data-parallel training with PyTorch's own launcher and engine: torchrun + DistributedDataParallel.

One process is the default and runs exactly as before (`Single`). Under torchrun each process
(rank) trains a replica of the network on its own slice of every global batch and DDP averages the
gradients, NCCL between GPUs, gloo between CPU processes. The training loop (loop.py) asks a
`Context` for everything that differs:

- the global batch stays params.py's BATCH_SIZE, cut into world_size equal slices of the same
  seeded order, so 1 or N processes take the same samples at each step; the learning-rate
  schedule counts the same global steps;
- BatchNorm uses the statistics of the whole global batch (SyncBatchNorm on GPUs, `GlobalBatchNorm2d`
  on CPUs, where DDP refuses SyncBatchNorm): with per-rank statistics N processes would train
  another model than one. The saved model has plain BatchNorm layers again;
- rank 0 alone writes the model, the checkpoints, DVCLive and TensorBoard; the checkpoint does not
  depend on the number of processes (resume with any, the same is the documented way);
- a rank that fails leaves its message in torchrun's error file, and torchrun stops the others;
  a rank that waits for a dead peer gives up after PLATEREADER_DDP_TIMEOUT seconds.

Launch (docs/scale-out.md): `torchrun --nproc-per-node N -m platereader.stages.train_ocr`, or set
PLATEREADER_NPROC=N (or `gpu`: one process per visible GPU) and run the stage as usual
(`dvc exp run`, `dvc repro`): it starts itself again under torchrun. PLATEREADER_TORCHRUN_ARGS
replaces torchrun's `--standalone` (e.g. multi-node rendezvous arguments).
"""

from __future__ import annotations

import atexit
import datetime
import json
import os
import shlex
import sys
import time
from contextlib import contextmanager

import torch
import torch.nn as nn

from platereader.errors import UserError

ENV_NPROC = "PLATEREADER_NPROC"
ENV_TORCHRUN_ARGS = "PLATEREADER_TORCHRUN_ARGS"
ENV_TIMEOUT = "PLATEREADER_DDP_TIMEOUT"
ENV_BACKEND = "PLATEREADER_DDP_BACKEND"
DEFAULT_TIMEOUT_S = 600


# --------------------------------------------------------------------------- launch


def under_torchrun() -> bool:
    """Whether this process is a worker that torchrun (or a PyTorchJob) started."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"))


def requested_processes(env=os.environ) -> int:
    """Processes per node that PLATEREADER_NPROC asks for: unset or empty = 1, a number, or `gpu`."""
    value = env.get(ENV_NPROC, "").strip().lower()
    if value in ("", "1"):
        return 1
    if value == "gpu":
        count = torch.cuda.device_count()
        if count == 0:
            raise UserError(f"{ENV_NPROC}=gpu, but PyTorch sees no GPU here: unset it, or give a number of CPU "
                            "processes (e.g. 2)")
        return count
    if not value.isdigit() or int(value) < 1:
        raise UserError(f"{ENV_NPROC}={env.get(ENV_NPROC)!r}: expected a number of processes per node (e.g. 2) or "
                        "`gpu` (one per GPU); unset it for one process")
    return int(value)


def torchrun_command(module: str | None, script: str, argv: list[str], env=os.environ) -> list[str] | None:
    """The torchrun command line that runs this program again with PLATEREADER_NPROC processes, or
    None when one process without extra torchrun arguments is asked for (the default)."""
    nproc = requested_processes(env)
    extra = shlex.split(env.get(ENV_TORCHRUN_ARGS, ""))
    if nproc == 1 and not extra:
        return None
    target = ["-m", module] if module else [script]
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", *(extra or ["--standalone"]),
            *target, *argv]


def relaunch_if_requested(caller_globals: dict) -> None:
    """Start the running program again under torchrun when PLATEREADER_NPROC / _TORCHRUN_ARGS ask
    for it; this process becomes torchrun (exec), whose exit status is the stage's.

    Only a program's own main module relaunches (`caller_globals` are those of train()'s caller):
    a library call, a test or a notebook never turns into torchrun, and a torchrun worker never
    starts another."""
    if under_torchrun() or caller_globals.get("__name__") != "__main__":
        return
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    command = torchrun_command(spec.name if spec else None, sys.argv[0], sys.argv[1:])
    if command is None:
        return
    print(f"{ENV_NPROC}={os.environ.get(ENV_NPROC, '')!s}: starting again under torchrun: {shlex.join(command[1:])}",
          flush=True)
    sys.stderr.flush()
    os.execv(sys.executable, command)


# --------------------------------------------------------------------------- BatchNorm over the global batch


class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) whose gradient is the all-reduced gradient: each rank's loss depends on the
    others' activations through the sum, and its backward pass sends them their share."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, group) -> torch.Tensor:
        ctx.group = group
        total = tensor.clone()
        torch.distributed.all_reduce(total, group=group)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        total = grad.clone()
        torch.distributed.all_reduce(total, group=ctx.group)
        return total, None


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the global batch, summed over all ranks
    with a differentiable all-reduce (gradients flow through the statistics as in one process).
    Works on any backend (gloo on CPUs, where DDP refuses torch's SyncBatchNorm). In eval mode, and
    in its state_dict, it is a plain BatchNorm2d."""

    group = None  # the process group of the statistics (set by convert_batchnorm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        # One all-reduce per layer and pass: sum and sum of squares, in float64 like the CPU kernel.
        x64 = x.double()
        stats = _SumOverRanks.apply(torch.cat([x64.sum((0, 2, 3)), (x64 * x64).sum((0, 2, 3))]), self.group)
        count = x.numel() // x.shape[1] * torch.distributed.get_world_size(self.group)  # equal slices
        mean64, sq64 = stats.split(x.shape[1])
        mean64 = mean64 / count
        var64 = (sq64 / count - mean64 * mean64).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum)
                self.running_mean.mul_(1 - factor).add_(mean64.to(x.dtype), alpha=factor)
                self.running_var.mul_(1 - factor).add_((var64 * count / max(count - 1, 1)).to(x.dtype), alpha=factor)
        shape = (1, -1, 1, 1)
        scale = torch.rsqrt(var64 + self.eps).to(x.dtype)
        y = (x - mean64.to(x.dtype).view(shape)) * scale.view(shape)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


def convert_batchnorm(module: nn.Module, make) -> nn.Module:
    """Replace every BatchNorm2d under `module` (in place) by `make(bn)`, which shares its parameters
    and buffers, so optimizer state and checkpoints are the same tensors and keys."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            setattr(module, name, make(child))
        else:
            convert_batchnorm(child, make)
    return module


def _share(new: nn.modules.batchnorm._BatchNorm, old: nn.BatchNorm2d) -> nn.Module:
    if old.affine:
        new.weight, new.bias = old.weight, old.bias
    if old.track_running_stats:
        new.running_mean, new.running_var, new.num_batches_tracked = (old.running_mean, old.running_var,
                                                                      old.num_batches_tracked)
    new.train(old.training)
    return new


def revert_batchnorm(module: nn.Module) -> nn.Module:
    """Undo convert_batchnorm: plain BatchNorm2d layers with the same tensors (what model files hold)."""
    for name, child in module.named_children():
        if isinstance(child, (GlobalBatchNorm2d, nn.SyncBatchNorm)):
            plain = nn.BatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                   child.track_running_stats, device=child.weight.device if child.affine else None)
            setattr(module, name, _share(plain, child))
        else:
            revert_batchnorm(child)
    return module


# --------------------------------------------------------------------------- the two contexts


class Single:
    """One process: every hook is the identity, so the loop runs exactly as it always did."""

    enabled = False
    rank = 0
    world_size = 1
    is_main = True

    def threads(self) -> int:
        return os.cpu_count() or 1

    def wrap(self, model: nn.Module) -> nn.Module:
        return model

    def unwrap(self, model: nn.Module) -> nn.Module:
        return model

    def broadcast(self, obj):
        return obj

    def mean(self, loss: torch.Tensor) -> torch.Tensor:
        return loss

    def sum(self, value: float) -> float:
        return value

    @contextmanager
    def guard(self, name: str):
        yield

    def close(self) -> None:
        pass


class Distributed(Single):
    """A torchrun worker: rank `rank` of `world_size`, one device each."""

    enabled = True

    def __init__(self):
        self.rank = int(os.environ["RANK"])
        self.world_size = int(os.environ["WORLD_SIZE"])
        self.local_rank = int(os.environ["LOCAL_RANK"])
        self.local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", self.world_size))
        self.is_main = self.rank == 0
        backend = os.environ.get(ENV_BACKEND) or ("nccl" if torch.cuda.is_available() else "gloo")
        if backend == "nccl":
            torch.cuda.set_device(self.local_rank)
            self.device = torch.device("cuda", self.local_rank)
        else:
            self.device = torch.device("cpu")
        try:
            timeout = float(os.environ.get(ENV_TIMEOUT, DEFAULT_TIMEOUT_S))
        except ValueError:
            raise UserError(f"{ENV_TIMEOUT}={os.environ[ENV_TIMEOUT]!r}: expected seconds, e.g. 600") from None
        self.backend = backend
        # Once per process: a second train() in the same program (both models) reuses the group.
        torch.distributed.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout))
        atexit.register(self.close)
        # BatchNorm statistics travel on their own group, apart from DDP's gradient buckets.
        self.bn_group = torch.distributed.new_group(backend=backend)

    def threads(self) -> int:
        # The node's cores shared by its processes (torchrun would leave each with one thread).
        return max(1, (os.cpu_count() or 1) // self.local_world_size)

    def wrap(self, model: nn.Module) -> nn.Module:
        if self.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model, self.bn_group)
        else:
            def make(bn):
                new = _share(GlobalBatchNorm2d(bn.num_features, bn.eps, bn.momentum, bn.affine,
                                               bn.track_running_stats), bn)
                new.group = self.bn_group
                return new
            convert_batchnorm(model, make)
        from torch.nn.parallel import DistributedDataParallel

        # Buffers (BatchNorm's running statistics) are equal on every rank already: no broadcast.
        return DistributedDataParallel(model, device_ids=[self.local_rank] if self.device.type == "cuda" else None,
                                       broadcast_buffers=False)

    def unwrap(self, model: nn.Module) -> nn.Module:
        return revert_batchnorm(model)

    def broadcast(self, obj):
        """Rank 0's `obj` on every rank (pickled; tensors in it should be on the CPU)."""
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0, device=self.device if self.backend == "nccl" else None)
        return box[0]

    def mean(self, loss: torch.Tensor) -> torch.Tensor:
        """The global batch's loss (the mean of the ranks' equal slices), the same on every rank."""
        value = loss.detach().clone()
        torch.distributed.all_reduce(value)
        return value / self.world_size

    def sum(self, value: float) -> float:
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(tensor)
        return float(tensor.item())

    @contextmanager
    def guard(self, name: str):
        """A failure of this rank reaches torchrun's summary with its message; a peer's failure seen
        from here (a broken or timed-out collective) becomes one plain line naming the remedy."""
        try:
            yield
        except UserError as exc:
            _record(f"{name}, rank {self.rank}: {exc}")
            raise
        except (RuntimeError, torch.distributed.DistError) as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if not isinstance(exc, torch.distributed.DistError) and not any(
                    word in text for word in ("Connection", "connection", "Gloo", "NCCL", "timed out", "Timed out",
                                              "peer", "closed", "Broken pipe")):
                _record(f"{name}, rank {self.rank}: {type(exc).__name__}: {text}")
                raise
            message = (f"{name}, rank {self.rank} of {self.world_size}: lost the other processes ({text}). Another "
                       "rank failed (its error is above) or the network between nodes broke; checkpoints of finished "
                       "epochs are kept: run the same command again to resume")
            _record(message)
            raise UserError(message) from None

    def close(self) -> None:
        """End the process group (at exit: train() keeps it for the next call)."""
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _record(message: str) -> None:
    """Leave `message` where torchrun's failure summary reads it (TORCHELASTIC_ERROR_FILE)."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    try:
        with open(path, "w") as f:
            json.dump({"message": message, "timestamp": int(time.time())}, f)
    except OSError:
        pass


_context: Single | None = None


def start() -> Single:
    """The context of this process: `Distributed` under torchrun (made once), else `Single`."""
    global _context
    if not under_torchrun():
        return Single()
    if _context is None or not torch.distributed.is_initialized():
        _context = Distributed()
    return _context
