"""Offline validation of the CI / runner files, with the linters from .venv-tools (`make tools`).

- .github/workflows/*.yml against GitHub's workflow JSON schema (check-jsonschema, vendored);
- docker-compose.yml against the Compose specification (check-jsonschema, vendored);
- kubernetes/cml-runner.yml against the Kubernetes OpenAPI schemas (kubernetes-validate, bundled);
- docker/Dockerfile with hadolint;
- the workflows with zizmor (GitHub Actions security audit, offline): no high-severity finding.

Each validator is also shown a broken file, so a validator that accepts anything fails the test.
Then what the files must say: least-privilege workflows (job permissions, secrets on steps only,
actions pinned to commits, no persisted checkout credentials), a PR report that compares like with
like, GPU results that come home, an ephemeral non-root runner, .env winning in Compose.
"""

import re
import shutil
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
MLOPS = ROOT / ".github" / "workflows" / "mlops.yml"
GPU = ROOT / ".github" / "workflows" / "mlops-self-hosted.yml"


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


def test_workflows_have_no_high_severity_zizmor_finding():
    result = check([tool("zizmor"), "--offline", "--min-severity", "high", *WORKFLOWS])
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_rejects_an_unsafe_workflow(tmp_path):
    unsafe = tmp_path / "unsafe.yml"
    unsafe.write_text(
        "name: unsafe\non: pull_request_target\npermissions: write-all\njobs:\n  x:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - uses: actions/checkout@v4\n        with:\n          ref: ${{ github.event.pull_request.head.sha }}\n"
        "      - run: echo \"${{ github.event.pull_request.title }}\"\n")
    result = check([tool("zizmor"), "--offline", "--min-severity", "high", unsafe])
    assert result.returncode != 0 and "high" in result.stdout, result.stdout + result.stderr


def test_hadolint_rejects_a_sloppy_dockerfile(tmp_path):
    sloppy = tmp_path / "Dockerfile"
    sloppy.write_text("FROM ubuntu\nRUN apt-get update\nRUN apt-get install -y curl\n")
    result = check([tool("hadolint"), sloppy])
    assert result.returncode != 0


# --------------------------------------------------------------------------- workflows: least privilege


def steps(workflow: dict):
    for name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield name, job, step


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_grants_least_privilege(path):
    workflow = load_yaml(path)
    text = path.read_text()
    assert workflow.get("permissions") == {}, "no default token permissions for the whole workflow"
    assert "secrets." not in yaml.safe_dump(workflow.get("env", {})), "secrets in workflow-level env"
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"job {name} must say which permissions it needs"
        assert "secrets." not in yaml.safe_dump(job.get("env", {})), f"secrets in job {name}'s env"
    for name, job, step in steps(workflow):
        assert "secrets." not in step.get("run", ""), f"{name}: a secret in a run script"
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", step["uses"]), f"{step['uses']} is not pinned to a commit"
            assert "secrets." not in yaml.safe_dump(step.get("with", {})), f"a secret passed to {step['uses']}"
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False, f"{name}: checkout keeps its credentials"
    assert re.search(r"^\s+- uses: \S+@[0-9a-f]{40} # v\d", text, re.M), "pinned actions say their version"


def test_pull_request_job_gets_read_only_remote_credentials():
    workflow = load_yaml(MLOPS)
    report = workflow["jobs"]["report"]
    assert report["permissions"] == {"contents": "read"}
    used = {m for step in report["steps"] for m in re.findall(r"secrets\.(\w+)", yaml.safe_dump(step.get("env", {})))}
    assert used and all(name.startswith("DVC_READONLY_") for name in used), used
    assert workflow["jobs"]["reproduce"]["permissions"] == {"contents": "read"}


# --------------------------------------------------------------------------- the pull request report


