"""Every entry of params.py can be set by `dvc exp run -S "params.py:KEY=VALUE"`.

DVC rewrites a Python params file line by line: it replaces ` = <old value>` on the entry's line
with ` = <new value>`, both as `str()` writes them. An entry whose text differs (`["swiss"]`,
`0.10`), a dict's entries and strings are left as they were, silently, or break the file, so
params.py writes lists as Python prints them, tables as classes and paths as one-element lists.
"""

import shutil

from dvc.utils.serialize import load_py, modify_py

from tests.conftest import ROOT


def leaves(tree: dict, prefix: tuple = ()):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from leaves(value, prefix + (key,))
        else:
            yield prefix + (key,), value


def other(value):
    """A value of the same kind as `value`, different from it."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, list):
        return value + value[:1] if value else [1]
    return f"{value}x"


def entry(tree: dict, key: tuple):
    for part in key:
        tree = tree[part]
    return tree


def dvc_sets(path, source, key: tuple, value) -> bool:
    """Whether DVC's own writer, run on a copy of `source` at `path`, sets `key` to `value`."""
    shutil.copy(source, path)
    try:
        with modify_py(path) as data:
            entry(data, key[:-1])[key[-1]] = value
    except Exception:  # DVC refuses to write a file it would corrupt
        return False
    return entry(load_py(path), key) == value


def test_dvc_exp_run_can_set_every_entry(tmp_path):
    entries = list(leaves(load_py(ROOT / "params.py")))
    assert len(entries) > 50 and (("GeneratorParams", "AUGMENTATIONS", "mot"), 2) in entries
    unset = [f"{'.'.join(key)} = {value!r}" for key, value in entries
             if not dvc_sets(tmp_path / "params.py", ROOT / "params.py", key, other(value))]
    assert not unset, f"dvc exp run -S cannot set these entries of params.py: {unset}"


def test_the_check_sees_entries_dvc_cannot_set(tmp_path):
    source = tmp_path / "source.py"
    source.write_text('class P:\n    NAMES = ["a"]\n    PATH = ""\n    TABLE = {"a": 1}\n    RATE = 1e-3\n'
                      '    SIZE = 96\n')
    unset = [key[-1] for key, value in leaves(load_py(source))
             if not dvc_sets(tmp_path / "params.py", source, key, other(value))]
    assert unset == ["NAMES", "PATH", "a", "RATE"]
