"""The DVC pipeline end to end on tiny params, in a throwaway copy of the repository."""

import hashlib
import json
import shlex
import shutil
import subprocess

import numpy as np
import pytest

from tests.conftest import ROOT, run, set_params

# The quick experiment's overrides, from their one definition (Makefile, `make quick`).
QUICK = ["dvc", "exp", "run", *shlex.split(subprocess.run(["make", "-s", "print-quick"], cwd=ROOT, text=True,
                                                          capture_output=True, check=True).stdout)]

METRIC_KEYS = {
    "localize": {"mean_iou", "iou50_acc", "iou75_acc", "corner_err_px"},
    "ocr": {"plate_acc", "char_acc"},
    "stack": {"val_acc", "mean_iou"},
}


def digest(folder):
    """md5 of every file under folder, by relative path."""
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_quick_command_runs_every_stage(repo_copy):
    """The quick experiment through real `dvc exp run`, then the CLI on its package."""
    result = run(QUICK, repo_copy, timeout=900)
    for model, keys in METRIC_KEYS.items():
        metrics = json.loads((repo_copy / f"out/evaluations/{model}/metrics.json").read_text())
        assert keys <= metrics.keys(), (model, metrics)
        assert all(isinstance(metrics[k], (int, float)) for k in keys)
    for model in ("localize", "ocr", "stack"):
        assert list((repo_copy / f"out/prepared/{model}/plots/images").glob("*.png"))
        assert list((repo_copy / f"out/evaluations/{model}/plots/images").glob("*.png"))
    for model in ("localize", "ocr"):
        assert (repo_copy / f"out/models/{model}/model.pt").is_file()
        assert (repo_copy / f"out/checkpoints/{model}/last.pt").is_file()
        assert list((repo_copy / f"out/runs/{model}/tensorboard").rglob("events.out.tfevents.*"))
        assert (repo_copy / f"out/runs/{model}/plots/metrics/val/loss.tsv").is_file()
    # The CLI reads a stack scene with the trained models and prints one JSON object.
    from PIL import Image
    import numpy as np
    scene = np.load(repo_copy / "data/prepared/stack/test/images.npy")[0]
    Image.fromarray(scene).save(repo_copy / "scene.png")
    out = run(["platereader", "read", "scene.png"], repo_copy).stdout
    answer = json.loads(out)
    assert answer["file"] == "scene.png" and isinstance(answer["plates"], list)
    # Other formats than the package's, e.g. for photos from Brazil: checked, one line if unknown.
    out = run(["platereader", "read", "scene.png", "--formats", "swiss", "brazil"], repo_copy).stdout
    assert json.loads(out)["file"] == "scene.png"
    wrong = run(["platereader", "read", "scene.png", "--formats", "mars"], repo_copy, check=False)
    assert wrong.returncode == 2 and "unknown plate formats ['mars']" in wrong.stderr
    metrics = json.loads((repo_copy / "out/evaluations/stack/metrics.json").read_text())
    assert not {k for k in metrics if "per_s" in k}, "speed belongs in speed.json, not the metrics"
    assert json.loads((repo_copy / "out/evaluations/stack/speed.json").read_text())["images_per_s"] > 0
    status = run(["dvc", "status"], repo_copy).stdout
    assert "changed" not in status, status
    # A reader setting re-runs what reads with it, and nothing upstream.
    set_params(repo_copy, **{"ReaderParams.MIN_CONFIDENCE": 0.2})
    changed = json.loads(run(["dvc", "status", "--json"], repo_copy).stdout)
    assert set(changed) == {"evaluate_stack", "evaluate_real", "save_stack"}, changed


def assert_same_data(folder_a, folder_b):
    """The same files; non-image arrays and metadata byte for byte, image arrays up to the rare
    one-grey-level rounding flip (float sampling can land a pixel at .5 differently between two
    runs of one process setup; docs/results.md, Repeatability)."""
    files_a, files_b = digest(folder_a), digest(folder_b)
    assert files_a.keys() == files_b.keys()
    for name in files_a:
        if files_a[name] == files_b[name]:
            continue
        assert name.endswith("images.npy"), f"{name} differs"
        a, b = np.load(folder_a / name), np.load(folder_b / name)
        assert a.shape == b.shape and a.dtype == b.dtype, name
        diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
        assert diff.max() <= 1 and np.count_nonzero(diff) <= 1e-5 * diff.size, (name, diff.max(), np.count_nonzero(diff))


def test_prepared_data_is_the_same_with_and_without_multiprocessing(repo_copy, tmp_path):
    sizes = {"PrepareLocalizeParams.MAX_IMAGES": 300, "PrepareOCRParams.MAX_IMAGES": 300,
             "PrepareStackParams.MAX_IMAGES": 300}
    stages = ["prepare_localize", "prepare_ocr", "prepare_stack"]
    set_params(repo_copy, MULTIPROCESSING=True, **sizes)
    run(["dvc", "repro", *stages], repo_copy, timeout=600)
    shutil.copytree(repo_copy / "data/prepared", tmp_path / "parallel")
    set_params(repo_copy, MULTIPROCESSING=False, **sizes)
    run(["dvc", "repro", *stages], repo_copy, timeout=600)
    assert_same_data(repo_copy / "data/prepared", tmp_path / "parallel")
    assert len(digest(tmp_path / "parallel")) >= 12


@pytest.mark.parametrize("module, key, value, message", [
    ("platereader.stages.prepare_localize", "PrepareLocalizeParams.MAX_IMAGES", -5, "PrepareLocalizeParams.MAX_IMAGES"),
    ("platereader.stages.prepare_localize", "PrepareLocalizeParams.VAL_SPLIT", 1.5, "PrepareLocalizeParams.VAL_SPLIT"),
    ("platereader.stages.prepare_localize", "PrepareLocalizeParams.WINDOW_MARGIN", [0.1], "WINDOW_MARGIN"),
    ("platereader.stages.prepare_ocr", "PrepareOCRParams.VAL_SPLIT", 0, "(0, 1)"),
    ("platereader.stages.prepare_ocr", "GeneratorParams.AUGMENTATIONS.rot", -1, "GeneratorParams.AUGMENTATIONS"),
    ("platereader.stages.prepare_ocr", "PrepareOCRParams.AUGMENTATIONS.mot", -1, "PrepareOCRParams.AUGMENTATIONS"),
    ("platereader.stages.prepare_stack", "GeneratorParams.CANTONS", ["ZH", "XX"], "XX"),
    ("platereader.stages.train_localize", "TrainLocalizeParams.EPOCHS", 0, "TrainLocalizeParams.EPOCHS"),
    ("platereader.stages.train_ocr", "TrainOCRParams.INIT_MODEL", ["missing.pt"], "INIT_MODEL"),
    ("platereader.stages.train_ocr", "TrainOCRParams.PRECISION", ["half"], "one of 'auto'"),
    ("platereader.stages.save_stack", "ReaderParams.FORMATS", ["mars"], "ReaderParams.FORMATS"),
])
def test_bad_params_fail_with_one_line_and_write_nothing(repo_copy, module, key, value, message):
    set_params(repo_copy, **{key: value})
    result = run(["python", "-m", module], repo_copy, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert not (repo_copy / "data" / "prepared").exists() and not (repo_copy / "out").exists()
