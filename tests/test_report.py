"""The PR report builder (python -m platereader.report) in a tiny throwaway DVC project.

The project mimics the real one: params.py, a stage writing a metrics JSON and DVCLive-style loss
TSVs for two models, top-level plots `localize_loss` / `ocr_loss`, stack prediction images.
"""

import io
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import ROOT, run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

PARAMS = textwrap.dedent(
    """\
    SEED = 0


    class TrainParams:
        EPOCHS = 3
        LEARNING_RATE = 0.1
    """
)

# Writes what the real training and evaluation stages write, from params.py.
TRAIN = textwrap.dedent(
    """\
    import json, os
    import params

    p = params.TrainParams
    for model in ("localize", "ocr"):
        for split, scale in (("train", 1.0), ("val", 1.5)):
            folder = f"out/runs/{model}/plots/metrics/{split}"
            os.makedirs(folder, exist_ok=True)
            with open(f"{folder}/loss.tsv", "w") as f:
                f.write("step\\tloss\\n")
                for step in range(p.EPOCHS):
                    f.write(f"{step}\\t{scale * p.LEARNING_RATE / (step + 1):.6f}\\n")
    os.makedirs("out/evaluations/ocr", exist_ok=True)
    with open("out/evaluations/ocr/metrics.json", "w") as f:
        json.dump({"plate_acc": round(0.5 + p.EPOCHS / 100, 4), "char_acc": round(0.8 + p.LEARNING_RATE, 4)}, f)
    """
)

DVC_YAML = textwrap.dedent(
    """\
    stages:
      train:
        cmd: python train.py
        deps: [train.py]
        params:
          - params.py:
              - TrainParams
        outs:
          - out/runs:
              cache: false
        metrics:
          - out/evaluations/ocr/metrics.json:
              cache: false
    plots:
      - localize_loss:
          x: step
          y:
            out/runs/localize/plots/metrics/train/loss.tsv: loss
            out/runs/localize/plots/metrics/val/loss.tsv: loss
      - ocr_loss:
          x: step
          y:
            out/runs/ocr/plots/metrics/train/loss.tsv: loss
            out/runs/ocr/plots/metrics/val/loss.tsv: loss
    """
)


def report(repo: Path, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    """python -m platereader.report from this checkout, run inside `repo` with this venv's python
    (outside GitHub Actions unless env says otherwise)."""
    env = {"GITHUB_ACTIONS": "", **env}
    return run([sys.executable, "-m", "platereader.report", *args], repo, check=check, PYTHONPATH=str(ROOT), **env)


def make_project(repo: Path, stack_images: int = 0) -> Path:
    repo.mkdir()
    run(["git", "init", "-q", "-b", "main"], repo)
    run(["dvc", "init", "-q"], repo)
    (repo / "params.py").write_text(PARAMS)
    (repo / "train.py").write_text(TRAIN)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    run(["dvc", "repro", "-q"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "baseline"], repo)
    folder = repo / "out/evaluations/stack/plots/images"
    folder.mkdir(parents=True)
    for i in range(stack_images):
        Image.new("RGB", (64, 32), (40 * i, 100, 200)).save(folder / f"pred_{i}.png")
    return repo


def linked_files(markdown: str, repo: Path) -> list[Path]:
    return [repo / link for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)]


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), path
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 50 and image.height > 20


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    """A baseline commit on main, then an experiment with more epochs in the workspace."""
    repo = make_project(tmp_path_factory.mktemp("report") / "project", stack_images=3)
    params = repo / "params.py"
    params.write_text(params.read_text().replace("EPOCHS = 3", "EPOCHS = 5"))
    run(["dvc", "repro", "-q"], repo)
    report(repo, "--base", "main", "--out", "report.md", "--max-images", "2")
    return repo


def test_params_table_shows_the_change(experiment):
    text = (experiment / "report.md").read_text()
    section = text.split("## Parameters", 1)[1].split("## Metrics", 1)[0]
    assert "| Path" in section and "Param" in section
    row = next(line for line in section.splitlines() if "TrainParams.EPOCHS" in line)
    assert "3" in row and "5" in row


def test_metrics_table_shows_the_new_value(experiment):
    text = (experiment / "report.md").read_text()
    section = text.split("## Metrics", 1)[1].split("## Plots", 1)[0]
    row = next(line for line in section.splitlines() if "plate_acc" in line)
    assert "0.53" in row and "0.55" in row  # main, workspace
    assert "char_acc" in section  # unchanged metrics are listed too


def test_loss_plots_are_valid_pngs(experiment):
    text = (experiment / "report.md").read_text()
    plots = [p for p in linked_files(text, experiment) if p.parent.name == "plots"]
    assert {p.stem for p in plots} == {"localize_loss", "ocr_loss"}
    for path in plots:
        assert path.is_relative_to(experiment / "report")  # relative links into report/
        assert_png(path)


