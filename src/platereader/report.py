"""Build the experiment report that CML posts on a pull request.

    platereader report --base main                    # preview locally: writes report.md + report/
    platereader report --base origin/main --out report.md   # what the workflow runs (full params)

The report compares the workspace with a base Git revision using DVC itself:
`dvc params diff`, `dvc metrics diff` and `dvc plots diff` (every Vega-Lite plot DVC knows
about, rendered offline to PNG with vl-convert), then shows the first few stack prediction
images. Images are written next to the report (report.md -> report/) and linked relatively, so
`cml comment update --publish report.md` uploads them and a local Markdown viewer shows them.

The first line says what was compared: full or small params on each side, which commits, which
runner. Small params are uncommitted overrides with fewer images or epochs than committed (the
quick experiment, `make -s print-quick`); an experiment commit (`dvc exp run`) carries them against
its baseline. A small run is diffed only with a small run made with the same overrides, never with
full results: otherwise the report shows the run's own metrics and plots and says why.

Anything missing (no base revision, no plots or images yet) becomes a plain note in the report.
A --base that Git does not know is a user error: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from platereader.errors import UserError, run_main

DEFAULT_BASE = "main"
STACK_IMAGES = Path("out/evaluations/stack/plots/images")
DEFAULT_MAX_IMAGES = 4
# Overriding one of these downwards makes a run "small" (quick experiment, smoke test).
SIZE_PARAMS = ("MAX_IMAGES", "EPOCHS")


# --------------------------------------------------------------------------- helpers


def dvc_executable() -> str:
    """The dvc installed with this interpreter (the project's venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "dvc"
    if beside.is_file():
        return str(beside)
    found = shutil.which("dvc")
    if found:
        return found
    raise UserError("dvc not found next to this Python or on PATH; run `make setup` first")


def run_dvc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [dvc_executable(), *args], capture_output=True, text=True, check=False
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def git_revision_exists(rev: str) -> bool:
    result = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0


def check_repository() -> None:
    inside = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"], capture_output=True, text=True, check=False
    )
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        raise UserError("not inside a Git repository; run this from the project root")
    if not Path(".dvc").is_dir():
        raise UserError("no .dvc folder here; run this from the project root (dvc init was done there)")


def is_empty_table(markdown: str) -> bool:
    """DVC prints just a header (two lines) when there is nothing to compare."""
    rows = [line for line in markdown.strip().splitlines() if line.startswith("|")]
    return len(rows) <= 2


def natural_key(path: Path) -> list[object]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "plot"


def git_output(*args: str) -> str:
    result = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


# --------------------------------------------------------------------------- what is compared


@dataclass
class Side:
    """One side of the comparison: a name for the first line and its uncommitted params."""

    name: str
    overrides: dict[str, tuple[object, object]]  # param -> (committed value, value used)

    @property
    def small(self) -> bool:
        return any(key.endswith(SIZE_PARAMS) and isinstance(new, (int, float))
                   and isinstance(old, (int, float)) and new < old
                   for key, (old, new) in self.overrides.items())

    @property
    def kind(self) -> str:
        return "small params" if self.small else "full params"

    def used(self) -> dict[str, object]:
        return {key: new for key, (_, new) in self.overrides.items()}

    def comparable(self, other: Side) -> bool:
        """Full with full; small only with small made with the same overrides."""
        if self.small or other.small:
            return self.small == other.small and self.used() == other.used()
        return True


def param_changes(*revs: str) -> dict[str, tuple[object, object]]:
    """{param: (old, new)} between revs[0] and revs[1] (or the workspace), from `dvc params diff`."""
    result = run_dvc("params", "diff", *revs, "--json")
    try:
        diff = json.loads(result.stdout or "{}") if result.returncode == 0 else {}
    except json.JSONDecodeError:
        diff = {}
    return {name: (change.get("old"), change.get("new"))
            for changes in diff.values() for name, change in changes.items()}


def experiment_ref(name: str) -> str | None:
    """The Git ref of the experiment called `name` (refs/exps/<baseline>/<name>), else None."""
    refs = git_output("for-each-ref", "--format=%(refname)", "refs/exps/").splitlines()
    return next((ref for ref in refs if ref.count("/") == 4 and ref.rsplit("/", 1)[-1] == name), None)


def experiment_name(rev: str) -> str | None:
    """The name of the `dvc exp run` experiment whose commit `rev` is, else None."""
    refs = git_output("for-each-ref", "--points-at", rev, "--format=%(refname)", "refs/exps/")
    return refs.splitlines()[0].rsplit("/", 1)[-1] if refs else None


