"""Ablation specs: declarative TOML, parsed with `tomllib` only, validated before any training.

    name = "freezing"
    description = "Which layers to freeze?"
    pilot_seeds = [0, 1, 2]               # optional: the pilot that sizes the confirmation
    seeds = [20, 21, 22]                  # the seeds that decide; or adaptive: { min, max }
    baseline = { freeze_layers = 0 }      # the reference arm
    equivalence_margin = 0.01             # arms closer than this are equivalent (1 point)

    [base]                                # any Config setting
    task = "bbc-news"

    [grid]                                # axes: the grid is their product
    freeze_layers = [0, 3, 6]

    [[zip]]                               # axes that vary together (one more grid axis)
    head_lr = [1e-3, 1e-4]
    base_lr = [1e-4, 1e-5]

Parsing reads only local files: it downloads, loads and asks the network nothing. The layer-count
check (`model_problems`) reads the model's config.json when the model is on this machine (a
built-in, a directory, or the local Hugging Face cache); a Hub model that is not here is checked
when its trial runs, which names the model and why it cannot load. Every problem in a file (and
in the command-line overrides) is collected and raised once, naming the file, the key and what
is allowed.
"""

from __future__ import annotations

import itertools
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from bertft.results import DEFAULT_MARGIN, Role
from bertft.ablation.meaning import (baseline_arm_problems, grid_data_problems, name_problems,
                                    outside_key_problems, override_problems, value_problem)
from bertft.ablation.seeds import SEED_LIMIT, parse_seed_design
from bertft.ablation.store import file_stem
from bertft.config import FIELDS, Config, coerce, unknown_key_message
from bertft.errors import ConfigError, DataError

TOP_KEYS = ("name", "description", "seeds", "pilot_seeds", "baseline", "equivalence_margin",
            "base", "grid", "zip", "resources")
MAX_MARGIN = 0.1    # 10 points: any wider "equivalence" decides nothing (shipped specs: <= 0.02)
ROLES: tuple[str, ...] = get_args(Role)  # seed roles: `seeds` decide, `pilot_seeds` plan
RESOURCE_KEYS = ("num_gpus", "num_cpus")  # per trial, for the ray executor


class SpecError(ConfigError):
    """All problems found in one spec file."""


@dataclass(frozen=True, kw_only=True)
class Spec:
    name: str
    description: str
    path: str
    base: dict[str, Any]                          # settings shared by every trial
    axes: tuple[tuple[str, ...], ...]             # each axis: one key, or a zip group's keys
    values: tuple[tuple[tuple[Any, ...], ...], ...]  # per axis: the value tuples
    seeds: tuple[int, ...]
    baseline: dict[str, Any]
    resources: dict[str, float] = field(default_factory=dict)  # [resources]: ray task needs
    equivalence_margin: float = DEFAULT_MARGIN
    min_seeds: int = 0              # adaptive: seeds every arm runs (then up to len(seeds));
    #                                 0: a fixed design, every seed runs
    pilot_seeds: tuple[int, ...] = ()  # the pilot's seeds (`--bertft-pilot` runs them), disjoint
    #                                    from `seeds`, the confirmation's; () when none

    def seeds_of(self, role: str) -> tuple[int, ...]:
        """The seeds a run of this role trains: "confirmation" (`seeds`) or "pilot"."""
        return self.pilot_seeds if role == "pilot" else self.seeds

    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(k for axis in self.axes for k in axis)


@dataclass(frozen=True)
class Trial:
    spec: str
    trial_id: str                   # "freeze_layers=2,seed=1"
    arm_id: str                     # "freeze_layers=2"
    overrides: dict[str, Any]       # grid values and seed
    seed: int
    config: Config
    role: str = "confirmation"      # or "pilot" (ROLES)


