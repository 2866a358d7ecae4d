"""Scaling out, offline: the Kubernetes training manifests, hyper-parameter sweeps with DVC's queue,
and the models x datasets matrix (docs/scale-out.md). Data-parallel training itself: test_ddp.py.

- kubernetes/pytorchjob.yml against the vendored PyTorchJob schema (check-jsonschema) and its pod
  templates, like kubernetes/train-job.yml, against the Kubernetes schemas (kubernetes-validate
  --strict); each validator is shown a broken file too. The pods' script runs with stub commands.
- scripts/sweep.py queues a 2-value grid in a temporary copy of the repository (a one-stage pipeline
  that reads params.py like the real ones), `dvc queue start -j 2` runs it, both experiments are
  in `dvc exp show` and the best is applied.
- `platereader matrix` reads 2 tiny model sets (a registered version's Git tag and a DVC
  experiment) on 2 tiny datasets and writes a 2 x 2 table, its CSV and its plot.
"""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tests.conftest import BIN, ROOT, copy_repo, run
from tests.test_ci_files import check, tool

PYTORCHJOB = ROOT / "kubernetes" / "pytorchjob.yml"
JOB = ROOT / "kubernetes" / "train-job.yml"
SCHEMA = ROOT / "kubernetes" / "schemas" / "pytorchjob-kubeflow.org-v1.json"
RUNNER = ROOT / "kubernetes" / "cml-runner.yml"


def pytorchjob() -> dict:
    return yaml.safe_load(PYTORCHJOB.read_text())


def job_documents() -> dict[str, dict]:
    return {d["kind"]: d for d in yaml.safe_load_all(JOB.read_text()) if d}


def pod_templates(tmp_path: Path) -> list[Path]:
    """Each PyTorchJob replica's pod template as a core/v1 PodTemplate file, for kubernetes-validate."""
    files = []
    for kind, spec in pytorchjob()["spec"]["pytorchReplicaSpecs"].items():
        path = tmp_path / f"{kind.lower()}-podtemplate.yml"
        path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "PodTemplate",
                                        "metadata": {"name": f"platereader-train-{kind.lower()}"},
                                        "template": spec["template"]}))
        files.append(path)
    return files


def container(pod_spec: dict) -> dict:
    (only,) = pod_spec["containers"]
    return only


# --------------------------------------------------------------------------- manifests: schemas


def test_pytorchjob_matches_the_vendored_crd_schema():
    result = check([tool("check-jsonschema"), "--schemafile", SCHEMA, PYTORCHJOB])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("broken", [
    ("replicas: 1\n      # In place", "replicas: 2\n      # In place"),  # two masters
    ("- name: pytorch #", "- name: trainer #"),  # no container the operator recognises
    ("restartPolicy: OnFailure\n      template: *pod", "restartPolicy: Sometimes\n      template: *pod"),
    ("nprocPerNode: gpu", "nprocPerNode: many"),
])
def test_pytorchjob_schema_rejects_a_broken_job(tmp_path, broken):
    old, new = broken
    assert old in PYTORCHJOB.read_text()
    path = tmp_path / "broken.yml"
    path.write_text(PYTORCHJOB.read_text().replace(old, new, 1))
    result = check([tool("check-jsonschema"), "--schemafile", SCHEMA, path])
    assert result.returncode != 0


def test_pod_templates_and_plain_job_match_the_kubernetes_schemas(tmp_path):
    result = check([tool("kubernetes-validate"), "--strict", *pod_templates(tmp_path), JOB])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == 4  # 2 pod templates, the Service, the Job


def test_kubernetes_validate_rejects_a_broken_pod_template(tmp_path):
    master = pod_templates(tmp_path)[0]
    master.write_text(master.read_text().replace("mountPath: /dev/shm", "mountPaths: /dev/shm"))
    result = check([tool("kubernetes-validate"), "--strict", master])
    assert result.returncode != 0


