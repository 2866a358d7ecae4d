"""The model registry, the DVC way: dvc.yaml's `artifacts:` section, GTO tags for versions and
stages, `dvc artifacts get` to fetch a registered version (docs/collaboration.md, Model registry).

In a throwaway Git + DVC repository with the project's own `artifacts:` section and a stage that
writes a stand-in package to its path. (tests/test_remotes.py fetches and reads with a real one.)
"""

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, run

NAME = "plate-reader"

STAGE = textwrap.dedent(
    """\
    stages:
      save_stack:
        cmd: python save.py
        deps: [save.py, version.txt]
        outs: [out/mlem]
    """
)
# A stand-in for the save_stack stage: the package's layout, its content from version.txt.
SAVE = textwrap.dedent(
    """\
    import os

    os.makedirs("out/mlem/plate_reader", exist_ok=True)
    open("out/mlem/plate_reader.mlem", "w").write("object_type: model\\n")
    open("out/mlem/plate_reader/reader.json", "w").write(open("version.txt").read())
    """
)


def commit_version(repo: Path, text: str) -> None:
    (repo / "version.txt").write_text(text)
    run(["dvc", "repro", "-q"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", f"reader {text}"], repo)
    run(["dvc", "push", "-q"], repo)


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Path:
    """Two versions of the package: v1.0.0 in stage prod, v1.1.0 in stage staging."""
    base = tmp_path_factory.mktemp("registry")
    repo = base / "repo"
    repo.mkdir()
    run(["git", "init", "-q", "-b", "main"], repo)
    run(["dvc", "init", "-q"], repo)
    run(["dvc", "remote", "add", "-d", "storage", str(base / "remote")], repo)
    artifacts = yaml.safe_load((ROOT / "dvc.yaml").read_text())["artifacts"]
    (repo / "dvc.yaml").write_text(STAGE + yaml.safe_dump({"artifacts": artifacts}, sort_keys=False))
    (repo / "save.py").write_text(SAVE)
    commit_version(repo, "first")
    run(["gto", "register", NAME, "--version", "v1.0.0"], repo)
    run(["gto", "assign", NAME, "--version", "v1.0.0", "--stage", "prod"], repo)
    commit_version(repo, "second")
    run(["gto", "register", NAME, "--bump-minor"], repo)
    run(["gto", "assign", NAME, "--version", "v1.1.0", "--stage", "staging"], repo)
    return repo


def test_project_registers_the_packaged_reader():
    artifact = yaml.safe_load((ROOT / "dvc.yaml").read_text())["artifacts"][NAME]
    assert artifact["type"] == "model"
    outs = [next(iter(o)) if isinstance(o, dict) else o
            for stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].values()
            for o in stage.get("outs", [])]
    assert artifact["path"] in outs, "the artifact must be a pipeline output, so DVC can fetch it"


def test_gto_tags_versions_and_stages(registry):
    tags = run(["git", "tag"], registry).stdout.split()
    assert {f"{NAME}@v1.0.0", f"{NAME}@v1.1.0", f"{NAME}#prod#1", f"{NAME}#staging#2"} <= set(tags)
    shown = json.loads(run(["gto", "show", NAME, "--json"], registry).stdout)
    versions = {v["version"]: v for v in shown}
    assert {"v1.0.0", "v1.1.0"} <= versions.keys()
    row = next(line for line in run(["gto", "show"], registry).stdout.splitlines() if NAME in line)
    assert [cell.strip() for cell in row.strip("│| ").split("│")] == [NAME, "v1.1.0", "v1.0.0", "v1.1.0"]
    assert set(run(["gto", "stages"], registry).stdout.split()) == {"prod", "staging"}


@pytest.mark.parametrize("how, expected", [(["--rev", "v1.0.0"], "first"), (["--stage", "prod"], "first"),
                                           (["--stage", "staging"], "second"), ([], "second")])
def test_dvc_artifacts_get_fetches_a_registered_version(registry, tmp_path, how, expected):
    run(["dvc", "artifacts", "get", str(registry), NAME, *how, "-o", "model"], tmp_path)
    assert (tmp_path / "model/plate_reader/reader.json").read_text() == expected
    assert (tmp_path / "model/plate_reader.mlem").is_file()
