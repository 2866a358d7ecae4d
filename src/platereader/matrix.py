"""A models x datasets evaluation matrix: several trained model sets read several labelled sets, and
one table says how each did.

    platereader matrix [--models SPEC ...] [--datasets SPEC ...] [--images 1000] [--out out/matrix]

Run it from the repository root (the reader is configured by params.py:ReaderParams, the same for
every model). A model SPEC is, optionally prefixed by `label=`:

- a folder with localize/model.pt and ocr/model.pt (default: out/models, the workspace's);
- a Git revision (commit, branch, tag; a registered version is its GTO tag, e.g.
  plate-reader@v1.0.0) or a DVC experiment name (`dvc exp show`): the two model files as that
  revision's dvc.lock has them, read from the DVC cache or the remote (`dvc.api.open`).

A dataset SPEC is `stack` (data/prepared/stack, the stack test set), `seed:N` (--images fresh
generator scenes of seed N, a seed no prepare stage uses), `real` (every labelled photo set under
data/real), `real:NAME` (one of them), or a folder: arrays as the prepare stages write them
(images.npy, texts.npy, present.npy, maybe in test/) or a labelled photo set (docs/real-data.md).
Default: stack (if prepared), seed:13 and every real set.

Writes OUT/matrix.md (the main metric as a models x datasets grid, then every metric),
OUT/matrix.csv (one row per model and dataset) and OUT/matrix.png (the grid as a heatmap). The
main metric, `exact`, is comparable across kinds: the share of labelled plates read exactly (on a
generated set: scenes with a plate whose reported text is exact, plate_acc). Generated sets also
give val_acc (no-plate scenes count, right when nothing is reported) and no_plate_acc; photo sets
recall, cer and false_per_photo (platereader.realdata).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
from dataclasses import dataclass, field

import numpy as np

from platereader.errors import UserError

DEFAULT_OUT = "out/matrix"
STACK_DIR = "data/prepared/stack"
REAL_DIR = "data/real"
MODEL_FILES = ("localize/model.pt", "ocr/model.pt")
MAIN_METRIC = "exact"
COLUMNS = ("images", "plates", "exact", "val_acc", "no_plate_acc", "recall", "mean_iou", "cer",
           "false_per_photo", "images_per_s")


@dataclass
class ModelSet:
    label: str
    spec: str
    folder: str  # holding localize/model.pt and ocr/model.pt
    source: str  # "folder" or the commit it came from


@dataclass
class Dataset:
    label: str
    kind: str  # "generated" (arrays: images, texts, present) or "photos" (a realdata.Dataset)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    photos: object = None


# --------------------------------------------------------------------------- models


def split_label(spec: str) -> tuple[str, str]:
    label, sep, rest = spec.partition("=")
    return (label, rest) if sep and label and rest else (spec, spec)


def is_model_folder(path: str) -> bool:
    return all(os.path.isfile(os.path.join(path, f)) for f in MODEL_FILES)


def resolve_revision(spec: str, repo: str = ".") -> str:
    """The commit of a Git revision or a DVC experiment name; UserError naming both ways else."""
    import subprocess

    result = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}"], cwd=repo,
                            capture_output=True, text=True)
    if result.returncode == 0:
        return result.stdout.strip()
    try:
        from dvc.repo import Repo
        from dvc.repo.experiments.utils import resolve_name

        with Repo(repo) as dvc_repo:
            ref = resolve_name(dvc_repo.scm, [spec]).get(spec)
            if ref is not None:
                return dvc_repo.scm.get_ref(str(ref))
    except Exception as exc:  # not a DVC repository, an ambiguous name...
        raise UserError(f"--models {spec}: not a folder with {' and '.join(MODEL_FILES)}, and no Git revision or "
                        f"DVC experiment of that name ({exc.__class__.__name__}: {exc})") from None
    raise UserError(f"--models {spec}: not a folder with {' and '.join(MODEL_FILES)}, nor a Git revision (`git log`, "
                    "`git tag` for registered versions) or a DVC experiment (`dvc exp show`)")


def fetch_models(commit: str, dest: str, repo: str = ".") -> None:
    """Copy the two model files of `commit` (its dvc.lock) into dest/, from the cache or the remote."""
    import dvc.api

    for name in MODEL_FILES:
        path = os.path.join("out/models", name)
        target = os.path.join(dest, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            with dvc.api.open(path, repo=repo, rev=commit, mode="rb") as src, open(target, "wb") as out:
                out.write(src.read())
        except Exception as exc:
            raise UserError(f"{path} of revision {commit[:10]} cannot be read ({exc.__class__.__name__}: {exc}): "
                            "is it in the DVC cache? `dvc pull` it, or `dvc exp pull` the experiment") from None


def resolve_models(specs: list[str], scratch: str, repo: str = ".") -> list[ModelSet]:
    models, labels = [], set()
    for spec in specs:
        label, target = split_label(spec)
        if label in labels:
            raise UserError(f"--models: {label!r} is given twice: name one of them with LABEL=SPEC")
        labels.add(label)
        if is_model_folder(target):
            models.append(ModelSet(label, target, target, "folder"))
            continue
        if os.path.isdir(target) and not os.path.isdir(os.path.join(target, ".git")):
            raise UserError(f"--models {target}: the folder has no {' and '.join(MODEL_FILES)}")
        commit = resolve_revision(target, repo)
        folder = os.path.join(scratch, f"model-{len(models)}")
        fetch_models(commit, folder, repo)
        models.append(ModelSet(label, target, folder, commit))
    return models


# --------------------------------------------------------------------------- datasets


def _arrays(folder: str) -> dict[str, np.ndarray] | None:
    for where in (folder, os.path.join(folder, "test")):
        if all(os.path.isfile(os.path.join(where, f"{k}.npy")) for k in ("images", "texts", "present")):
            from platereader.datasets import load_split

            return load_split(os.path.dirname(where) or ".", os.path.basename(where))
    return None


def real_dataset_names(root: str = REAL_DIR) -> list[str]:
    """Every labelled photo set under data/real (folders; a hook for platereader.realdata)."""
    if not os.path.isdir(root):
        return []
    return sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))


def load_photos(name: str, root: str = REAL_DIR):
    """A labelled photo set, as platereader.realdata loads and checks it."""
    try:
        from platereader import realdata
    except ImportError:
        raise UserError(f"{root}/{name}: photo sets need platereader.realdata, which this checkout lacks") from None
    return realdata.load_dataset(name, root=root)


def resolve_datasets(specs: list[str], images: int, params) -> list[Dataset]:
    from platereader.synth.sets import check_unused_seeds, scene_arrays

    datasets: list[Dataset] = []
    for spec in specs:
        if spec == "stack":
            arrays = _arrays(STACK_DIR)
            if arrays is None:
                raise UserError(f"{STACK_DIR}/test is missing: `dvc repro prepare_stack` (or `dvc pull`) first")
            datasets.append(Dataset("stack", "generated", arrays))
        elif spec.startswith("seed:"):
            try:
                seed = int(spec[5:])
            except ValueError:
                raise UserError(f"--datasets {spec}: expected seed:N with a whole number, e.g. seed:13") from None
            taken = (params.PrepareLocalizeParams.SEED, params.PrepareOCRParams.SEED, params.PrepareStackParams.SEED)
            check_unused_seeds([seed], "--datasets seed:", taken)
            arrays = scene_arrays(0, images, params.SEED, seed, params.GeneratorParams, params.SCENE_SIZE)
            datasets.append(Dataset(f"seed {seed}", "generated", arrays))
        elif spec == "real":
            datasets += [Dataset(f"real:{name}", "photos", photos=load_photos(name)) for name in real_dataset_names()]
        elif spec.startswith("real:"):
            datasets.append(Dataset(spec, "photos", photos=load_photos(spec[5:])))
        elif os.path.isdir(spec):
            arrays = _arrays(spec)
            label = os.path.basename(os.path.normpath(spec))
            if arrays is not None:
                datasets.append(Dataset(label, "generated", arrays))
            else:
                root = os.path.dirname(os.path.normpath(spec)) or "."
                datasets.append(Dataset(label, "photos", photos=load_photos(label, root)))
        else:
            raise UserError(f"--datasets {spec}: expected stack, seed:N, real, real:NAME or a folder")
    labels = [d.label for d in datasets]
    if len(set(labels)) != len(labels):
        raise UserError(f"--datasets: a dataset is given twice ({', '.join(labels)})")
    if not datasets:
        raise UserError("--datasets: nothing to read (no real sets under data/real?): name at least one")
    return datasets


# --------------------------------------------------------------------------- scoring


def score_generated(reader, data: dict[str, np.ndarray], batch: int) -> dict[str, float]:
    from platereader.scoring import inspect_all, score

    candidates, per_s = inspect_all(reader, data["images"], batch)
    present = np.asarray(data["present"], dtype=bool)
    _, acc = score(candidates, [str(t) for t in data["texts"]], present)
    return {"images": len(present), "plates": int(present.sum()), "exact": acc["plate_acc"],
            "val_acc": acc["val_acc"], "no_plate_acc": acc["no_plate_acc"], "images_per_s": round(per_s, 1)}


def score_photos(reader, dataset, batch: int) -> dict[str, float]:
    import time

    from platereader import realdata

    scores, start = [], time.perf_counter()
    photos = dataset.photos
    for i in range(0, len(photos), batch):
        chunk = photos[i:i + batch]
        for photo, candidates in zip(chunk, reader.inspect([p.load() for p in chunk])):
            scores.append(realdata.score_photo(photo.plates, candidates))
    seconds = time.perf_counter() - start
    summary = realdata.summarise(scores)
    return {"images": summary.pop("photos"), **summary, "images_per_s": round(len(photos) / seconds, 1)}


def evaluate(models: list[ModelSet], datasets: list[Dataset], config, batch: int) -> list[dict]:
    from platereader.reader import PlateReader

    rows = []
    for model in models:
        reader = PlateReader.load(model.folder, config)
        for data in datasets:
            metrics = (score_generated(reader, data.arrays, batch) if data.kind == "generated"
                       else score_photos(reader, data.photos, batch))
            rows.append({"model": model.label, "source": model.source, "dataset": data.label, "kind": data.kind,
                         **metrics})
            print(f"matrix: {model.label} on {data.label}: {MAIN_METRIC} {metrics.get(MAIN_METRIC, float('nan')):.4f}",
                  flush=True)
    return rows


# --------------------------------------------------------------------------- output


def _cell(key: str, value) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if key == "images_per_s" else f"{value:.4f}"
    return str(value)


def write_csv(rows: list[dict], path: str) -> None:
    keys = ["model", "source", "dataset", "kind"] + [c for c in COLUMNS if any(c in r for r in rows)]
    keys += sorted({k for r in rows for k in r} - set(keys))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys, restval="")
        writer.writeheader()
        writer.writerows(rows)


def grid(rows: list[dict], metric: str = MAIN_METRIC) -> tuple[list[str], list[str], np.ndarray]:
    models = list(dict.fromkeys(r["model"] for r in rows))
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    values = np.full((len(models), len(datasets)), np.nan)
    for r in rows:
        if r.get(metric) is not None:
            values[models.index(r["model"]), datasets.index(r["dataset"])] = r[metric]
    return models, datasets, values


def markdown(rows: list[dict]) -> str:
    models, datasets, values = grid(rows)
    sizes = {r["dataset"]: r["images"] for r in rows}
    lines = ["# Models x datasets", "",
             f"`{MAIN_METRIC}`: the share of labelled plates read exactly (generated sets: scenes with a plate "
             "whose reported text is exact). Images per set in brackets; every metric below and in matrix.csv.", "",
             "| model | " + " | ".join(f"{d} ({sizes[d]})" for d in datasets) + " |",
             "|---|" + "---:|" * len(datasets)]
    for i, model in enumerate(models):
        lines.append(f"| {model} | " + " | ".join("-" if np.isnan(v) else f"{v:.4f}" for v in values[i]) + " |")
    keys = [c for c in COLUMNS if any(c in r for r in rows)]
    lines += ["", "| model | dataset | " + " | ".join(keys) + " |", "|---|---|" + "---:|" * len(keys)]
    for r in rows:
        lines.append(f"| {r['model']} | {r['dataset']} | " + " | ".join(_cell(k, r.get(k)) for k in keys) + " |")
    sources = [f"- {r['model']}: {r['source'][:12] if r['source'] != 'folder' else 'folder'}"
               for r in {r["model"]: r for r in rows}.values()]
    return "\n".join(lines + ["", "Models:", *sources]) + "\n"


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models, datasets, values = grid(rows)
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(datasets), 1.2 + 0.55 * len(models)))
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(datasets)), datasets, rotation=30, ha="right")
    ax.set_yticks(range(len(models)), models)
    for (i, j), value in np.ndenumerate(values):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.3f}", ha="center", va="center", color="white" if value < 0.6 else "black")
    fig.colorbar(image, ax=ax, label=MAIN_METRIC)
    ax.set_title(f"{MAIN_METRIC}: plates read exactly")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(rows: list[dict], out: str) -> dict[str, str]:
    os.makedirs(out, exist_ok=True)
    paths = {kind: os.path.join(out, f"matrix.{kind}") for kind in ("md", "csv", "png")}
    with open(paths["md"], "w") as f:
        f.write(markdown(rows))
    write_csv(rows, paths["csv"])
    plot(rows, paths["png"])
    return paths


# --------------------------------------------------------------------------- command


def import_params():
    """params.py of the repository the command runs in (the current directory)."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        import params
    except ImportError:
        raise UserError("params.py not found: run `platereader matrix` from the repository root") from None
    return params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="platereader matrix", description=__doc__.split("\n")[0],
                                     epilog="Model and dataset specs: see the module's docstring (platereader.matrix) "
                                            "or docs/scale-out.md.")
    parser.add_argument("--models", nargs="+", default=["out/models"], metavar="SPEC",
                        help="folders, Git revisions, GTO tags or DVC experiments, each maybe LABEL=SPEC "
                             "(default: out/models)")
    parser.add_argument("--datasets", nargs="+", default=None, metavar="SPEC",
                        help="stack, seed:N, real, real:NAME or folders (default: stack if prepared, seed:13, real)")
    parser.add_argument("--images", type=int, default=1000, help="scenes per seed:N set (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=None, help="images per read (default: EvaluateParams.BATCH_SIZE)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="folder for matrix.md/.csv/.png (default: %(default)s)")
    args = parser.parse_args(argv)
    params = import_params()
    from platereader import validate
    from platereader.reader import ReaderConfig

    batch = args.batch if args.batch is not None else validate.integer(params.EvaluateParams, "BATCH_SIZE", 1)
    if args.images < 1 or batch < 1:
        raise UserError("--images and --batch must be at least 1")
    specs = args.datasets
    if specs is None:
        specs = (["stack"] if _arrays(STACK_DIR) is not None else []) + ["seed:13"] + (
            ["real"] if real_dataset_names() else [])
    config = ReaderConfig.from_params(params.ReaderParams)
    datasets = resolve_datasets(specs, args.images, params)
    with tempfile.TemporaryDirectory(prefix="matrix-") as scratch:
        models = resolve_models(args.models, scratch)
        rows = evaluate(models, datasets, config, batch)
    paths = write(rows, args.out)
    print(f"matrix: {len(models)} models x {len(datasets)} datasets -> {', '.join(paths.values())}")


if __name__ == "__main__":
    from platereader.errors import run_main

    run_main(main)