def runner() -> str:
    """Where this report's results were computed: the CI runner, or this machine."""
    if os.environ.get("GITHUB_ACTIONS") == "true":
        kind = {"github-hosted": "GitHub-hosted runner", "self-hosted": "self-hosted runner"}.get(
            os.environ.get("RUNNER_ENVIRONMENT", ""), "runner")
        return f"{kind} `{os.environ.get('RUNNER_NAME', '?')}`"
    return f"local machine `{platform.node()}`"


def workspace_side() -> Side:
    head = git_output("rev-parse", "--short", "HEAD")
    if not head:
        return Side("the workspace", {})
    return Side(f"`{head}`", param_changes("HEAD"))


def base_side(base: str) -> Side:
    commit = experiment_ref(base) if not git_revision_exists(base) else base
    sha = git_output("rev-parse", "--short", f"{commit}^{{commit}}")
    name = experiment_name(commit)
    if name:  # its params against its baseline, the commit it was run on
        parent = git_output("rev-parse", "--short", f"{commit}^")
        return Side(f"experiment `{name}` on `{parent}`", param_changes(f"{commit}^", commit))
    return Side(f"`{base}`" + (f" (`{sha}`)" if sha and sha != base else ""), {})


def title(workspace: Side, base: Side | None) -> str:
    where = f"on {runner()}"
    if base is None:
        return f"# Experiment report: {workspace.kind} at {workspace.name}, {where}"
    if workspace.comparable(base):
        return f"# Experiment report: {workspace.kind} at {workspace.name} vs {base.kind} at {base.name}, {where}"
    return (f"# Experiment report: {workspace.kind} at {workspace.name}, not compared with {base.kind} "
            f"at {base.name}, {where}")


def mismatch_note(workspace: Side, base: Side) -> str:
    def used(side: Side) -> str:
        values = ", ".join(f"`{key}={value}`" for key, value in sorted(side.used().items()))
        return f"{side.kind} ({values})" if values else side.kind

    return (f"Not compared: this run used {used(workspace)}, the base {used(base)}. Their metrics and "
            "plots would not compare like with like, so this report shows this run's own. Compare a "
            "small run with a small run of the base made with the same overrides (the workflow's "
            "smoke mode does), or run the full pipeline.")


# --------------------------------------------------------------------------- sections


def params_section(base: str | None) -> list[str]:
    lines = ["## Parameters", ""]
    if base is None:
        return lines + ["_No base revision to compare parameters with._", ""]
    result = run_dvc("params", "diff", base, "--md")
    if result.returncode != 0:
        return lines + [f"_Could not compare parameters: {_last_line(result.stderr)}_", ""]
    if is_empty_table(result.stdout):
        return lines + [f"_No parameter changes against `{base}`._", ""]
    return lines + [f"Changed parameters against `{base}`:", "", result.stdout.strip(), ""]


def metrics_section(base: str | None, alone: str = "no base revision to compare with") -> list[str]:
    lines = ["## Metrics", ""]
    if base is None:
        result = run_dvc("metrics", "show", "--md")
        intro = f"Current metrics ({alone}):"
    else:
        result = run_dvc("metrics", "diff", base, "--all", "--md")
        intro = f"Metrics against `{base}`:"
    if result.returncode != 0:
        return lines + [f"_Could not read metrics: {_last_line(result.stderr)}_", ""]
    if is_empty_table(result.stdout):
        return lines + ["_No metrics yet: run the pipeline (`dvc exp run`) or `dvc pull`._", ""]
    return lines + [intro, "", result.stdout.strip(), ""]


def collect_vega_plots(base: str | None, scratch: Path) -> tuple[dict[str, dict], str | None]:
    """Every Vega-Lite plot DVC reports, as {plot id: filled spec}; plus an error note."""
    args = ["plots", "show"] if base is None else ["plots", "diff", base]
    # -o keeps the image plots DVC copies out of the way (into a scratch folder).
    result = run_dvc(*args, "--json", "-o", str(scratch))
    if result.returncode != 0:
        return {}, _last_line(result.stderr)
    try:
        payload = json.loads(result.stdout or "{}")
    except json.JSONDecodeError:
        return {}, "dvc printed something that is not JSON"
    specs: dict[str, dict] = {}
    for plot_id, entries in (payload.get("data") or {}).items():
        for entry in entries:
            if entry.get("type") != "vega":
                continue
            content = entry.get("content") or {}
            values = (content.get("data") or {}).get("values")
            if isinstance(values, list) and values:
                specs[plot_id] = content
    return specs, None