# --------------------------------------------------------------------------- manifests: what they say


def test_training_pods_use_the_runner_image_gpus_and_secret_credentials():
    runner = next(d for d in yaml.safe_load_all(RUNNER.read_text()) if d and d["kind"] == "Deployment")
    runner_pod = runner["spec"]["template"]["spec"]
    specs = pytorchjob()["spec"]["pytorchReplicaSpecs"]
    pods = [specs["Master"]["template"]["spec"], specs["Worker"]["template"]["spec"],
            job_documents()["Job"]["spec"]["template"]["spec"]]
    for pod in pods:
        c = container(pod)
        assert c["image"] == container(runner_pod)["image"]  # the runner's (docker/Dockerfile)
        assert pod["securityContext"] == runner_pod["securityContext"]  # its user, non-root
        assert c["securityContext"]["readOnlyRootFilesystem"] and not pod["automountServiceAccountToken"]
        assert c["resources"]["limits"]["nvidia.com/gpu"] >= 1
        env = {e["name"]: e for e in c["env"]}
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "DVC_S3_URL", "GIT_TOKEN"):
            assert "value" not in env[name] and env[name]["valueFrom"]["secretKeyRef"]["name"], name
        assert any(v["mountPath"] == "/dev/shm" for v in c["volumeMounts"])
    # Both manifests run the same script, and every node count agrees.
    scripts = {container(pod)["args"][0] for pod in pods}
    assert len(scripts) == 1
    nnodes = {int(next(e["value"] for e in container(pod)["env"] if e["name"] == "NNODES")) for pod in pods}
    assert nnodes == {specs["Master"]["replicas"] + specs["Worker"]["replicas"]}
    job = job_documents()["Job"]["spec"]
    assert job["completionMode"] == "Indexed" and job["completions"] == job["parallelism"] == nnodes.pop()
    service = job_documents()["Service"]
    assert service["spec"]["clusterIP"] == "None" and job["template"]["spec"]["subdomain"] == service["metadata"]["name"]
    master_addr = next(e["value"] for e in container(pods[2])["env"] if e["name"] == "MASTER_ADDR")
    assert master_addr == f"{job_documents()['Job']['metadata']['name']}-0.{service['metadata']['name']}"