def format_value(value: Any) -> str:
    """Readable, stable text for ids: a float as `:g` (0.0001, 1e-05) when that reads back as
    the same number, else its shortest exact form (0.1000001), so distinct floats differ."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "none"
    if isinstance(value, float):
        text = f"{value:g}"
        return text if float(text) == value else repr(value)
    return str(value)


def make_id(values: dict[str, Any]) -> str:
    return ",".join(f"{k}={format_value(v)}" for k, v in values.items())


def expand(spec: Spec, role: str = "confirmation") -> list[Trial]:
    """The grid as trials of one seed role, in spec order (axes in file order, then seeds).
    Pure."""
    trials = []
    for combo in itertools.product(*spec.values):
        point: dict[str, Any] = {}
        for keys, vals in zip(spec.axes, combo, strict=True):
            point.update(zip(keys, vals, strict=True))
        for seed in spec.seeds_of(role):
            overrides = {**point, "seed": seed}
            cfg = Config.from_dict({**spec.base, **overrides}, source=spec.path)
            trials.append(Trial(spec.name, make_id(overrides), make_id(point), overrides, seed,
                                cfg, role))
    return trials


def load_spec(path: str | Path, overrides: dict[str, Any] | None = None,
              max_seeds: int | None = None) -> Spec:
    """Parse and validate a spec file; `overrides` (from --bertft-set) replace base settings;
    `max_seeds` (from --bertft-max-seeds) makes the spec adaptive up to that many seeds."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(["file not found"], str(path)) from None
    except UnicodeDecodeError as exc:
        raise SpecError([f"not UTF-8 text ({exc.reason} at byte {exc.start})"], str(path)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError([f"TOML syntax error: {exc}"], str(path)) from None
    return parse_spec(data, str(path), overrides or {}, max_seeds)


def parse_spec(data: dict[str, Any], source: str, overrides: dict[str, Any],
               max_seeds: int | None = None) -> Spec:
    p: list[str] = []
    for key in data:
        if key not in TOP_KEYS:
            p.append(f"unknown top-level key '{key}'; allowed: {', '.join(TOP_KEYS)}")
    name = data.get("name", Path(source).stem)
    p += name_problems(name)  # a folder under the results and a file stem in the reports
    description = data.get("description", "")
    if not isinstance(description, str):
        p.append(f"description = {description!r}: expected a string")

    base = _table(data, "base", p)
    for key, value in base.items():
        _check_setting(f"base.{key}", key, value, p)
    base = {**base, **overrides}

    axes: list[tuple[str, ...]] = []
    values: list[tuple[tuple[Any, ...], ...]] = []
    wheres: list[str] = []
    for key, vals in _table(data, "grid", p).items():
        if _check_axis(f"grid.{key}", key, vals, p):
            axes.append((key,))
            values.append(tuple((v,) for v in vals))
            wheres.append(f"grid.{key}")
    _zip_axes(data, axes, values, wheres, p)
    for where, keys, columns in zip(wheres, axes, values, strict=True):
        p += _id_clashes(where, keys, columns)
    names = [k for axis in axes for k in axis]
    for key in {k for k in names if names.count(k) > 1}:
        p.append(f"{key}: appears in more than one axis (grid and zip, or two zips)")
    if "seed" in names or "seed" in base:
        p.append("seed: use the top-level `seeds = [...]` list, not a setting or axis")
    p += override_problems(overrides, axes, wheres) + outside_key_problems(axes, wheres)

    seeds, min_seeds, pilot = parse_seed_design(data, max_seeds, p)
    margin = parse_margin(data.get("equivalence_margin", DEFAULT_MARGIN), p)

    known = len(p)
    baseline = _baseline(data, axes, values, p)
    p += _baseline_zip_problems(baseline, tuple(axes), tuple(values), wheres)
    if len(p) == known:  # each value on its axis: together they must pick one arm
        p += baseline_arm_problems(baseline, axes, values)

    resources = _table(data, "resources", p)
    bad_resources = resource_problems(resources)
    p += [f"resources.{m}" for m in bad_resources]

    spec = Spec(name=name if isinstance(name, str) else "",
                description=description if isinstance(description, str) else "",
                path=source, base=base, axes=tuple(axes), values=tuple(values),
                seeds=tuple(seeds), baseline=dict(baseline),
                resources={} if bad_resources else {k: float(v) for k, v in resources.items()},
                equivalence_margin=float(margin), min_seeds=min_seeds, pilot_seeds=pilot)
    if not p:  # every grid point must make a valid config; each distinct problem once
        p += _grid_problems(spec)
    if p:
        raise SpecError(p, source)
    return spec


def parse_margin(margin: Any, p: list[str]) -> float:
    """`equivalence_margin`: a number in (0, MAX_MARGIN], in units of the metric."""
    if isinstance(margin, bool) or not isinstance(margin, int | float) \
            or not 0 < margin <= MAX_MARGIN:
        p.append(f"equivalence_margin = {margin!r}: allowed: a number in (0, {MAX_MARGIN}] in "
                 "units of the metric (0.01 = 1 point; shipped specs use at most 0.02)")
        return DEFAULT_MARGIN
    return float(margin)


def _zip_axes(data: dict[str, Any], axes: list[tuple[str, ...]],
              values: list[tuple[tuple[Any, ...], ...]], wheres: list[str], p: list[str]
              ) -> None:
    """Append each valid [[zip]] group as one axis (its columns are the arms)."""
    zips = data.get("zip", [])
    if not isinstance(zips, list) or not all(isinstance(z, dict) for z in zips):
        p.append("zip: expected [[zip]] tables of equal-length lists")
        zips = []
    for i, group in enumerate(zips):
        ok = [_check_axis(f"zip[{i}].{k}", k, v, p, distinct=False) for k, v in group.items()]
        lengths = {len(v) for v in group.values() if isinstance(v, list)}
        if len(lengths) > 1:
            p.append(f"zip[{i}]: lists must have equal lengths, got "
                     + ", ".join(f"{k}={len(v)}" for k, v in group.items()))
        elif group and all(ok):
            columns = tuple(zip(*group.values(), strict=True))
            if len({json.dumps(c) for c in columns}) != len(columns):
                p.append(f"zip[{i}]: two columns have the same values; each column is one arm")
            axes.append(tuple(group))
            values.append(columns)
            wheres.append(f"zip[{i}]")
        elif not group:
            p.append(f"zip[{i}]: empty group; give two or more axes that vary together")


def _baseline(data: dict[str, Any], axes: list[tuple[str, ...]],
              values: list[tuple[tuple[Any, ...], ...]], p: list[str]) -> dict[str, Any]:
    """The baseline arm: axis values that must exist among the axes'."""
    baseline = data.get("baseline", {})
    if not isinstance(baseline, dict):
        p.append(f"baseline = {baseline!r}: expected a table of axis values, e.g. "
                 "baseline = { freeze_layers = 0 }")
        return {}
    names = [k for axis in axes for k in axis]
    for key, value in baseline.items():
        axis = next((i for i, a in enumerate(axes) if key in a), None)
        if axis is None:
            axes_text = ", ".join(names) or "none"
            p.append(f"baseline.{key}: not an axis of this spec; axes: {axes_text}")
        elif problem := value_problem(key, value, [v[axes[axis].index(key)]
                                                   for v in values[axis]]):
            p.append(problem)
    return baseline


def resource_problems(resources: dict[str, Any]) -> list[str]:
    """Per-trial Ray resources: `num_gpus` a fraction in [0, 1] (trials share a GPU) or a whole
    number (Ray's rule), `num_cpus` a number >= 0. Shared by specs and the CLI options."""
    p = []
    for key, value in resources.items():
        if key not in RESOURCE_KEYS:
            p.append(f"{key}: unknown key; allowed: {', '.join(RESOURCE_KEYS)}")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            p.append(f"{key} = {value!r}: expected a number")
        elif not math.isfinite(value):
            p.append(f"{key} = {value!r}: expected a finite number")
        elif key == "num_gpus" and not (0 <= value <= 1 or value == int(value) > 1):
            p.append(f"num_gpus = {value!r}: allowed: a fraction in [0, 1] or a whole number")
        elif key == "num_cpus" and not value >= 0:
            p.append(f"num_cpus = {value!r}: allowed: a number >= 0")
    return p


def _baseline_zip_problems(baseline: dict[str, Any], axes: tuple[tuple[str, ...], ...],
                           values: tuple[tuple[tuple[Any, ...], ...], ...], wheres: list[str]
                           ) -> list[str]:
    """A baseline naming several keys of one [[zip]] group must match one of its columns
    (each key alone may be among its values while no arm has them together)."""
    problems = []
    for keys, columns, where in zip(axes, values, wheres, strict=True):
        named = {k: baseline[k] for k in keys if k in baseline}
        if len(named) < 2 or not all(any(c[keys.index(k)] == v for c in columns)
                                     for k, v in named.items()):
            continue  # one key, or a value not on the axis at all (reported above)
        if not any(all(c[keys.index(k)] == v for k, v in named.items()) for c in columns):
            shown = ", ".join(f"{k} = {v!r}" for k, v in named.items())
            problems.append(f"baseline: {shown} matches no arm of {where}; its arms: "
                            + "; ".join(make_id(dict(zip(keys, c, strict=True)))
                                        for c in columns))
    return problems


def _table(data: dict[str, Any], key: str, p: list[str]) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        p.append(f"{key}: expected a [{key}] table")
        return {}
    return value


def _check_setting(where: str, key: str, value: Any, p: list[str]) -> bool:
    if key not in FIELDS:
        p.append(f"{where}: {unknown_key_message(key)}")
        return False
    ok, _, why = coerce(key, value)
    if not ok:
        p.append(f"{where}: {why}")
    return ok


def _check_axis(where: str, key: str, vals: Any, p: list[str], distinct: bool = True) -> bool:
    if key not in FIELDS:
        p.append(f"{where}: {unknown_key_message(key)}")
        return False
    if not isinstance(vals, list):
        p.append(f"{where} = {vals!r}: an axis must be a list of values")
        return False
    if not vals:
        p.append(f"{where}: empty axis; give at least one value")
        return False
    ok = all([_check_setting(f"{where}[{i}]", key, v, p) for i, v in enumerate(vals)])
    if ok and distinct and len({json.dumps(v) for v in vals}) != len(vals):
        p.append(f"{where} = {vals!r}: values must be distinct")
        return False
    return ok


def _id_clashes(where: str, keys: tuple[str, ...], columns: tuple[tuple[Any, ...], ...]
                ) -> list[str]:
    """Values of one axis that give the same id (equal numbers such as 1 and 1.0), or the same
    results file name (the store writes characters other than letters, digits and `=,._+-`
    as `_`). Values that are plainly the same are reported by the distinctness checks."""
    problems: list[str] = []
    by_id: dict[str, tuple[Any, ...]] = {}
    by_file: dict[str, tuple[Any, ...]] = {}
    for column in columns:
        part = make_id(dict(zip(keys, column, strict=True)))
        file = f"{file_stem(part)}.json"
        first = by_id.setdefault(part, column)
        other = by_file.setdefault(file, column)
        if json.dumps(first) != json.dumps(column):
            why = "they are equal; list the value once" if first == column \
                else "use values that read apart"
            problems.append(f"{where}: values {_show(first)} and {_show(column)} give the same "
                            f"id {part!r}; {why}")
        elif json.dumps(other) != json.dumps(column):
            problems.append(f"{where}: values {_show(other)} and {_show(column)} give the same "
                            f"results file name {file!r}; use values that differ in a letter, "
                            "a digit or one of = , . _ + -")
    return problems


def _show(column: tuple[Any, ...]) -> str:
    return repr(column[0]) if len(column) == 1 else repr(column)


def _grid_problems(spec: Spec) -> list[str]:
    problems: list[str] = []
    files: dict[str, str] = {}  # results file stem -> the first arm stored under it
    points: list[tuple[str, Config]] = []
    for combo in itertools.product(*spec.values):
        point = {k: v for keys, vals in zip(spec.axes, combo, strict=True)
                 for k, v in zip(keys, vals, strict=True)}
        arm = make_id(point)
        stem = file_stem(arm)
        if stem in files:  # only values holding ',' or '=' get here past _id_clashes
            problems.append(f"[{arm}]: stored in the same results file {stem}.json as "
                            f"[{files[stem]}]; axis values must not contain ',' or '='")
        files.setdefault(stem, arm)
        values = {**spec.base, **point, "seed": spec.seeds[0]}
        try:
            cfg = Config.from_dict(values)
        except ConfigError as exc:
            problems += [f"[{arm}] {m}" for m in exc.problems
                         if not any(m in q for q in problems)]
            continue
        problems += [f"[{arm}] {m}" for m in model_problems(cfg) + task_problems(cfg)
                     if not any(m in q for q in problems)]
        points.append((arm, cfg))
    return problems + grid_data_problems(points)


def task_problems(cfg: Config) -> list[str]:
    """An unknown task, or a `metric_for_best` its kind (classification or NER) does not
    report: the core's own checks, made here so that no trial fails for them at run time."""
    from bertft.data import task_kind
    from bertft.metrics import metric_problem

    try:
        kind = task_kind(cfg.data.task)
    except DataError as exc:
        return [str(exc)]
    problem = metric_problem(cfg.loop.metric_for_best, kind)
    return [problem] if problem else []


def model_problems(cfg: Config) -> list[str]:
    """Checks that need the model's shape (its layer count, its position limit), read from a
    config.json on this machine only (no network: a model that is not here is checked when its
    trial runs)."""
    from bertft.limits import position_problems
    from bertft.models import local_config, local_depth

    shape = local_config(cfg.model.name)
    if shape is None:
        return []
    problems = position_problems(cfg.tokens.max_length, cfg.batch, shape, cfg.model.name)
    n = local_depth(cfg.model.name)
    if n is None:
        return problems
    try:
        cfg.model.freezing(n)
    except ConfigError as exc:
        return exc.problems + problems
    return problems


__all__ = ["SEED_LIMIT", "Spec", "SpecError", "Trial", "expand", "load_spec", "make_id"]
