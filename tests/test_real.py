"""Labelled photo datasets (data/real/<name>): both layouts, the checks on bad ones, the scores,
evaluate_real and prepare_real as stages and through DVC, and training refusing evaluated photos.
Every photo is drawn by the test; nothing here needs ../shared or the network."""

import json
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageDraw

import params
from platereader import realdata
from platereader.errors import UserError
from tests.conftest import copy_repo, run, set_params

METRIC_KEYS = {"photos", "plates", "recall", "mean_iou", "exact", "cer", "raw_exact", "raw_cer", "false_per_photo",
               "bucket_missed", "bucket_box_off", "bucket_misread", "bucket_wrong_format", "bucket_not_reported"}


def photo(path: Path, size=(160, 120), box=(40, 60, 64, 16), text="AB123", seed=0) -> Path:
    """A grey photo with a white plate and black characters at box (x, y, w, h)."""
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(60, 120, (size[1], size[0]), dtype=np.uint8))
    if box is not None:
        x, y, w, h = box
        draw = ImageDraw.Draw(image)
        draw.rectangle([x, y, x + w, y + h], fill=235)
        draw.text((x + 4, y + 3), text, fill=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def openalpr_set(folder: Path) -> Path:
    """OpenALPR layout: NAME.txt beside NAME.jpg; tab and space separated; two plates in one file;
    an image no label names."""
    photo(folder / "car1.jpg", box=(40, 60, 64, 16), seed=1)
    (folder / "car1.txt").write_text("car1.jpg\t40\t60\t64\t16\tAB123\n")
    photo(folder / "car2.png", box=(10, 10, 60, 15), seed=2)
    (folder / "car2.txt").write_text("car2.png 10 10 60 15 ZH-12.3\ncar2.png 80 90 60 15 xy 99\n")
    photo(folder / "stray.jpg", seed=3)  # not labelled: not part of the set
    return folder


def manifest_set(folder: Path) -> Path:
    """Manifest layout: corners, a box, two plates, a format, a photo without a plate."""
    photo(folder / "cars" / "a.png", box=(30, 40, 80, 20), seed=4)
    photo(folder / "b.jpg", box=None, seed=5)
    photo(folder / "c.png", box=(5, 5, 50, 12), seed=6)
    lines = [
        {"image": "cars/a.png", "plates": [{"text": "ZH 123", "format": "swiss",
                                            "corners": [[30, 40], [110, 41], [110, 60], [30, 60]]}]},
        {"image": "b.jpg", "plates": []},
        {"image": "c.png", "plates": [{"text": "AB1", "box": [5, 5, 50, 12]},
                                      {"text": "CD2", "box": [80, 80, 50, 12]}]},
    ]
    (folder / "labels.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    return folder


# --------------------------------------------------------------------------- loading


def test_openalpr_layout_as_it_is(tmp_path):
    openalpr_set(tmp_path / "real" / "alpr")
    data = realdata.load_dataset("alpr", str(tmp_path / "real"))
    assert data.layout == "openalpr" and len(data.photos) == 2 and data.plates == 3 and data.unlabelled == 1
    first, second = data.photos
    assert first.plates[0].text == "AB123" and (first.width, first.height) == (160, 120)
    np.testing.assert_allclose(first.plates[0].corners, [[40, 60], [104, 60], [104, 76], [40, 76]])
    assert [p.text for p in second.plates] == ["ZH123", "XY99"]  # spaces, dashes, dots dropped; upper case
    assert second.where.endswith("car2.txt:1")


def test_manifest_layout_with_corners_several_plates_and_no_plate(tmp_path):
    manifest_set(tmp_path / "real" / "mine")
    data = realdata.load_dataset("mine", str(tmp_path / "real"))
    assert data.layout == "manifest" and [len(p.plates) for p in data.photos] == [1, 0, 2]
    plate = data.photos[0].plates[0]
    assert plate.text == "ZH123" and plate.format == "swiss" and plate.corners[1].tolist() == [110, 41]
    assert data.photos[2].plates[1].box == (80, 80, 130, 92)


def test_a_box_a_pixel_past_the_edge_is_cut_to_the_image(tmp_path):
    """The OpenALPR Brazil set has a box at x = -1: labelling tools round."""
    folder = tmp_path / "real" / "edge"
    photo(folder / "a.jpg")
    (folder / "a.txt").write_text("a.jpg\t-1\t60\t64\t16\tAB123\n")
    plate = realdata.load_dataset("edge", str(tmp_path / "real")).photos[0].plates[0]
    assert plate.box == (0, 60, 63, 76)


def bad(folder: Path, case: str) -> str:
    """Write a dataset with one fault; return what the one-line error must say."""
    if case in ("missing image", "box outside", "empty text", "illegal text", "duplicate label", "bad line"):
        photo(folder / "a.jpg")
        label = {"missing image": "b.jpg\t40\t60\t64\t16\tAB123",
                 "box outside": "a.jpg\t120\t60\t64\t16\tAB123",
                 "empty text": "a.jpg\t40\t60\t64\t16\t-",
                 "illegal text": "a.jpg\t40\t60\t64\t16\tAB#12",
                 "duplicate label": "a.jpg\t40\t60\t64\t16\tAB123",
                 "bad line": "a.jpg 40 60 AB123"}[case]
        (folder / "a.txt").write_text(label + "\n")
        if case == "duplicate label":
            (folder / "a2.txt").write_text(label + "\n")
            return "a2.txt:1: duplicate image"
        return "a.txt:1: " + {"missing image": "image b.jpg not found", "box outside": "plate outside the 160x120",
                              "empty text": "empty plate text", "illegal text": "plate text 'AB#12' has characters '#'",
                              "bad line": "expected `NAME.jpg x y w h TEXT`"}[case]
    photo(folder / "a.jpg")
    entries = {
        "same bytes": [{"image": "a.jpg", "plates": []}, {"image": "copy.jpg", "plates": []}],
        "twice": [{"image": "a.jpg", "plates": []}, {"image": "a.jpg", "plates": []}],
        "unknown key": [{"image": "a.jpg", "plate": []}],
        "no plates": [{"image": "a.jpg"}],
        "anticlockwise": [{"image": "a.jpg",
                           "plates": [{"text": "AB1", "corners": [[0, 0], [0, 9], [30, 9], [30, 0]]}]}],
        "not swiss": [{"image": "a.jpg", "plates": [{"text": "XX 12", "format": "swiss", "box": [0, 0, 30, 9]}]}],
        "outside": [{"image": "../a.jpg", "plates": []}],
    }
    if case == "same bytes":
        shutil.copy(folder / "a.jpg", folder / "copy.jpg")
    lines = [json.dumps(e) for e in entries[case]] if case != "not json" else ['{"image": "a.jpg",']
    (folder / "labels.jsonl").write_text("\n".join(lines) + "\n")
    return "labels.jsonl:" + {"same bytes": "2: duplicate image", "twice": "2: duplicate image",
                              "unknown key": "1: unknown keys ['plate']", "no plates": '1: "plates" must be',
                              "anticlockwise": "1: the corners", "not swiss": "1: plate text 'XX 12' is not a swiss",
                              "outside": "1: image '../a.jpg' is outside", "not json": "1: not JSON"}[case]


BAD_CASES = ["missing image", "box outside", "empty text", "illegal text", "duplicate label", "bad line",
             "same bytes", "twice", "unknown key", "no plates", "anticlockwise", "not swiss", "outside", "not json"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_a_bad_dataset_fails_with_one_line_naming_file_line_and_fix(tmp_path, case):
    expected = bad(tmp_path / "real" / "bad", case)
    with pytest.raises(UserError) as error:
        realdata.load_dataset("bad", str(tmp_path / "real"))
    message = str(error.value)
    assert expected in message and "\n" not in message, message


def test_dataset_names_come_from_params_and_must_exist(tmp_path):
    (tmp_path / "real" / "there").mkdir(parents=True)
    params = type("RealParams", (), {"EVAL_DATASETS": ["there"], "BAD": ["gone"], "PATH": ["../x"], "ONE": "there"})
    assert realdata.dataset_names(params, "EVAL_DATASETS", str(tmp_path / "real")) == ["there"]
    for attr, text in (("BAD", "does not exist: bring it with `dvc import"), ("PATH", "folder under"),
                       ("ONE", "expected a list")):
        with pytest.raises(UserError, match=f"params.py:RealParams.{attr}.*{text}"):
            realdata.dataset_names(params, attr, str(tmp_path / "real"))


def test_a_photo_may_not_be_trained_and_evaluated_on_whatever_its_name(tmp_path):
    openalpr_set(tmp_path / "real" / "a")
    (tmp_path / "real" / "b").mkdir()
    shutil.copy(tmp_path / "real" / "a" / "car2.png", tmp_path / "real" / "b" / "renamed.png")
    (tmp_path / "real" / "b" / "labels.jsonl").write_text('{"image": "renamed.png", "plates": []}\n')
    a, b = (realdata.load_dataset(n, str(tmp_path / "real")) for n in "ab")
    with pytest.raises(UserError, match="share 1 photos .*renamed.png"):
        realdata.check_disjoint([a], [b])
    realdata.check_disjoint([a], [])


# --------------------------------------------------------------------------- scoring


def candidate(box, text, reported):
    x0, y0, x1, y1 = box
    return SimpleNamespace(corners=np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32), text=text,
                           reported=reported)


def plate(box, text):
    x0, y0, x1, y1 = box
    return realdata.Plate(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32), text)


def test_scores_separate_the_localizer_the_ocr_and_the_reported_plates():
    plates = [plate((0, 0, 100, 20), "AB123"), plate((200, 0, 300, 20), "CD456"), plate((0, 100, 100, 120), "EF7")]
    candidates = [candidate((2, 1, 100, 21), "AB123", True),      # located, read, reported
                  candidate((205, 0, 300, 20), "CD450", False),   # located, misread, not reported
                  candidate((400, 400, 500, 420), "ZH1", True)]   # a false plate; EF7 is missed
    score = realdata.score_photo(plates, candidates)
    assert (score.plates, score.located, score.exact, score.raw_exact, score.false) == (3, 2, 1, 1, 1)
    assert score.errors == 0 + 5 + 3 and score.raw_errors == 0 + 1 + 3 and score.chars == 13
    empty = realdata.score_photo([], [candidate((0, 0, 10, 10), "X", True)])
    metrics = realdata.summarise([score, empty])
    assert metrics == {"photos": 2, "plates": 3, "recall": 0.6667, "mean_iou": round(np.mean(score.best_iou), 4),
                       "exact": 0.3333, "cer": round(8 / 13, 4), "raw_exact": 0.3333, "raw_cer": round(4 / 13, 4),
                       "bucket_missed": 0.3333, "bucket_box_off": 0.0, "bucket_misread": 0.3333,
                       "bucket_wrong_format": 0.0, "bucket_not_reported": 0.0, "false_per_photo": 1.0}
    assert realdata.worst_first([empty, score]) == [1, 0]
    assert realdata.summarise([empty]) == {"photos": 1, "plates": 0, "false_per_photo": 1.0}


def test_real_items_are_mixed_in_at_their_share_and_nothing_changes_without_them():
    from platereader.training.mixing import with_real

    synthetic = {"images": np.zeros((30, 4, 4), np.uint8), "texts": np.array(["A"] * 30)}
    real = {"images": np.ones((4, 4, 4), np.uint8), "texts": np.array(["B1", "B2", "B3", "B4"])}
    assert with_real(synthetic, {"images": real["images"][:0], "texts": real["texts"][:0]}, 0.25) is synthetic
    assert with_real(synthetic, real, 0.0) is synthetic
    mixed = with_real(synthetic, real, 0.25)
    assert len(mixed["images"]) == 40 and mixed["images"][30:].all() and not mixed["images"][:30].any()
    assert mixed["texts"][30:].tolist() == ["B1", "B2", "B3", "B4"] * 2 + ["B1", "B2"]


# --------------------------------------------------------------------------- stages, DVC


def tiny_models(repo: Path) -> None:
    """Untrained networks in the shapes the reader loads (the scores need not be good)."""
    import torch

    from platereader.nets.networks import Localizer, PlateOCR, save_model

    torch.manual_seed(0)
    for name, model, extra in (
            ("localize", Localizer(width=4, input_size=32), {"scene_size": 256, "window_margin": [0.15, 0.5]}),
            ("ocr", PlateOCR(4, 32, 128), {"crop_margin": [0.06, 0.2]})):
        (repo / "out" / "models" / name).mkdir(parents=True, exist_ok=True)
        save_model(model, repo / "out" / "models" / name / "model.pt", extra)


@pytest.fixture
def repo(tmp_path) -> Path:
    """A copy of the project with data/real as a fresh clone has it (its README) and tiny models."""
    dest = copy_repo(tmp_path / "repo")
    assert (dest / "data" / "real" / "README.md").is_file()
    tiny_models(dest)
    return dest


def one_line_error(result: subprocess.CompletedProcess, *parts: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert all(part in lines[0] for part in parts), lines[0]


def test_evaluate_real_scores_each_dataset_in_either_layout(repo):
    run(["python", "-m", "platereader.stages.evaluate_real"], repo)  # none listed: neutral, no read
    assert json.loads((repo / "out/evaluations/real/metrics.json").read_text()) == {}
    openalpr_set(repo / "data" / "real" / "alpr")
    manifest_set(repo / "data" / "real" / "mine")
    set_params(repo, **{"RealParams.EVAL_DATASETS": ["alpr", "mine"], "EvaluateParams.NUM_PLOT_IMAGES": 2})
    run(["python", "-m", "platereader.stages.evaluate_real"], repo)
    metrics = json.loads((repo / "out/evaluations/real/metrics.json").read_text())
    assert set(metrics) == {"alpr", "mine"} and all(set(m) == METRIC_KEYS for m in metrics.values()), metrics
    assert (metrics["alpr"]["photos"], metrics["alpr"]["plates"], metrics["mine"]["plates"]) == (2, 3, 3)
    speed = json.loads((repo / "out/evaluations/real/speed.json").read_text())
    assert speed["alpr"]["ms_per_photo"] > 0 and speed["mine"]["photos"] == 3
    for name in ("alpr", "mine"):
        assert len(list((repo / f"out/evaluations/real/{name}/plots/images").glob("worst_*.png"))) == 2


@pytest.mark.parametrize("case", ["missing image", "box outside"])
def test_evaluate_real_on_a_bad_dataset_says_one_line_and_writes_nothing(repo, case):
    expected = bad(repo / "data" / "real" / "bad", case)
    set_params(repo, **{"RealParams.EVAL_DATASETS": ["bad"]})
    result = run(["python", "-m", "platereader.stages.evaluate_real"], repo, check=False)
    one_line_error(result, "data/real/bad/" + expected)
    assert not (repo / "out/evaluations/real").exists()


def test_dvc_import_into_data_real_then_repro_evaluate_real(repo, tmp_path):
    source = tmp_path / "benchmarks"  # a public repository of labelled photos, as OpenALPR's
    openalpr_set(source / "endtoend" / "xx")
    run(["git", "init", "-q", "-b", "main"], source)
    run(["git", "add", "-A"], source)
    run(["git", "commit", "-q", "-m", "photos"], source)
    run(["dvc", "import", str(source), "endtoend/xx", "-o", "data/real/openalpr-xx"], repo)
    assert (repo / "data/real/openalpr-xx.dvc").is_file() and (repo / "data/real/openalpr-xx/car1.txt").is_file()
    set_params(repo, **{"RealParams.EVAL_DATASETS": ["openalpr-xx"]})
    run(["dvc", "repro", "--single-item", "evaluate_real"], repo)
    assert json.loads((repo / "out/evaluations/real/metrics.json").read_text())["openalpr-xx"]["plates"] == 3
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], repo).stdout)
    assert "openalpr-xx" in json.dumps(shown)
    assert "evaluate_real" not in run(["dvc", "status", "evaluate_real"], repo).stdout