def stub(path: Path, body: str) -> None:
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.mark.parametrize("node", ["master", "worker", "indexed-job-pod-1", "master-with-git-token"])
def test_the_pod_script_trains_on_every_node_and_node_0_records_and_pushes(tmp_path, node):
    """The script with stub git, make, dvc and torchrun: what each node would run, in order."""
    script = container(pytorchjob()["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"])["args"][0]
    result = subprocess.run(["bash", "-n", "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    bin_dir, work = tmp_path / "bin", tmp_path / "workspace"
    bin_dir.mkdir()
    work.mkdir()
    log = tmp_path / "log"
    record = f'echo "$(basename "$0") $*" >> {log}\n'
    stub(bin_dir / "git", record + 'if [ "$1 $2" = "init -q" ]; then mkdir -p "$3/.git"; echo "lock" > "$3/dvc.lock"; fi\n')
    stub(bin_dir / "make", record)
    stub(bin_dir / "python3.11", record)
    stub(bin_dir / "torchrun", record)
    stub(bin_dir / "dvc", record + f'echo "  NPROC=${{PLATEREADER_NPROC:-}} ARGS=${{PLATEREADER_TORCHRUN_ARGS:-}}" >> {log}\n')
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "NNODES": "2", "MASTER_ADDR": "m0",
           "MASTER_PORT": "23456", "GIT_REPO": "https://example.com/r.git", "GIT_REF": "main",
           "DVC_S3_URL": "s3://bucket/plate-reader"}
    env.update({"master": {"RANK": "0"}, "worker": {"RANK": "1"}, "indexed-job-pod-1": {"JOB_COMPLETION_INDEX": "1"},
                "master-with-git-token": {"RANK": "0", "GIT_TOKEN": "t"}}[node])
    result = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = log.read_text().splitlines()
    assert calls.index("python3.11 -m venv --system-site-packages .venv") < calls.index("make setup PYTHON=python3.11")
    assert "dvc remote add --local --force --default k8s s3://bucket/plate-reader" in calls
    assert "dvc pull --with-deps --allow-missing train_localize train_ocr" in calls
    rank = "0" if node.startswith("master") else "1"
    rdzv = f"--nnodes=2 --node-rank={rank} --master-addr=m0 --master-port=23456 --rdzv-conf=timeout=1800"
    stages = [c for c in calls if c.startswith(("dvc repro", "torchrun"))]
    if rank == "0":
        # Through DVC (dvc.lock records the run), which starts torchrun itself: PLATEREADER_NPROC.
        assert stages == ["dvc repro --force --single-item train_localize",
                          "dvc repro --force --single-item train_ocr"]
        assert calls[calls.index(stages[0]) + 1] == f"  NPROC=gpu ARGS={rdzv}"
        assert calls.index("dvc push train_localize train_ocr") > calls.index(stages[1])
        pushed = any(c.startswith("git push -q origin k8s-train/") for c in calls)
        assert pushed == (node == "master-with-git-token")
        assert ("commit this dvc.lock" in result.stdout) == (node == "master")
    else:
        # The same stages in the same order, straight under torchrun.
        assert stages == [f"torchrun --nproc-per-node=gpu {rdzv} -m platereader.stages.train_localize",
                          f"torchrun --nproc-per-node=gpu {rdzv} -m platereader.stages.train_ocr"]
        assert not any(c.startswith(("dvc repro", "dvc push", "git push")) for c in calls)


# --------------------------------------------------------------------------- sweeps with DVC's queue


def sweep_module():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import sweep
    finally:
        sys.path.pop(0)
    return sweep


def test_sweep_grid_is_every_combination_as_dvc_exp_run_commands():
    sweep = sweep_module()
    grid = sweep.parse_grid(["TrainOCRParams.WIDTH=16,32", "GeneratorParams.PLATE_WIDTH_RANGE=[0.2,0.9],[0.35,0.95]"])
    commands = sweep.queue_commands(grid, "s", "train_ocr")
    assert [name for name, _ in commands] == ["s-1", "s-2", "s-3", "s-4"]
    assert commands[1][1] == ["exp", "run", "--queue", "-n", "s-2", "-S", "params.py:TrainOCRParams.WIDTH=16",
                              "-S", "params.py:GeneratorParams.PLATE_WIDTH_RANGE=[0.35,0.95]", "train_ocr"]
    for bad in (["WIDTH"], ["TrainOCRParams.WIDTH=16,"], ["A.B=1", "A.B=2"], []):
        with pytest.raises(sweep.SweepError):
            sweep.parse_grid(bad)
    # The metric's column in `dvc exp show --csv`; one two metrics files have needs its file.
    columns = ["Experiment", "out/runs/localize/metrics.json:final_val_loss", "out/runs/ocr/metrics.json:final_val_loss",
               "val_acc"]
    assert sweep.pick_column(columns, "val_acc") == "val_acc"
    assert sweep.pick_column(columns, "out/runs/ocr/metrics.json:final_val_loss") == columns[2]
    with pytest.raises(sweep.SweepError, match="several metrics files.*--metric out/runs/localize"):
        sweep.pick_column(columns, "final_val_loss")


def test_sweep_refuses_a_value_dvc_would_silently_not_rewrite(tmp_path, monkeypatch):
    """DVC rewrites ` = 0.003` on the line; a value written 3e-3 would stay in every experiment."""
    sweep = sweep_module()
    (tmp_path / "params.py").write_text("class P:\n    LR = 3e-3\n    WD = 0.0001\n    WIDTH = 32\n")
    monkeypatch.chdir(tmp_path)
    sweep.check_rewritable(sweep.parse_grid(["P.WD=1e-3,1e-4", "P.WIDTH=8,16"]))
    with pytest.raises(sweep.SweepError, match=r"writes P.LR as 3e-3.*LR = 0.003"):
        sweep.check_rewritable(sweep.parse_grid(["P.LR=1e-3,3e-3"]))
    with pytest.raises(sweep.SweepError, match="no such entry"):
        sweep.check_rewritable(sweep.parse_grid(["P.NOPE=1,2"]))


TINY_STAGE = """\
import json, os
import params

p = params.TrainOCRParams
os.makedirs("out/runs/ocr", exist_ok=True)
with open("out/runs/ocr/metrics.json", "w") as f:
    json.dump({"final_val_loss": 1.0 / p.WIDTH + p.EPOCHS}, f)
"""

TINY_PIPELINE = """\
stages:
  train_ocr:
    cmd: python tiny_stage.py
    deps:
      - tiny_stage.py
    params:
      - params.py:
          - TrainOCRParams
    metrics:
      - out/runs/ocr/metrics.json:
          cache: false
"""


def test_sweep_queues_a_grid_runs_it_and_applies_the_best(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    # A one-stage pipeline that reads params.py like the real stages, in seconds.
    (repo / "dvc.yaml").write_text(TINY_PIPELINE)
    (repo / "tiny_stage.py").write_text(TINY_STAGE)
    (repo / "dvc.lock").unlink(missing_ok=True)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "tiny pipeline"], repo)
    try:
        result = run([sys.executable, "scripts/sweep.py", "-S", "TrainOCRParams.WIDTH=8,16", "--name", "tiny",
                      "--target", "train_ocr", "--run", "-j", "2", "--wait", "--timeout", "240", "--apply-best"],
                     repo, timeout=300)
    finally:
        run(["dvc", "queue", "stop"], repo, check=False)
    assert "dvc queue start -j 2" in result.stdout
    assert "best: tiny-2 (final_val_loss 3.0625)" in result.stdout
    shown = list(csv.DictReader(run(["dvc", "exp", "show", "--csv"], repo).stdout.splitlines()))
    by_name = {row["Experiment"]: row for row in shown if row["Experiment"]}
    assert {"tiny-1", "tiny-2"} <= by_name.keys()
    assert by_name["tiny-1"]["TrainOCRParams.WIDTH"] == "8" and by_name["tiny-2"]["TrainOCRParams.WIDTH"] == "16"
    assert float(by_name["tiny-1"]["final_val_loss"]) == pytest.approx(3.125)
    assert "    WIDTH = 16\n" in (repo / "params.py").read_text()  # dvc exp apply of the best


