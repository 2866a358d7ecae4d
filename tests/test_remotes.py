"""DVC remotes round trip: push, lose the cache and the workspace copy, pull, compare.

- the project's default remote, with the project's own .dvc/config (a fresh clone's view);
- an S3 remote against a real S3-protocol server (moto in server mode) on 127.0.0.1;
- the real pipeline on tiny params: what one clone reproduced and pushed, a fresh clone pulls with
  nothing left to run, and the run-cache restores every stage (training included) without running it.
"""

import filecmp
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, copy_repo, run, set_params, stop, tool_env

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def make_repo(path: Path) -> dict[str, bytes]:
    """A git + DVC repo tracking a small folder; returns its files' contents."""
    path.mkdir()
    run(["git", "init", "-q", "-b", "main"], path)
    run(["dvc", "init", "-q"], path)
    data = path / "data" / "prepared"
    data.mkdir(parents=True)
    files = {
        "data/prepared/images.bin": os.urandom(200_000),
        "data/prepared/labels.json": b'{"plates": ["ZH 123456", "BE 42"]}\n',
    }
    for rel, content in files.items():
        (path / rel).write_bytes(content)
    run(["dvc", "add", "-q", "data/prepared"], path)
    return files


def round_trip(repo: Path, files: dict[str, bytes], remote: str, **env: str) -> None:
    run(["git", "add", "-A"], repo, **env)
    run(["git", "commit", "-q", "-m", "data"], repo, **env)
    run(["dvc", "push", "-r", remote], repo, **env)
    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(repo / "data" / "prepared")
    run(["dvc", "pull", "-r", remote], repo, **env)
    for rel, content in files.items():
        assert (repo / rel).read_bytes() == content, rel
    status = run(["dvc", "status", "-c", "-r", remote], repo, **env)
    assert "in sync" in status.stdout, status.stdout
    assert "new" not in status.stdout and "missing" not in status.stdout, status.stdout


# --------------------------------------------------------------------------- local remote


def test_project_default_remote_is_local_and_git_ignored():
    # --project: the committed .dvc/config only, whatever a developer set in config.local.
    default = run(["dvc", "config", "--project", "core.remote"], ROOT).stdout.strip()
    assert default, "no default remote in .dvc/config"
    url = run(["dvc", "config", "--project", f"remote.{default}.url"], ROOT).stdout.strip()
    assert "://" not in url, url  # a plain directory: no account needed
    # Its contents must never end up in git.
    probe = (ROOT / ".dvc" / url / "files" / "md5" / "ab" / "cdef").relative_to(ROOT)
    assert run(["git", "check-ignore", "-q", str(probe)], ROOT, check=False).returncode == 0


def test_local_remote_round_trip_with_project_config(tmp_path):
    """A fresh clone's view: the project's .dvc/config as is, then push / pull."""
    repo = tmp_path / "clone"
    files = make_repo(repo)
    shutil.copyfile(ROOT / ".dvc" / "config", repo / ".dvc" / "config")
    default = run(["dvc", "config", "core.remote"], repo).stdout.strip()
    round_trip(repo, files, default)
    url = run(["dvc", "config", f"remote.{default}.url"], repo).stdout.strip()
    storage = (repo / ".dvc" / url).resolve()
    assert any(p.is_file() for p in storage.rglob("*")), "nothing was pushed to the local remote"


# --------------------------------------------------------------------------- S3 remote


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def s3_endpoint(tmp_path):
    """moto's S3 server on a free local port; stopped after the test."""
    port = free_port()
    env = {**tool_env(), **FAKE_AWS}
    log_path = tmp_path / "moto.log"
    log = log_path.open("wb")  # a file, not a pipe: the request log could fill a pipe and block
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import requests

        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                pytest.fail(f"moto server exited: {log_path.read_text()[-2000:]}")
            try:
                requests.get(url, timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail("moto server did not start within 30 s")
                time.sleep(0.2)
        yield url
    finally:
        stop(server)
        log.close()


def test_s3_remote_round_trip(tmp_path, s3_endpoint):
    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint, **{
        "aws_access_key_id": FAKE_AWS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": FAKE_AWS["AWS_SECRET_ACCESS_KEY"],
        "region_name": FAKE_AWS["AWS_DEFAULT_REGION"],
    }).create_bucket(Bucket="plates")

    repo = tmp_path / "repo"
    files = make_repo(repo)
    # As documented: the remote and its endpoint in .dvc/config, credentials from the environment.
    run(["dvc", "remote", "add", "-d", "s3", "s3://plates/dvc"], repo)
    run(["dvc", "remote", "modify", "s3", "endpointurl", s3_endpoint], repo)
    config = (repo / ".dvc" / "config").read_text()
    assert "testing" not in config  # no credentials in the committed config
    round_trip(repo, files, "s3", **FAKE_AWS)


