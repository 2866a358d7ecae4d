"""Offline validation of the CI / runner files, with the linters from .venv-tools (`make tools`).

- .github/workflows/*.yml against GitHub's workflow JSON schema (check-jsonschema, vendored);
- docker-compose.yml against the Compose specification (check-jsonschema, vendored);
- kubernetes/cml-runner.yml against the Kubernetes OpenAPI schemas (kubernetes-validate, bundled);
- docker/Dockerfile with hadolint.

Each validator is also shown a broken file, so a validator that accepts anything fails the test.
Then a few checks of what the files must say (labels, secrets, GPU, the CML report step).
"""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

TOOLS = ROOT / ".venv-tools" / "bin"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
MANIFEST = ROOT / "kubernetes" / "cml-runner.yml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"


def tool(name: str) -> Path:
    path = TOOLS / name
    if not path.is_file():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: run `make tools` (or `make test`) first")
    return path


def check(args: list) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text())


def triggers(workflow: dict) -> dict:
    # YAML 1.1 (PyYAML) reads the key `on` as the boolean True.
    on = workflow.get("on", workflow.get(True))
    return {name: {} for name in on} if isinstance(on, list) else dict(on)


# --------------------------------------------------------------------------- schemas and linters


def test_workflows_match_github_schema():
    assert {p.name for p in WORKFLOWS} >= {"mlops.yml", "mlops-self-hosted.yml"}
    result = check([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *WORKFLOWS])
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_schema_check_rejects_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("name: broken\non: pull_request\njobs:\n  x:\n    steps: oops\n")
    result = check([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", broken])
    assert result.returncode != 0


def test_compose_file_matches_compose_spec():
    result = check([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", COMPOSE])
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_manifest_is_valid():
    result = check([tool("kubernetes-validate"), "--strict", MANIFEST])
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_validate_rejects_a_broken_manifest(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(MANIFEST.read_text().replace("replicas: 1", "replicas: one"))
    result = check([tool("kubernetes-validate"), "--strict", broken])
    assert result.returncode != 0


def test_dockerfile_passes_hadolint():
    result = check([tool("hadolint"), DOCKERFILE])
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_a_sloppy_dockerfile(tmp_path):
    sloppy = tmp_path / "Dockerfile"
    sloppy.write_text("FROM ubuntu\nRUN apt-get update\nRUN apt-get install -y curl\n")
    result = check([tool("hadolint"), sloppy])
    assert result.returncode != 0


# --------------------------------------------------------------------------- what the files say


def test_pull_request_workflow_reports_with_cml():
    workflow = load_yaml(ROOT / ".github" / "workflows" / "mlops.yml")
    assert {"pull_request", "push"} <= triggers(workflow).keys()
    text = (ROOT / ".github" / "workflows" / "mlops.yml").read_text()
    assert "fetch-depth: 0" in text
    assert 'python-version: "3.11"' in text
    assert "make setup" in text
    assert "dvc pull" in text and "dvc exp run" in text
    for override in ("MULTIPROCESSING=False", "TrainLocalizeParams.EPOCHS=1", "TrainOCRParams.EPOCHS=1",
                     "PrepareStackParams.MAX_IMAGES=256"):
        assert override in text
    assert "python -m platereader.report --base origin/main" in text
    assert "iterative/setup-cml" in text
    assert "cml comment create --publish report.md" in text
    assert "dvc repro" in text and "dvc push" in text


def test_self_hosted_workflow_targets_the_gpu_runner():
    workflow = load_yaml(ROOT / ".github" / "workflows" / "mlops-self-hosted.yml")
    (job,) = workflow["jobs"].values()
    assert set(job["runs-on"]) == {"self-hosted", "cml-runner-gpu"}
    commands = "\n".join(step.get("run", "") for step in job["steps"])
    assert "dvc repro" in commands and "dvc push" in commands
    assert "cml comment create" in commands


def test_runner_deployment_uses_a_gpu_and_a_secret_token():
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    workloads = [d for d in docs if d["kind"] in {"Deployment", "Pod"}]
    assert len(workloads) == 1
    workload = workloads[0]
    pod = workload["spec"]["template"]["spec"] if workload["kind"] == "Deployment" else workload["spec"]
    assert pod["restartPolicy"] in {"Always", "OnFailure"}
    (container,) = pod["containers"]
    assert "cml" in container["image"] and "gpu" in container["image"]
    command = " ".join(container.get("command", []) + container.get("args", []))
    assert "cml runner launch" in command
    assert "--labels=cml-runner-gpu" in command and "--idle-timeout=" in command
    token = next(e for e in container["env"] if e["name"] == "REPO_TOKEN")
    assert "value" not in token and token["valueFrom"]["secretKeyRef"]["name"]
    resources = container["resources"]
    assert resources["limits"]["nvidia.com/gpu"] >= 1
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= resources[kind].keys()


def test_dockerfile_launches_the_runner_from_a_cml_gpu_image():
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM iterativeai/cml:\S*gpu", text, re.M)
    assert "pyproject.toml" in text  # the project's dependencies are installed
    assert re.search(r'^ENTRYPOINT \[.*cml runner launch', text, re.M)
    assert "REPO_TOKEN=" not in text  # the token comes from the environment at run time


def test_compose_reserves_a_gpu_and_reads_env_file():
    service = load_yaml(COMPOSE)["services"]["cml-runner"]
    assert service["build"]["dockerfile"] == "docker/Dockerfile"
    assert service["env_file"] == ".env"
    (device,) = service["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert ignored.returncode == 0, ".env must be git-ignored"


def test_no_credentials_committed():
    pattern = re.compile(r"(ghp_[A-Za-z0-9]{20,}|github_pat_\w{20,}|AKIA[0-9A-Z]{16}|"
                         r"aws_secret_access_key\s*=\s*\S+|secret_access_key\s*=\s*\S+)", re.I)
    for path in [*WORKFLOWS, MANIFEST, DOCKERFILE, COMPOSE, ROOT / ".dvc" / "config"]:
        assert not pattern.search(path.read_text()), path
