"""Queue a grid of params.py values as DVC experiments, run them with DVC's queue, show the best.

    python scripts/sweep.py -S TrainOCRParams.LEARNING_RATE=1e-3,3e-3 -S TrainOCRParams.WIDTH=16,32
                            [--name sweep-ocr] [--target STAGE] [--run [-j 2]] [--wait]
                            [--metric final_val_loss [--maximize]] [--apply-best] [--dry-run]

Each -S is one params.py entry and its values, comma-separated (a list value in brackets stays
whole: -S "GeneratorParams.PLATE_WIDTH_RANGE=[0.2,0.95],[0.35,0.95]"); the grid is every
combination. Every combination becomes `dvc exp run --queue -n NAME-<i> -S params.py:KEY=VALUE ...
[STAGE]` (named NAME-1, NAME-2, ...; the default NAME is sweep-<month><day>-<hour><minute>).
--run starts `dvc queue start -j N` (N experiments at a time, each in its own temporary copy of the
workspace); --wait waits for the queue to empty, prints `dvc exp show --sort-by METRIC` and the best
of this sweep; --apply-best then applies it to the workspace (`dvc exp apply`). A metric several
metrics files have is named with its file: --metric out/runs/ocr/metrics.json:final_val_loss
(the whole pipeline: --metric out/evaluations/stack/metrics.json:val_acc --maximize). Without --run the
experiments stay queued: `dvc queue start -j N`, `dvc queue status`, `dvc exp show` (docs/scale-out.md).

Environment variables reach the experiments through `dvc queue start`: with PLATEREADER_NPROC=gpu
set there, each experiment trains on every GPU (then run one at a time, -j 1).
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time

PREFIX = "params.py:"


class SweepError(Exception):
    """A mistake in the command line or a failed DVC command: one line, with the remedy."""


def split_values(text: str) -> list[str]:
    """"1e-3,3e-3" -> ["1e-3", "3e-3"]; commas inside [] or {} or quotes do not split."""
    values, depth, quote, current = [], 0, "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            values.append(current.strip())
            current = ""
            continue
        current += char
    values.append(current.strip())
    if any(not v for v in values) or depth != 0 or quote:
        raise SweepError(f"-S ...={text!r}: expected values separated by commas, e.g. 1e-3,3e-3")
    return values


def parse_grid(items: list[str]) -> list[tuple[str, list[str]]]:
    """["TrainOCRParams.WIDTH=16,32", ...] -> [("params.py:TrainOCRParams.WIDTH", ["16", "32"]), ...]"""
    grid = []
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SweepError(f"-S {item!r}: expected KEY=V1,V2,... such as TrainOCRParams.WIDTH=16,32")
        key = key if key.startswith(PREFIX) else PREFIX + key
        if any(key == k for k, _ in grid):
            raise SweepError(f"-S {key} is given twice: list all its values in one -S")
        grid.append((key, split_values(values)))
    if not grid:
        raise SweepError("no grid: give at least one -S KEY=V1,V2,...")
    return grid


def check_rewritable(grid: list[tuple[str, list[str]]], path: str = "params.py") -> None:
    """DVC rewrites a params.py value by replacing the text ` = <old value as Python prints it>` on
    its line: a value written otherwise (3e-3 for 0.003) is silently left as it is, and every
    experiment of the sweep would train with it. Refuse such a grid, naming the fix."""
    import ast

    try:
        with open(path) as f:
            source = f.read()
    except OSError:
        raise SweepError(f"{path} not found: run the sweep from the repository root") from None
    lines = source.splitlines()
    body = ast.parse(source).body
    for key, _ in grid:
        name = key[len(PREFIX):]
        cls, _, attr = name.rpartition(".")
        scope = next((n.body for n in body if isinstance(n, ast.ClassDef) and n.name == cls), None) if cls else body
        node = next((n for n in scope or [] if isinstance(n, ast.Assign) and len(n.targets) == 1
                     and isinstance(n.targets[0], ast.Name) and n.targets[0].id == attr), None)
        if node is None:
            raise SweepError(f"-S {name}: {path} has no such entry (e.g. TrainOCRParams.LEARNING_RATE)")
        try:
            value = ast.literal_eval(node.value)
        except ValueError:
            continue  # not a literal: DVC cannot read it either and says so itself
        if f" = {value}" not in lines[node.lineno - 1]:
            written = ast.get_source_segment(source, node.value)
            raise SweepError(f"{path} writes {name} as {written}: DVC can only rewrite a value written as Python "
                             f"prints it, and would silently keep {written} in every experiment: write it as "
                             f"{attr} = {value!r} first")


def combinations(grid: list[tuple[str, list[str]]]) -> list[dict[str, str]]:
    keys = [k for k, _ in grid]
    return [dict(zip(keys, values)) for values in itertools.product(*(v for _, v in grid))]


def queue_commands(grid, name: str, target: str | None) -> list[tuple[str, list[str]]]:
    """(experiment name, `dvc exp run --queue` arguments) for each combination, in grid order."""
    commands = []
    for i, combo in enumerate(combinations(grid), 1):
        args = ["exp", "run", "--queue", "-n", f"{name}-{i}"]
        for key, value in combo.items():
            args += ["-S", f"{key}={value}"]
        commands.append((f"{name}-{i}", args + ([target] if target else [])))
    return commands


def dvc_executable() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "dvc")
    found = beside if os.path.isfile(beside) else shutil.which("dvc")
    if not found:
        raise SweepError("dvc not found next to this Python or on PATH: run `make setup` first")
    return found


def dvc(*args: str, capture: bool = False) -> str:
    # Files, not pipes: `dvc queue start` forks workers that inherit its output and outlive it, so a
    # pipe would stay open (and this call blocked) until the last worker exits.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        into = {"stdout": out, "stderr": err} if capture else {}
        returncode = subprocess.run([dvc_executable(), *args], text=True, **into).returncode
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if returncode != 0:
        detail = (stderr or stdout).strip().splitlines()[-1:]
        raise SweepError(f"`dvc {' '.join(args)}` failed{': ' + detail[0] if detail else ''}")
    return stdout


def wait_for_queue(poll_s: float = 5.0, timeout_s: float | None = None) -> None:
    """Until `dvc queue status` lists nothing queued or running."""
    start = time.monotonic()
    while True:
        rows = dvc("queue", "status", capture=True).splitlines()
        pending = [row for row in rows if any(state in row.split() for state in ("Queued", "Running"))]
        if not pending:
            return
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise SweepError(f"the queue still has {len(pending)} experiments after {timeout_s:.0f} s: "
                             "`dvc queue status`, `dvc queue logs NAME`")
        time.sleep(poll_s)


def pick_column(columns: list[str], metric: str) -> str:
    """The `dvc exp show --csv` column of `metric`: its name, or FILE:NAME where two files have it."""
    matches = [c for c in columns if c == metric or (":" not in metric and c.endswith(":" + metric))]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise SweepError(f"--metric {metric}: no such column in `dvc exp show` (columns: {', '.join(columns)})")
    raise SweepError(f"--metric {metric} is in several metrics files: name one, e.g. --metric {matches[0]}")


def results(names: list[str], metric: str) -> dict[str, float | None]:
    """This sweep's experiments and their `metric` (None when it failed or has none), from
    `dvc exp show --csv`."""
    table = list(csv.DictReader(io.StringIO(dvc("exp", "show", "--csv", capture=True))))
    if not table:
        return {}
    column = pick_column(list(table[0]), metric)
    found: dict[str, float | None] = {}
    for row in table:
        if row.get("Experiment") in names:
            try:
                found[row["Experiment"]] = float(row[column])
            except (TypeError, ValueError):
                found[row["Experiment"]] = None
    return found


def best_of(found: dict[str, float | None], maximize: bool) -> str | None:
    scored = {k: v for k, v in found.items() if v is not None}
    if not scored:
        return None
    return (max if maximize else min)(scored, key=scored.get)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-S", "--set-param", dest="grid", action="append", default=[], metavar="KEY=V1,V2",
                        help="a params.py entry and its values (repeat for a grid)")
    parser.add_argument("--name", default=time.strftime("sweep-%m%d-%H%M"),
                        help="experiment names are NAME-1, NAME-2, ... (default: %(default)s)")
    parser.add_argument("--target", help="the stage to run (default: the whole pipeline)")
    parser.add_argument("--run", action="store_true", help="start the queue: dvc queue start -j JOBS")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="experiments run at a time (default: 1)")
    parser.add_argument("--wait", action="store_true", help="wait for the queue to empty, then show the results")
    parser.add_argument("--timeout", type=float, default=None, help="seconds --wait waits at most")
    parser.add_argument("--metric", default="final_val_loss",
                        help="metric to sort by and pick the best with (default: %(default)s)")
    parser.add_argument("--maximize", action="store_true", help="the best has the highest --metric")
    parser.add_argument("--apply-best", action="store_true", help="dvc exp apply the best (needs --wait)")
    parser.add_argument("--dry-run", action="store_true", help="print the dvc commands, run nothing")
    args = parser.parse_args(argv)
    try:
        if args.jobs < 1:
            raise SweepError("-j/--jobs must be at least 1")
        if args.apply_best and not args.wait:
            raise SweepError("--apply-best needs --wait (and --run, or a queue started elsewhere)")
        grid = parse_grid(args.grid)
        check_rewritable(grid)
        commands = queue_commands(grid, args.name, args.target)
        for name, command in commands:
            print("dvc " + " ".join(command), flush=True)
            if not args.dry_run:
                dvc(*command, capture=True)
        names = [name for name, _ in commands]
        if args.dry_run:
            return 0
        print(f"queued {len(names)} experiments: {', '.join(names)}", flush=True)
        if args.run:
            print(f"dvc queue start -j {args.jobs}", flush=True)
            dvc("queue", "start", "-j", str(args.jobs), capture=True)
        if not args.wait:
            return 0
        wait_for_queue(timeout_s=args.timeout)
        found = results(names, args.metric)
        order = "desc" if args.maximize else "asc"
        print(dvc("exp", "show", "--no-pager", "--md", "--sort-by", args.metric, "--sort-order", order,
                  capture=True), flush=True)
        failed = sorted(set(names) - {k for k, v in found.items() if v is not None})
        if failed:
            print(f"no {args.metric} for {', '.join(failed)}: see `dvc queue logs NAME`", flush=True)
        best = best_of(found, args.maximize)
        if best is None:
            raise SweepError(f"no experiment of this sweep has {args.metric}: `dvc queue status`, `dvc queue logs`")
        print(f"best: {best} ({args.metric} {found[best]:g})", flush=True)
        if args.apply_best:
            dvc("exp", "apply", best, capture=True)
            print(f"applied {best} to the workspace (dvc exp apply {best}); commit it to keep it", flush=True)
        return 0
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