def test_s3_credentials_in_config_local_stay_out_of_git(tmp_path, s3_endpoint):
    """The other documented way: `dvc remote modify --local` writes to git-ignored config.local."""
    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="testing",
                 aws_secret_access_key="testing", region_name="us-east-1").create_bucket(Bucket="plates")
    repo = tmp_path / "repo"
    files = make_repo(repo)
    run(["dvc", "remote", "add", "-d", "s3", "s3://plates/dvc"], repo)
    run(["dvc", "remote", "modify", "s3", "endpointurl", s3_endpoint], repo)
    run(["dvc", "remote", "modify", "--local", "s3", "access_key_id", "local-key-id"], repo)
    run(["dvc", "remote", "modify", "--local", "s3", "secret_access_key", "local-secret"], repo)
    assert "local-secret" not in (repo / ".dvc" / "config").read_text()
    assert "local-secret" in (repo / ".dvc" / "config.local").read_text()
    assert run(["git", "check-ignore", "-q", ".dvc/config.local"], repo, check=False).returncode == 0
    # Blank AWS_* credential variables: DVC has to take the keys from config.local.
    env = {k: "" for k in FAKE_AWS}
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    round_trip(repo, files, "s3", **env)


# --------------------------------------------------------------------------- the pipeline, clone to clone

TINY = {"MULTIPROCESSING": False, "PrepareLocalizeParams.MAX_IMAGES": 64, "PrepareOCRParams.MAX_IMAGES": 64,
        "PrepareStackParams.MAX_IMAGES": 64, "TrainLocalizeParams.EPOCHS": 1, "TrainOCRParams.EPOCHS": 1}
MODELS = ["out/models/localize/model.pt", "out/models/ocr/model.pt", "out/mlem/plate_reader/reader.json"]


@pytest.fixture(scope="module")
def pushed(tmp_path_factory) -> Path:
    """A clone that ran the pipeline on tiny params, committed dvc.lock and the metrics (commit
    "results", after "tiny params") and pushed outputs and run-cache to a shared remote."""
    origin = copy_repo(tmp_path_factory.mktemp("pipeline") / "origin")
    if (ROOT / "data/real").is_dir() and not (origin / "data/real").exists():  # git-tracked input data
        shutil.copytree(ROOT / "data/real", origin / "data/real")
        run(["git", "add", "data/real"], origin)
    run(["dvc", "remote", "add", "--default", "--force", "shared", str(origin.parent / "remote")], origin)
    set_params(origin, **TINY)
    run(["git", "commit", "-q", "-am", "tiny params, shared remote"], origin)
    run(["dvc", "repro"], origin, timeout=900)
    run(["git", "add", "-A"], origin)
    run(["git", "commit", "-q", "-m", "results"], origin)
    run(["dvc", "push", "--run-cache"], origin)
    return origin


def test_checkpoints_are_neither_in_git_nor_a_dvc_output(pushed):
    # Where a killed training resumes from (tests/test_models.py), kept out of the results.
    assert (pushed / "out/checkpoints/ocr/last.pt").is_file()
    assert not run(["git", "ls-files", "out/checkpoints"], pushed).stdout
    assert "checkpoints" not in (pushed / "dvc.lock").read_text()


def test_fresh_clone_pulls_a_finished_pipeline_with_nothing_to_run(pushed, tmp_path):
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(pushed), str(clone)], tmp_path)
    run(["dvc", "pull", "--run-cache"], clone)
    status = run(["dvc", "status", "--quiet"], clone, check=False)
    assert status.returncode == 0, run(["dvc", "status"], clone).stdout
    repro = run(["dvc", "repro"], clone).stdout
    assert "Running stage" not in repro, repro
    run(["git", "diff", "--exit-code", "dvc.lock"], clone)  # what the main job checks
    for rel in MODELS:
        assert filecmp.cmp(clone / rel, pushed / rel, shallow=False), rel


def test_run_cache_restores_training_for_a_stale_lock(pushed, tmp_path):
    """A commit whose dvc.lock does not hold these results (the one before them), on the machine
    that ran them: dvc repro restores both trainings from the run-cache instead of running them."""
    import yaml

    stages = yaml.safe_load((pushed / "dvc.yaml").read_text())["stages"]
    saved = {yaml.safe_load(p.read_text())["cmd"] for p in (pushed / ".dvc/cache/runs").glob("*/*/*")}
    for stage in ("train_localize", "train_ocr"):  # checked first: fails fast, before a whole repro
        assert stages[stage]["cmd"] in saved, f"no run-cache entry for {stage}"
    again = tmp_path / "again"
    shutil.copytree(pushed, again, symlinks=True)
    run(["git", "checkout", "-q", "HEAD~1"], again)
    repro = run(["dvc", "repro"], again, timeout=900).stdout
    for stage in ("train_localize", "train_ocr"):
        assert f"Stage '{stage}' is cached - skipping run" in repro, repro
    for rel in MODELS:
        assert filecmp.cmp(again / rel, pushed / rel, shallow=False), rel


def test_a_registered_version_is_fetched_and_read(pushed, tmp_path):
    """The documented recipe: register with GTO, `dvc artifacts get` the version, read with it."""
    import numpy as np
    from PIL import Image

    run(["gto", "register", "plate-reader", "--version", "v0.1.0"], pushed)
    run(["dvc", "artifacts", "get", str(pushed), "plate-reader", "--rev", "v0.1.0", "-o", "model"], tmp_path)
    for rel in ("plate_reader/localize/model.pt", "plate_reader/ocr/model.pt", "plate_reader/reader.json"):
        assert filecmp.cmp(tmp_path / "model" / rel, pushed / "out/mlem" / rel, shallow=False), rel
    Image.fromarray(np.load(pushed / "data/prepared/stack/test/images.npy")[0]).save(tmp_path / "scene.png")
    answer = json.loads(run(["platereader", "read", "--model", "model/plate_reader", "scene.png"], tmp_path).stdout)
    assert answer["file"] == "scene.png" and isinstance(answer["plates"], list)