def test_first_stack_images_are_copied(experiment):
    text = (experiment / "report.md").read_text()
    images = [p for p in linked_files(text, experiment) if p.parent.name == "images"]
    assert [p.name for p in images] == ["pred_0.png", "pred_1.png"]
    for path in images:
        assert_png(path)
    assert "2 of 3" in text


def test_first_line_names_both_sides_and_the_runner(experiment):
    first = (experiment / "report.md").read_text().splitlines()[0]
    head = run(["git", "rev-parse", "--short", "HEAD"], experiment).stdout.strip()
    # EPOCHS 3 -> 5 is a bigger run, not a small one: compared with main's full results.
    assert first.startswith("# Experiment report: full params at ")
    assert f"`{head}`" in first and "vs full params at `main`" in first
    assert "local machine" in first


def test_runner_in_github_actions(tmp_path):
    repo = make_project(tmp_path / "project")
    report(repo, "--base", "main", GITHUB_ACTIONS="true", RUNNER_ENVIRONMENT="github-hosted",
           RUNNER_NAME="GitHub Actions 7")
    first = (repo / "report.md").read_text().splitlines()[0]
    assert first.endswith("on GitHub-hosted runner `GitHub Actions 7`"), first


SMOKE = ["-S", "params.py:TrainParams.EPOCHS=1"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    """main (full params, EPOCHS 3), a smoke experiment of main (`dvc exp run -S EPOCHS=1`), then a
    second commit on a branch (LEARNING_RATE 0.1 -> 0.2) and a smoke run of it in the workspace."""
    repo = make_project(tmp_path_factory.mktemp("smoke") / "project")
    run(["dvc", "exp", "run", "-q", "-n", "main-smoke", *SMOKE], repo)
    run(["git", "checkout", "-q", "--", "."], repo)  # back to main's committed params and results
    run(["git", "switch", "-q", "-c", "faster"], repo)
    params = repo / "params.py"
    params.write_text(params.read_text().replace("LEARNING_RATE = 0.1", "LEARNING_RATE = 0.2"))
    run(["dvc", "repro", "-q"], repo)
    run(["git", "commit", "-q", "-am", "faster learning"], repo)
    run(["dvc", "exp", "run", "-q", *SMOKE], repo)
    return repo


def section(text: str, name: str) -> str:
    return text.split(f"## {name}", 1)[1].split("\n## ", 1)[0]


def test_smoke_run_is_never_diffed_against_full_results(smoke):
    report(smoke, "--base", "main", "--out", "vs-full.md")
    text = (smoke / "vs-full.md").read_text()
    first = text.splitlines()[0]
    assert first.startswith("# Experiment report: small params at ")
    assert "not compared with full params at `main`" in first, first
    assert "`TrainParams.EPOCHS=1`" in text  # says which overrides made it small
    metrics = section(text, "Metrics")
    assert "not compared" in metrics
    assert "0.53" not in metrics and "0.51" in metrics  # main's full-run plate_acc is not shown
    assert "main" not in section(text, "Plots")


def test_smoke_run_is_diffed_against_a_smoke_run_of_main(smoke):
    report(smoke, "--base", "main-smoke", "--out", "vs-smoke.md")  # an experiment name, as DVC takes it
    sha = run(["git", "rev-parse", "main"], smoke).stdout.strip()
    text = (smoke / "vs-smoke.md").read_text()
    first = text.splitlines()[0]
    head = run(["git", "rev-parse", "--short", "HEAD"], smoke).stdout.strip()
    assert first.startswith(f"# Experiment report: small params at `{head}` vs small params at experiment "
                            f"`main-smoke` on `{sha[:7]}`"), first
    params = section(text, "Parameters")
    assert "LEARNING_RATE" in params and "EPOCHS" not in params  # only the branch's own change
    row = next(line for line in section(text, "Metrics").splitlines() if "char_acc" in line)
    assert "0.9" in row and "1.0" in row  # smoke of main, smoke of the branch
    assert {p.stem for p in linked_files(text, smoke) if p.parent.name == "plots"} == {"localize_loss", "ocr_loss"}


def test_missing_results_become_notes(tmp_path):
    """No plots or stack images, no `main` branch: notes in the report, exit 0."""
    repo = tmp_path / "bare"
    repo.mkdir()
    run(["git", "init", "-q", "-b", "trunk"], repo)
    run(["dvc", "init", "-q"], repo)
    run(["git", "commit", "-q", "-m", "init"], repo)
    result = report(repo)
    text = (repo / "report.md").read_text()
    assert "No `main` revision" in text
    assert "No plots yet" in text
    assert "No prediction images" in text
    assert "No metrics yet" in text
    assert "wrote" in result.stdout


def test_bad_base_is_one_line_error(tmp_path):
    repo = make_project(tmp_path / "project")
    result = report(repo, "--base", "no-such-branch", check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "no-such-branch" in lines[0]
    assert not (repo / "report.md").exists()
