"""scripts/bench_onnx.py end to end with tiny untrained models: every network call the reader makes
is exported, checked against PyTorch and timed on both engines."""

import re

from tests.conftest import ROOT, run
from tests.test_real import tiny_models


def test_bench_onnx_times_every_network_call_on_both_engines(tmp_path):
    tiny_models(tmp_path)
    result = run(["python", "-m", "scripts.bench_onnx", "--models", str(tmp_path / "out" / "models"),
                  "--repeats", "2", "--threads", "1"], cwd=ROOT)
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.split(" | ")[0] for row in rows] == [
        "| localizer, 1 input", "| localizer, 16 inputs", "| presence pass, 291x164", "| OCR, 1 crop",
        "| OCR, 16 crops"]
    for row in rows:  # no int8 copies in untrained models: float and ONNX Runtime timed, and their ratio
        cells = [c.strip() for c in row.strip("| ").split(" | ")]
        assert cells[1] == "-" and all(re.fullmatch(r"\d+\.\d\d", c) for c in cells[2:]), row


def test_bench_onnx_refuses_bad_options(tmp_path):
    tiny_models(tmp_path)
    result = run(["python", "-m", "scripts.bench_onnx", "--models", str(tmp_path / "out" / "models"),
                  "--repeats", "0"], cwd=ROOT, check=False)
    assert result.returncode == 2 and "--repeats and --threads must be at least 1" in result.stderr