def render_png(spec: dict, path: Path) -> None:
    import vl_convert

    path.write_bytes(vl_convert.vegalite_to_png(spec, scale=2))


def plots_section(base: str | None, assets: Path, report_dir: Path) -> list[str]:
    lines = ["## Plots", ""]
    with tempfile.TemporaryDirectory(prefix="dvc-plots-") as scratch:
        specs, error = collect_vega_plots(base, Path(scratch))
    if error:
        return lines + [f"_Could not read plots: {error}_", ""]
    if not specs:
        return lines + ["_No plots yet: run the pipeline (`dvc exp run`) or `dvc pull`._", ""]
    folder = assets / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    for plot_id in sorted(specs):
        target = folder / f"{slug(plot_id)}.png"
        try:
            render_png(specs[plot_id], target)
        except Exception as exc:  # a broken template must not sink the whole report
            lines += [f"_Could not render plot `{plot_id}`: {exc}_", ""]
            continue
        lines += [f"### {plot_id}", "", f"![{plot_id}]({target.relative_to(report_dir).as_posix()})", ""]
    return lines


def images_section(assets: Path, report_dir: Path, max_images: int) -> list[str]:
    lines = ["## Stack predictions", ""]
    found = sorted(STACK_IMAGES.glob("*.png"), key=natural_key) if STACK_IMAGES.is_dir() else []
    if not found:
        return lines + [f"_No prediction images in `{STACK_IMAGES.as_posix()}` yet._", ""]
    folder = assets / "images"
    folder.mkdir(parents=True, exist_ok=True)
    for source in found[:max_images]:
        target = folder / source.name
        shutil.copyfile(source, target)
        lines.append(f"![{source.stem}]({target.relative_to(report_dir).as_posix()})")
    lines.append("")
    if len(found) > max_images:
        lines += [f"_Showing {max_images} of {len(found)} images._", ""]
    return lines


# --------------------------------------------------------------------------- main


def build_report(base: str | None, out: Path, max_images: int, base_note: str | None = None) -> Path:
    out = out.resolve()
    report_dir = out.parent
    assets = out.with_suffix("")  # report.md -> report/
    if assets == out:
        raise UserError(f"--out {out.name} needs a file extension such as .md")
    # Only our own PNGs are removed, so a stale plot never survives a rebuild.
    for sub in ("plots", "images"):
        for old in (assets / sub).glob("*.png"):
            old.unlink()
    report_dir.mkdir(parents=True, exist_ok=True)

    workspace = workspace_side()
    other = base_side(base) if base else None
    compared = base if other is None or workspace.comparable(other) else None
    lines = [title(workspace, other), ""]
    if base_note:
        lines += [f"_{base_note}_", ""]
    if other is not None and compared is None:
        lines += [f"_{mismatch_note(workspace, other)}_", ""]
    lines += params_section(base)
    lines += metrics_section(compared, "not compared, see above" if base else "no base revision to compare with")
    lines += plots_section(compared, assets, report_dir)
    lines += images_section(assets, report_dir, max_images)
    out.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="platereader report",
        description="Write a Markdown report (params, metrics, plots, predictions) against a base revision.",
    )
    parser.add_argument(
        "--base",
        default=None,
        help=f"Git revision or experiment name to compare with (default: {DEFAULT_BASE}; in CI: origin/main)",
    )
    parser.add_argument("--out", type=Path, default=Path("report.md"), help="report file (default: report.md)")
    parser.add_argument(
        "--max-images",
        type=int,
        default=DEFAULT_MAX_IMAGES,
        help=f"stack prediction images to include (default: {DEFAULT_MAX_IMAGES})",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.max_images < 0:
        raise UserError("--max-images must be 0 or more")
    check_repository()

    base: str | None = args.base
    note = None
    if base is None:
        if git_revision_exists(DEFAULT_BASE):
            base = DEFAULT_BASE
        else:
            note = f"No `{DEFAULT_BASE}` revision here, so nothing is compared: current values only."
    elif not git_revision_exists(base) and not experiment_ref(base):
        raise UserError(
            f"unknown Git revision {base!r} for --base; use a branch, tag, commit or experiment name "
            "(in a fresh clone: git fetch origin main, then --base origin/main)"
        )
    out = build_report(base, args.out, args.max_images, note)
    print(f"wrote {out}")


if __name__ == "__main__":
    run_main(main)
