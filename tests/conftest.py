"""Shared fixtures: a throwaway copy of the repository to run real DVC commands in."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's python and dvc


def tool_env() -> dict:
    """Environment where `python` and `dvc` are this venv's, whatever PATH the test started with."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("GIT_AUTHOR_NAME", "test")
    env.setdefault("GIT_AUTHOR_EMAIL", "test@example.com")
    env.setdefault("GIT_COMMITTER_NAME", "test")
    env.setdefault("GIT_COMMITTER_EMAIL", "test@example.com")
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def run(args, cwd, check: bool = True, timeout: float = 300, **env_extra: str) -> subprocess.CompletedProcess:
    """Run a command with tool_env() plus env_extra; with check, a failure shows its output."""
    result = subprocess.run(args, cwd=cwd, env={**tool_env(), **env_extra}, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def stop(process: subprocess.Popen) -> None:
    """End a server the test started: politely, then by force if it does not go within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def copy_repo(dest: Path) -> Path:
    """Copy the project's source files (tracked and new, not ignored) into a fresh git repo."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file() and not rel.startswith(("data/prepared/", "out/")):  # sources, not results
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    run(["git", "init", "-q", "-b", "main"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-q", "-m", "copy"], dest)
    return dest


@pytest.fixture
def repo_copy(tmp_path) -> Path:
    return copy_repo(tmp_path / "repo")


def set_params(repo: Path, **values) -> None:
    """Rewrite params.py in `repo` as `dvc exp run -S` does, with DVC's own writer:
    set_params(repo, **{"PrepareOCRParams.MAX_IMAGES": 64, "PrepareOCRParams.FORMATS.us": 2})."""
    from dvc.utils.serialize import load_py, modify_py

    def entry(tree, key):
        for part in key:
            tree = tree[part]
        return tree

    path = repo / "params.py"
    with modify_py(path) as data:
        for key, value in values.items():
            *table, name = key.split(".")
            assert name in entry(data, table), f"params.py has no {key}"
            entry(data, table)[name] = value
    written = load_py(path)
    for key, value in values.items():
        assert entry(written, key.split(".")) == value, f"DVC did not set params.py:{key}"
