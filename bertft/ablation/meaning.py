"""Checks that a spec means what it says, made when it is parsed (before any trial runs).

- its name is a safe folder and file name that the reports and the results store do not use
  for themselves;
- a command-line setting (`--set`, `--bertft-set`) never names one of its axes: it would replace
  every arm's value and the spec would run something other than its grid;
- its axes vary only settings that change a result: a setting outside the reuse key
  (`Config.hash`: the sections with `affects_results = False`, e.g. `num_threads`) would give arms
  with equal keys, so every arm after the first would be a copy of it (a throughput study over
  threads is a benchmark, not an ablation: benchmarks/);
- its baseline picks exactly one arm, its values compared with the axis values by type (a
  `0` is not `false`);
- the data files of every grid point exist, are readable files and have a format the task can
  read (by extension). Nothing is loaded and nothing is asked of the network.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bertft.config import SECTION_OF, SECTIONS, Config
from bertft.values import same_value

SAFE_NAME = "ASCII letters, digits, - and _, starting with a letter or a digit"
RESERVED_NAMES = {
    "readme": "the reports folder's index (README.md)",
    "tensorboard": "the trackers' folder in the results folder (TensorBoard logs)",
    "mlruns": "the trackers' folder in the results folder (the local MLflow store)",
    "wandb": "the trackers' folder in the results folder (W&B run folders)",
}
"""Spec names (any case: some file systems ignore it) that would overwrite or mix with what
`bertft report` and the trackers write beside the specs' own files and folders."""

FILE_KEYS = ("train_file", "validation_file", "test_file")
FILE_TASKS = ("text-file", "conll-file")  # the tasks that read FILE_KEYS
DIR_TASKS = ("sst2", "imdb", "conll2003")  # the tasks that read a data_dir (data/tasks.py)


def name_problems(name: Any) -> list[str]:
    """A spec name is a folder under the results folder and a file stem in the reports folder."""
    if not isinstance(name, str) or not name or not name.isascii() \
            or not name.replace("-", "").replace("_", "").isalnum() or name[0] in "-_":
        return [f"name = {name!r}: expected a non-empty name of {SAFE_NAME}"]
    if len(name.encode()) > 100:
        return [f"name = '{name[:20]}...': {len(name.encode())} bytes; allowed: at most 100"]
    if name.lower() in RESERVED_NAMES:
        return [f"name = {name!r}: reserved for {RESERVED_NAMES[name.lower()]}; choose "
                "another name"]
    return []


def override_problems(overrides: dict[str, Any], axes: Sequence[tuple[str, ...]],
                      wheres: Sequence[str]) -> list[str]:
    """A command-line setting that names an axis of the spec would be replaced by every arm's
    value (or replace them all): refused, naming the axis."""
    where = {k: w for keys, w in zip(axes, wheres, strict=True) for k in keys}
    flags = {"data_dir": "--data-dir / --bertft-data-dir / --set"}  # the plugin's own flag
    return [f"{key} = {_toml(value)} given on the command line "
            f"({flags.get(key, '--set / --bertft-set')}) is the axis {where[key]} of this spec; "
            "a command-line setting cannot change an axis: edit the spec's axis, or select arms "
            "with -k" for key, value in overrides.items() if key in where]


def outside_key_problems(axes: Sequence[tuple[str, ...]], wheres: Sequence[str]) -> list[str]:
    """Axes over settings that do not change a result (outside `Config.hash`)."""
    return [f"{where}: {key} does not change a trial's result (it is in the [{SECTION_OF[key]}] "
            "settings, outside the key that identifies a result), so arms that differ only in "
            "it would be copies of one stored result, its speed included; set it in [base] or "
            "with --set"
            for keys, where in zip(axes, wheres, strict=True) for key in keys
            if not SECTIONS[SECTION_OF[key]].affects_results]


def value_problem(key: str, value: Any, allowed: Sequence[Any]) -> str | None:
    """A baseline value that is not among its axis's values, by type."""
    if any(same_value(v, value) for v in allowed):
        return None
    shown = ", ".join(_toml(v) for v in allowed)
    kinds = {_kind(v) for v in allowed}
    why = (f" ({_toml(value)} is {_kind(value)}; the axis holds {' or '.join(sorted(kinds))})"
           if _kind(value) not in kinds else "")
    return f"baseline.{key} = {_toml(value)}: not among the axis values [{shown}]{why}"