def test_pull_request_report_compares_like_with_like():
    workflow = load_yaml(MLOPS)
    assert {"pull_request", "push", "workflow_dispatch"} <= triggers(workflow).keys()
    report = workflow["jobs"]["report"]
    commands = "\n".join(step.get("run", "") for step in report["steps"])
    assert report["steps"][0]["with"]["fetch-depth"] == 0  # origin/main is there to diff with
    assert "make setup" in commands
    # Full params by default: pull what the remote has, reproduce, compare with main's results.
    assert "dvc pull --run-cache" in commands and "dvc repro" in [line.strip() for line in commands.splitlines()]
    assert "base=origin/main" in commands
    # Small params on both sides, from the Makefile's one definition; never copied here.
    assert "make -s print-quick" in commands
    assert "dvc exp run --temp --name main-small" in commands and "base=main-small" in commands
    assert "MAX_IMAGES" not in MLOPS.read_text() and "EPOCHS=" not in MLOPS.read_text()
    assert 'platereader report --base "$BASE" --out report.md' in commands
    setup = next(step for step in report["steps"] if step.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"]["python-version"] == "3.11" and setup["with"]["cache"] == "pip"
    assert workflow["env"]["PIP_EXTRA_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"  # CPU torch


def test_one_comment_per_pull_request_without_running_its_code():
    workflow = load_yaml(MLOPS)
    comment = workflow["jobs"]["comment"]
    assert comment["needs"] == "report"
    # Fork pull requests (read-only token) skip it cleanly; the report job keeps the run summary.
    assert "github.event.pull_request.head.repo.full_name == github.repository" in comment["if"]
    assert comment["permissions"] == {"contents": "read", "pull-requests": "write"}
    commands = "\n".join(step.get("run", "") for step in comment["steps"])
    for pr_code in ("make ", "dvc ", "python", "platereader", "pip "):
        assert pr_code not in commands, pr_code
    assert 'comment update --target="pr/$PR_NUMBER" --watermark-title="' in commands
    assert "--publish=false" in commands and "--publish-url" in commands  # private repositories
    assert "GITHUB_STEP_SUMMARY" in MLOPS.read_text()
    # A push cancels the pull request's previous run, never a run on main.
    assert workflow["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"


def test_main_job_fails_when_dvc_repro_changes_the_committed_lock():
    job = load_yaml(MLOPS)["jobs"]["reproduce"]
    runs = [step.get("run", "") for step in job["steps"]]
    order = [next(i for i, r in enumerate(runs) if key in r) for key in ("dvc repro", "dvc push", "dvc.lock")]
    assert order == sorted(order)
    check_step = runs[order[2]]
    assert "git diff --quiet -- dvc.lock" in check_step and "exit 1" in check_step


# --------------------------------------------------------------------------- the GPU workflow


def test_gpu_workflow_runs_only_for_the_gpu_label_and_brings_results_home():
    workflow = load_yaml(GPU)
    assert triggers(workflow)["pull_request"] == {"types": ["labeled"]}
    (job,) = workflow["jobs"].values()
    assert set(job["runs-on"]) == {"self-hosted", "cml-runner-gpu"}
    assert "github.event.label.name == 'gpu'" in job["if"]
    assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]
    commands = "\n".join(step.get("run", "") for step in job["steps"])
    assert 'dvc exp run --name "$EXP"' in commands
    assert "dvc exp push --run-cache" in commands
    assert "dvc exp pull origin $EXP" in commands and "dvc exp apply $EXP" in commands  # in the comment
    assert 'cml comment update --target="pr/$PR_NUMBER" --watermark-title="' in commands
    assert "python3.11 -m venv --system-site-packages .venv" in commands  # the image's dependencies
    assert job["permissions"] == {"contents": "write", "pull-requests": "write"}


# --------------------------------------------------------------------------- the runner


def runner_pod() -> tuple[dict, dict]:
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    (workload,) = [d for d in docs if d["kind"] in {"Deployment", "Pod"}]
    pod = workload["spec"]["template"]["spec"] if workload["kind"] == "Deployment" else workload["spec"]
    (container,) = pod["containers"]
    return pod, container


def test_runner_deployment_uses_a_gpu_and_a_secret_token():
    pod, container = runner_pod()
    assert pod["restartPolicy"] == "Always"
    env = {e["name"]: e for e in container["env"]}
    assert env["RUNNER_LABELS"]["value"] == "cml-runner-gpu"
    assert "value" not in env["REPO_TOKEN"] and env["REPO_TOKEN"]["valueFrom"]["secretKeyRef"]["name"]
    assert "command" not in container and "args" not in container  # the image's entrypoint (--single)
    resources = container["resources"]
    assert resources["limits"]["nvidia.com/gpu"] >= 1
    for kind in ("requests", "limits"):
        assert {"cpu", "memory", "ephemeral-storage"} <= resources[kind].keys()
    assert not [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d and d["kind"] == "PersistentVolumeClaim"]


def test_runner_pod_is_locked_down():
    pod, container = runner_pod()
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False and security["privileged"] is False
    assert security["capabilities"]["drop"] == ["ALL"] and "add" not in security["capabilities"]
    assert security["readOnlyRootFilesystem"] is True
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    # The workspace is an emptyDir, limited and counted in the ephemeral-storage request.
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/home/runner"]] and volumes[mounts["/home/runner"]]["emptyDir"]["sizeLimit"]
    assert all("emptyDir" in v for v in volumes.values())
    # Torch threads capped at the CPU limit.
    env = {e["name"]: e for e in container["env"]}
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        assert env[name]["valueFrom"]["resourceFieldRef"]["resource"] == "limits.cpu"
    assert str(pod["securityContext"]["runAsUser"]) in DOCKERFILE.read_text()


def test_dockerfile_runs_one_job_as_a_non_root_user():
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM iterativeai/cml:\S*gpu", text, re.M)
    assert "pyproject.toml" in text  # the project's dependencies are baked in
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1] not in {"root", "0"}
    entrypoint = re.search(r"^ENTRYPOINT \[.*", text, re.M).group(0)
    assert "cml runner launch" in entrypoint and "--single" in entrypoint
    assert 'find \\"$HOME\\" -mindepth 1 -delete' in entrypoint  # each start on an empty home
    assert "REPO_TOKEN=" not in text  # the token comes from the environment at run time


def test_dockerignore_sends_only_what_the_dockerfile_copies():
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*"  # .venv, the DVC cache, data/, out/, .git, .env: all left out
    copied = {src for src in re.findall(r"^COPY (?!--from)(\S+)", DOCKERFILE.read_text(), re.M)}
    assert {p[1:] for p in patterns[1:]} == copied and all(p.startswith("!") for p in patterns[1:])


# --------------------------------------------------------------------------- Compose and .env


def compose_environment(env_file: dict[str, str]) -> dict[str, str]:
    """The container's environment as Compose builds it: env_file first, then `environment:`,
    whose ${NAME:-default} / ${NAME} values are interpolated from .env (the shell is empty here)."""
    service = load_yaml(COMPOSE)["services"]["cml-runner"]

    def interpolate(value) -> str:
        def one(match):
            name, default = match.group(1), match.group(3)
            return env_file.get(name) or (default if default is not None else "")
        return re.sub(r"\$\{(\w+)(:-([^}]*))?\}", one, str(value))

    return {**env_file, **{key: interpolate(value) for key, value in service.get("environment", {}).items()}}


def test_compose_reserves_a_gpu_and_reads_env_file():
    service = load_yaml(COMPOSE)["services"]["cml-runner"]
    assert service["build"]["dockerfile"] == "docker/Dockerfile"
    assert service["env_file"] == ".env"
    (device,) = service["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert "no-new-privileges:true" in service["security_opt"] and service["cap_drop"] == ["ALL"]
    assert service["read_only"] is True
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert ignored.returncode == 0, ".env must be git-ignored"


def test_env_file_values_win_over_compose_defaults():
    service = load_yaml(COMPOSE)["services"]["cml-runner"]
    for key, value in service["environment"].items():
        assert re.fullmatch(r"\$\{\w+(:-[^}]*)?\}", str(value)), f"{key}: a literal would override .env"
    custom = {"RUNNER_REPO": "https://github.com/o/r", "REPO_TOKEN": "t", "RUNNER_LABELS": "mine",
              "RUNNER_IDLE_TIMEOUT": "600", "RUNNER_CPUS": "4"}
    env = compose_environment(custom)
    assert env["RUNNER_LABELS"] == "mine" and env["RUNNER_IDLE_TIMEOUT"] == "600" and env["OMP_NUM_THREADS"] == "4"
    defaults = compose_environment({"RUNNER_REPO": "https://github.com/o/r", "REPO_TOKEN": "t"})
    assert defaults["RUNNER_LABELS"] == "cml-runner-gpu" and defaults["RUNNER_IDLE_TIMEOUT"] == "-1"
    # Every optional setting .env.example documents is one Compose reads.
    example = (ROOT / ".env.example").read_text()
    for name in re.findall(r"^#? ?(RUNNER_\w+)=", example, re.M):
        assert f"${{{name}" in COMPOSE.read_text() or name == "RUNNER_REPO", name


@pytest.mark.skipif(subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0
                    if shutil.which("docker") else True, reason="no `docker compose` here")
def test_docker_compose_config_shows_env_values(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(ROOT / "docker", project / "docker")
    shutil.copy(COMPOSE, project / "docker-compose.yml")
    (project / ".env").write_text("RUNNER_REPO=https://github.com/o/r\nREPO_TOKEN=t\nRUNNER_LABELS=mine\n")
    result = subprocess.run(["docker", "compose", "config", "--format", "json"], cwd=project,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    import json
    env = json.loads(result.stdout)["services"]["cml-runner"]["environment"]
    assert env["RUNNER_LABELS"] == "mine" and env["RUNNER_IDLE_TIMEOUT"] == "-1"


def test_no_credentials_committed():
    pattern = re.compile(r"(ghp_[A-Za-z0-9]{20,}|github_pat_\w{20,}|AKIA[0-9A-Z]{16}|"
                         r"aws_secret_access_key\s*=\s*\S+|secret_access_key\s*=\s*\S+)", re.I)
    for path in [*WORKFLOWS, MANIFEST, DOCKERFILE, COMPOSE, ROOT / ".dvc" / "config", ROOT / ".env.example"]:
        assert not pattern.search(path.read_text()), path
    assert re.search(r"^REPO_TOKEN=$", (ROOT / ".env.example").read_text(), re.M)
