"""Data-parallel training (src/platereader/training/distributed.py): 2 gloo processes on the CPU.

The runs start this module as a program (`python -m tests.test_ddp OUT`) with PLATEREADER_NPROC=2,
the way a user starts a stage: it starts itself again under torchrun. Each rank writes under
OUT/rank<r>/, so what rank 1 wrote (nothing) shows. Tiny OCR data, 2 epochs of 4 global batches.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from platereader.errors import UserError, run_main
from platereader.nets.networks import PlateOCR, load_model
from platereader.training import distributed
from platereader.training.loop import train
from platereader.training.losses import ctc_loss, encode_targets

ROOT = Path(__file__).resolve().parents[1]
TRAIN_STEPS, VAL_BATCHES = 4, 2  # per epoch: 64 images / global batch 16, 32 images / 16


class TinyParams:
    SEED = 7
    EPOCHS = 2
    BATCH_SIZE = 16  # the global batch: 8 per rank with 2 processes
    LEARNING_RATE = 3e-3
    WEIGHT_DECAY = 1e-4
    WIDTH = 4
    INIT_MODEL = []
    PRECISION = ['float32']  # one run's processes against a single process: no bfloat16 rounding on top


def ocr_data(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    texts = np.array(["ZH" + "".join(rng.choice(list("0123456789"), 3)) for _ in range(n)])
    targets, lengths = encode_targets(texts)
    return {"images": rng.integers(0, 256, (n, 32, 128), dtype=np.uint8), "targets": targets, "lengths": lengths}


def run_training(out: Path, kill_at: int = 0, fail_at: int = 0) -> dict:
    """One process's share of a run (the whole run without torchrun). Rank 1 counts its loss calls
    and can die (SIGKILL, as `kill -9` or the OOM killer) or fail (UserError) at call `kill_at` /
    `fail_at`."""
    rank = int(os.environ.get("RANK", 0))
    calls = 0

    def counting_loss(model, images, labels):
        nonlocal calls
        calls += 1
        (out / f"steps.rank{rank}").write_text(str(calls))
        if rank == 1 and calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if rank == 1 and calls == fail_at:
            raise UserError("rank 1 cannot go on (test)")
        return ctc_loss(model, images, labels)

    mine = out / f"rank{rank}"
    return train(name="tiny", p=TinyParams, make_model=lambda: PlateOCR(width=TinyParams.WIDTH), loss_fn=counting_loss,
                 train=ocr_data(64, 0), val=ocr_data(32, 1), run_dir=str(mine / "run"),
                 checkpoint_dir=str(mine / "ckpt"), model_path=str(mine / "model" / "model.pt"), model_extra={})


def launch(out: Path, *args: str, timeout: float = 240) -> tuple[subprocess.CompletedProcess, float]:
    """`python -m tests.test_ddp OUT ...` with PLATEREADER_NPROC=2: the way a stage is started."""
    env = {**os.environ, "PLATEREADER_NPROC": "2", "PLATEREADER_DDP_TIMEOUT": "120", "PYTHONPATH": str(ROOT)}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "tests.test_ddp", str(out), *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=timeout)
    return result, time.perf_counter() - start


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()) if path.exists() else []


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_model(path)[0].state_dict()


def assert_same_model(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.allclose(wa[key].float(), wb[key].float(), atol=1e-4), key


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> tuple[Path, dict]:
    """The reference: the same training in this process, no torchrun (on one thread: a busy 2-core
    box slows a 2-thread process down several times, and the thread count changes no result
    beyond float rounding)."""
    out = tmp_path_factory.mktemp("one")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(distributed.Single, "threads", lambda self: 1)
        summary = run_training(out)
    return out / "rank0" / "model" / "model.pt", summary


# --------------------------------------------------------------------------- 2 processes


def test_two_processes_train_the_one_process_model_and_rank_0_alone_writes(tmp_path, one_process):
    reference, reference_summary = one_process
    result, _ = launch(tmp_path)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert "starting again under torchrun" in log and "--nproc-per-node=2" in log
    # Both ranks stepped: each its slice of every training batch and every other validation batch.
    for rank in (0, 1):
        assert int((tmp_path / f"steps.rank{rank}").read_text()) == TinyParams.EPOCHS * (TRAIN_STEPS + VAL_BATCHES // 2)
    # Rank 0 wrote the model, the checkpoint and the logs; rank 1 nothing at all.
    written = files_under(tmp_path / "rank0")
    assert "model/model.pt" in written and "ckpt/last.pt" in written and "run/metrics.json" in written
    assert any(name.startswith("run/tensorboard/") for name in written)
    assert files_under(tmp_path / "rank1") == []
    # The same model as one process with the same global batch, to float tolerance.
    assert_same_model(tmp_path / "rank0" / "model" / "model.pt", reference)
    metrics = (tmp_path / "rank0" / "run" / "metrics.json").read_text()
    assert f"{reference_summary['final_val_loss']:.4f}"[:5] in metrics


def test_a_killed_two_process_run_resumes_to_the_same_model(tmp_path, one_process):
    reference, _ = one_process
    per_epoch = TRAIN_STEPS + VAL_BATCHES // 2
    killed, seconds = launch(tmp_path, "--kill-at", str(per_epoch + 2))  # rank 1, in epoch 2
    log = killed.stdout + killed.stderr
    assert killed.returncode != 0
    # torchrun names the dead rank and ends the rest; on a loaded box it may instead trip on the
    # error file of the rank it stopped, still empty, and say so.
    assert "SIGKILL" in log or "Signal 9" in log or "Failed to parse reply file" in log, log
    assert seconds < 100, "the surviving rank must not wait for the dead one until the timeout"
    assert torch.load(tmp_path / "rank0" / "ckpt" / "last.pt", weights_only=False)["epoch"] == 1
    assert not (tmp_path / "rank0" / "model" / "model.pt").exists()

    resumed, _ = launch(tmp_path)
    log = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, log
    assert "resuming from the checkpoint after epoch 1 of 2" in log
    assert_same_model(tmp_path / "rank0" / "model" / "model.pt", reference)
    rows = (tmp_path / "rank0" / "run" / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()
    assert len(rows) == 1 + TinyParams.EPOCHS  # the resumed run's history holds every epoch
    assert files_under(tmp_path / "rank1") == []


def test_a_failing_rank_ends_the_job_with_its_message(tmp_path):
    result, seconds = launch(tmp_path, "--fail-at", "2")
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "tiny, rank 1: rank 1 cannot go on (test)" in log  # in torchrun's failure summary
    assert seconds < 100, "rank 0 must be stopped, not left waiting in a collective"


# --------------------------------------------------------------------------- launch and pieces, in process


def test_the_process_count_comes_from_the_environment():
    assert distributed.requested_processes({}) == 1
    assert distributed.requested_processes({"PLATEREADER_NPROC": "3"}) == 3
    for bad in ("0", "two", "-1"):
        with pytest.raises(UserError, match="PLATEREADER_NPROC"):
            distributed.requested_processes({"PLATEREADER_NPROC": bad})
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no GPU"):
            distributed.requested_processes({"PLATEREADER_NPROC": "gpu"})
    assert distributed.torchrun_command("platereader.stages.train_ocr", "x.py", [], {}) is None
    command = distributed.torchrun_command("platereader.stages.train_ocr", "x.py", ["-v"], {"PLATEREADER_NPROC": "2"})
    assert command[1:] == ["-m", "torch.distributed.run", "--nproc-per-node=2", "--standalone",
                           "-m", "platereader.stages.train_ocr", "-v"]
    multi = distributed.torchrun_command(None, "train.py", [], {
        "PLATEREADER_NPROC": "1", "PLATEREADER_TORCHRUN_ARGS": "--nnodes=2 --node-rank=1 --master-addr=h"})
    assert multi[3:] == ["--nproc-per-node=1", "--nnodes=2", "--node-rank=1", "--master-addr=h", "train.py"]


def test_only_a_programs_main_module_relaunches(monkeypatch):
    monkeypatch.setenv("PLATEREADER_NPROC", "2")
    monkeypatch.setattr(os, "execv", lambda *a: pytest.fail("a library call must not become torchrun"))
    distributed.relaunch_if_requested({"__name__": "tests.test_ddp"})  # this test calling train()


def test_the_global_batch_must_split_evenly(tmp_path):
    class ThreeRanks(distributed.Single):
        enabled, rank, world_size, is_main = False, 0, 3, True

    from platereader.training.loop import _train

    with pytest.raises(UserError, match="BATCH_SIZE = 16 is the global batch.*multiple of 3"):
        _train(ThreeRanks(), name="t", p=TinyParams, make_model=lambda: PlateOCR(width=4), loss_fn=ctc_loss,
               train=ocr_data(16, 0), val=ocr_data(8, 1), run_dir=str(tmp_path / "r"),
               checkpoint_dir=str(tmp_path / "c"), model_path=str(tmp_path / "m.pt"), model_extra={})


def test_global_batchnorm_is_batchnorm_and_reverts_to_it(tmp_path):
    """In a 1-process gloo group, GlobalBatchNorm2d computes what BatchNorm2d computes (outputs,
    gradients, running statistics), and revert_batchnorm gives plain layers with the same tensors."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        plain = PlateOCR(width=4).train()
        converted = PlateOCR(width=4).train()
        converted.load_state_dict(plain.state_dict())
        distributed.convert_batchnorm(converted, lambda bn: distributed._share(
            distributed.GlobalBatchNorm2d(bn.num_features, bn.eps, bn.momentum), bn))
        assert sum(isinstance(m, distributed.GlobalBatchNorm2d) for m in converted.modules()) == 6
        x = torch.rand(8, 1, 32, 128) * 255
        out_plain, out_global = plain(x), converted(x)
        assert torch.allclose(out_plain, out_global, atol=1e-4)
        out_plain.square().mean().backward()
        out_global.square().mean().backward()
        for (name, a), b in zip(plain.named_parameters(), converted.parameters()):
            assert torch.allclose(a.grad, b.grad, rtol=1e-3, atol=1e-5), name
        distributed.revert_batchnorm(converted)
        assert not any(isinstance(m, distributed.GlobalBatchNorm2d) for m in converted.modules())
        for (key, a), b in zip(plain.state_dict().items(), converted.state_dict().values()):
            assert torch.allclose(a.float(), b.float(), atol=1e-5), key
    finally:
        dist.destroy_process_group()


# --------------------------------------------------------------------------- the program the runs start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--kill-at", type=int, default=0)
    parser.add_argument("--fail-at", type=int, default=0)
    args = parser.parse_args()
    summary = run_training(args.out, kill_at=args.kill_at, fail_at=args.fail_at)
    if int(os.environ.get("RANK", 0)) == 0:
        print(f"tiny: done, {summary}")


if __name__ == "__main__":
    run_main(main)