def baseline_arm_problems(baseline: dict[str, Any], axes: Sequence[tuple[str, ...]],
                          values: Sequence[Sequence[tuple[Any, ...]]]) -> list[str]:
    """A non-empty baseline must match exactly one arm of the grid (an empty one asks for no
    comparison)."""
    if not baseline:
        return []
    matched = []
    for combo in itertools.product(*values):
        point = {k: v for keys, vals in zip(axes, combo, strict=True)
                 for k, v in zip(keys, vals, strict=True)}
        if all(same_value(point[k], v) for k, v in baseline.items()):
            matched.append(point)
    shown = "baseline = { " + ", ".join(f"{k} = {_toml(v)}" for k, v in baseline.items()) + " }"
    if not matched:
        return [f"{shown} matches no arm of the grid; give the values of one arm"]
    if len(matched) == 1:
        return []
    free = [k for keys in axes for k in keys if k not in baseline
            and len({json.dumps(p[k]) for p in matched}) > 1]
    arms = "; ".join(",".join(f"{k}={_toml(p[k])}" for k in p) for p in matched[:6])
    more = f" and {len(matched) - 6} more" if len(matched) > 6 else ""
    return [f"{shown} matches {len(matched)} arms ({arms}{more}); the baseline must pick one "
            f"arm: add {', '.join(free)} to it"]


def grid_data_problems(points: Sequence[tuple[str, Config]]) -> list[str]:
    """`data_file_problems` of every grid point ({arm id: its config}), each problem once with
    the arms it concerns."""
    arms: dict[str, list[str]] = {}
    for arm, cfg in points:
        for problem in data_file_problems(cfg):
            arms.setdefault(problem, []).append(arm)
    return [f"{problem} ({_arms(where)})" for problem, where in arms.items()]


def _arms(arms: Sequence[str]) -> str:
    if arms == [""]:  # a spec without axes
        return "every trial"
    more = f" and {len(arms) - 4} more" if len(arms) > 4 else ""
    return f"{'arm' if len(arms) == 1 else 'arms'} {'; '.join(arms[:4])}{more}"


def data_file_problems(cfg: Config) -> list[str]:
    """The data files a trial reads: each exists, is a readable file, and (text-file) has a
    format the reader knows; a local dataset or data_dir folder exists. Cheap: nothing is read
    but the files' metadata."""
    from bertft.data.readers import file_format
    from bertft.errors import DataError

    data = cfg.data
    if data.task == "hf-dataset" or data.task == "hf-dataset-ner":
        path = Path(data.dataset or "").expanduser()
        local = bool(data.dataset) and (data.dataset.startswith((".", "/", "~"))
                                        or "\\" in data.dataset)
        if (local or path.exists()) and not path.is_dir():
            what = "is a file, not a folder" if path.exists() else "no such folder"
            return [f"dataset = {data.dataset!r}: {what}; expected a folder of "
                    "csv/json/parquet files or one written by save_to_disk"]
        return []
    if data.task in DIR_TASKS and data.data_dir \
            and not Path(data.data_dir).expanduser().is_dir():
        return [f"data_dir = {data.data_dir!r}: no such folder; expected a local copy of "
                f"{data.task} in its original layout"]
    if data.task not in FILE_TASKS:
        return []
    problems = []
    for key in FILE_KEYS:
        name = getattr(data, key)
        if name is None:
            continue
        path = Path(name)
        if not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "file not found"
            problems.append(f"{key} = {name!r}: {what}")
        elif not os.access(path, os.R_OK):
            problems.append(f"{key} = {name!r}: not readable (permission denied)")
        elif data.task == "text-file":
            try:
                file_format(path, data.file_format)
            except DataError as exc:
                problems.append(f"{key}: {exc}")
    return problems


def _toml(value: Any) -> str:
    """A value as written in TOML (true, 0.001, "all")."""
    return json.dumps(value) if isinstance(value, bool | str | list) or value is None \
        else repr(value)


def _kind(value: Any) -> str:
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(
        type(value), type(value).__name__)


__all__ = ["RESERVED_NAMES", "baseline_arm_problems", "data_file_problems", "grid_data_problems",
           "name_problems", "outside_key_problems", "override_problems", "value_problem"]