def test_prepare_real_makes_training_arrays_and_refuses_evaluated_photos(repo):
    openalpr_set(repo / "data" / "real" / "alpr")
    shutil.copytree(repo / "data" / "real" / "alpr", repo / "data" / "real" / "again")  # same photos
    (repo / "data" / "real" / "again" / "car2.txt").rename(repo / "data" / "real" / "again" / "other.txt")
    manifest_set(repo / "data" / "real" / "mine")
    set_params(repo, **{"RealParams.TRAIN_DATASETS": ["mine"], "RealParams.EVAL_DATASETS": ["alpr"],
                        "RealParams.COPIES": 3})
    run(["python", "-m", "platereader.stages.prepare_real"], repo)
    loc = {k: np.load(repo / f"data/prepared/real/localize/train/{k}.npy")
           for k in ("images", "corners", "present", "zoomed")}
    ocr = {k: np.load(repo / f"data/prepared/real/ocr/train/{k}.npy") for k in ("images", "texts")}
    # Per photo 3 whole-photo inputs, then 3 windows per plate (3 on random quads without a plate).
    assert loc["images"].shape == (3 * 3 + 3 * 3 + 3, 96, 96) and loc["zoomed"].sum() == 12
    assert loc["present"].tolist() == [True] * 6 + [False] * 6 + [True] * 9
    crop = (params.PrepareOCRParams.CROP_HEIGHT, params.PrepareOCRParams.CROP_WIDTH)  # the synthetic crops' size
    assert ocr["images"].shape == (9, *crop) and ocr["texts"].tolist() == ["ZH123"] * 3 + ["AB1"] * 3 + ["CD2"] * 3
    meta = json.loads((repo / "data/prepared/real/meta.json").read_text())
    assert meta["datasets"]["mine"]["photos"] == 3

    set_params(repo, **{"RealParams.TRAIN_DATASETS": ["again"]})
    result = run(["python", "-m", "platereader.stages.prepare_real"], repo, check=False)
    one_line_error(result, "TRAIN_DATASETS and EVAL_DATASETS share 2 photos")
    assert (repo / "data/prepared/real/meta.json").read_text() == json.dumps(meta, indent=2, sort_keys=True) + "\n"


def test_training_refuses_a_dataset_that_is_also_evaluated(repo):
    openalpr_set(repo / "data" / "real" / "alpr")
    set_params(repo, **{"RealParams.TRAIN_DATASETS": ["alpr"], "RealParams.EVAL_DATASETS": ["alpr"],
                        "MULTIPROCESSING": False, "PrepareLocalizeParams.MAX_IMAGES": 16})
    result = run(["dvc", "repro", "train_localize"], repo, check=False)
    assert result.returncode != 0 and "share 2 photos" in result.stdout + result.stderr, result.stderr
    assert not (repo / "out/runs/localize/metrics.json").exists()