# --------------------------------------------------------------------------- the evaluation matrix


def tiny_models(folder: Path, seed: int) -> None:
    from platereader.nets.networks import Localizer, PlateOCR, save_model

    torch.manual_seed(seed)
    (folder / "localize").mkdir(parents=True, exist_ok=True)
    (folder / "ocr").mkdir(parents=True, exist_ok=True)
    save_model(Localizer(width=4, input_size=96), folder / "localize" / "model.pt",
               {"scene_size": 256, "window_margin": [0.15, 0.5]})
    save_model(PlateOCR(width=4), folder / "ocr" / "model.pt", {"crop_margin": [0.06, 0.2]})


def test_matrix_of_two_model_versions_on_two_datasets(tmp_path):
    """A registered version (its GTO-style Git tag) and a DVC experiment, on fresh scenes of an
    unused seed and on a folder of arrays: a 2 x 2 table, its CSV and its plot."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "params.py").write_text((ROOT / "params.py").read_text())
    run(["git", "init", "-q", "-b", "main"], repo)
    run(["dvc", "init", "-q"], repo)
    tiny_models(repo / "out" / "models", seed=0)
    run(["dvc", "add", "-q", "out/models"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "models A"], repo)
    run(["git", "tag", "plate-reader@v0.1.0"], repo)
    tiny_models(repo / "out" / "models", seed=1)
    run(["dvc", "add", "-q", "out/models"], repo)
    run(["dvc", "exp", "save", "-q", "-n", "tiny-b"], repo)
    arrays = tmp_path / "two-scenes"
    arrays.mkdir()
    rng = np.random.default_rng(0)
    np.save(arrays / "images.npy", rng.integers(0, 256, (2, 80, 120), dtype=np.uint8))
    np.save(arrays / "texts.npy", np.array(["ZH12345", ""]))
    np.save(arrays / "present.npy", np.array([True, False]))

    out = tmp_path / "matrix"
    result = run([BIN / "platereader", "matrix", "--models", "v0.1.0=plate-reader@v0.1.0", "tiny-b",
                  "--datasets", "seed:101", str(arrays), "--images", "3", "--out", str(out)], repo, timeout=300)
    assert "2 models x 2 datasets" in result.stdout
    rows = list(csv.DictReader((out / "matrix.csv").open()))
    assert [(r["model"], r["dataset"]) for r in rows] == [
        ("v0.1.0", "seed 101"), ("v0.1.0", "two-scenes"), ("tiny-b", "seed 101"), ("tiny-b", "two-scenes")]
    assert rows[0]["source"] != rows[2]["source"]  # two commits: the tag's and the experiment's
    assert all(0 <= float(r["exact"]) <= 1 and r["images"] in ("3", "2") for r in rows)
    table = (out / "matrix.md").read_text().split("\n\n")[2].splitlines()
    assert table[0] == "| model | seed 101 (3) | two-scenes (2) |"
    assert [line.split(" | ")[0] for line in table[2:]] == ["| v0.1.0", "| tiny-b"]
    assert (out / "matrix.png").read_bytes()[:4] == b"\x89PNG"


def test_matrix_names_what_it_cannot_find(tmp_path, monkeypatch):
    from platereader import matrix
    from platereader.errors import UserError

    monkeypatch.chdir(ROOT)
    with pytest.raises(UserError, match="no-such-revision"):
        matrix.resolve_models(["no-such-revision"], str(tmp_path))
    params = matrix.import_params()
    with pytest.raises(UserError, match="seed"):
        matrix.resolve_datasets([f"seed:{params.PrepareStackParams.SEED}"], 2, params)
    with pytest.raises(UserError, match="expected stack, seed:N"):
        matrix.resolve_datasets(["nonsense"], 2, params)


def test_matrix_reads_a_labelled_photo_set_through_realdata(tmp_path, monkeypatch):
    """A photo set (docs/real-data.md's manifest layout) is scored as evaluate_real scores it."""
    from PIL import Image

    from platereader import matrix
    from platereader.reader import ReaderConfig

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 256, (90, 160), dtype=np.uint8)).save(photos / name)
    (photos / "labels.jsonl").write_text(
        json.dumps({"image": "a.png", "plates": [{"text": "ZH 123", "box": [20, 30, 100, 25]}]}) + "\n"
        + json.dumps({"image": "b.png", "plates": []}) + "\n")
    tiny_models(tmp_path / "models", seed=0)
    monkeypatch.chdir(ROOT)
    params = matrix.import_params()
    datasets = matrix.resolve_datasets([str(photos)], 1, params)
    assert [(d.label, d.kind) for d in datasets] == [("photos", "photos")]
    models = matrix.resolve_models([f"tiny={tmp_path / 'models'}"], str(tmp_path / "scratch"))
    (row,) = matrix.evaluate(models, datasets, ReaderConfig.from_params(params.ReaderParams), batch=2)
    assert row["images"] == 2 and row["plates"] == 1 and 0 <= row["exact"] <= 1 and "false_per_photo" in row
    assert "| model | photos (2) |" in matrix.markdown([row])
