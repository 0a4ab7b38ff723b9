"""Run one trial through the core and turn what happened into a stored result record.

A trial never takes the grid down: a diverged loss or any exception (out-of-memory included)
becomes a `diverged` / `failed` record with its reason and last metrics.
"""

from __future__ import annotations

import datetime as dt
import math
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bertft.results import SpecInfo, TrialResult
from bertft.ablation.spec import Spec, Trial
from bertft.cache import Cache
from bertft.config import Config
from bertft.data import Splits, load_task, splits_nbytes, task_kind
from bertft.errors import BertftError, TrialDiverged
from bertft.kinds import kind_of
from bertft.metrics import entity_counts
from bertft.trackers import Trackers
from bertft.train import RunResult, fit

N_ERRORS = 20  # most confident wrong validation predictions kept for the report


def load_splits(cfg: Config, cache: Cache) -> Splits:
    """The trial's data; trials with equal `data` sections share one loaded copy in `cache`
    (an executor's: `bertft.ablation.executors.Session`)."""
    return cache.get_or_put("splits", cfg.data, lambda: load_task(cfg.data), splits_nbytes)


def spec_info(spec: Spec) -> SpecInfo:
    """The spec's facts for the record; its path relative to the working directory when it
    lies below it, so reports do not show one machine's absolute paths."""
    path = Path(spec.path).resolve()
    try:
        shown = str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        shown = spec.path
    return SpecInfo(name=spec.name, description=spec.description, file=shown,
                    axes=spec.axis_names, baseline=spec.baseline, seeds=spec.seeds,
                    equivalence_margin=spec.equivalence_margin, min_seeds=spec.min_seeds,
                    pilot_seeds=spec.pilot_seeds)


def run_trial(trial: Trial, spec: Spec, measure=None, checkpoint_dir: Path | None = None,
              tracking_root: Path | None = None, cache: Cache | None = None) -> TrialResult:
    """Train and evaluate one trial. `measure(fn)` may wrap the training call (pytest-benchmark
    does, to time it); it must call `fn` once and return its value. `checkpoint_dir` is where
    per-epoch checkpoints go when the trial's config sets `checkpoint_every_epoch`. The trial
    is one run of each tracker in `report_to`, under `tracking_dir` or else `tracking_root`
    (the results folder). `cache`: what trials of one executor share (loaded splits, tokenized
    data, frozen-prefix states); None: a cache of this trial's own."""
    start = time.perf_counter()
    cache = cache if cache is not None else Cache()
    trackers = Trackers.open(trial.config.process, tracking_root, spec.name, trial.trial_id,
                             trial.config.to_dict())
    result = _run_trial(trial, spec, measure, checkpoint_dir, trackers.log_row, cache,
                        trackers.log_row if trial.config.process.report_to else None)
    trackers.finish({"validation": result.validation, "test": result.test},
                    result.environment, ok=result.status == "passed")
    if trial.config.process.report_to:  # wall time with the trackers', to measure their cost
        result.timing.update(tracker_seconds=trackers.seconds,
                             wall_seconds=time.perf_counter() - start)
    return result


def _run_trial(trial: Trial, spec: Spec, measure, checkpoint_dir: Path | None,
               on_log: Callable[[dict[str, Any]], None], cache: Cache,
               on_step: Callable[[dict[str, Any]], None] | None = None) -> TrialResult:
    start = time.perf_counter()
    base = dict(spec=spec_info(spec), trial_id=trial.trial_id, arm_id=trial.arm_id,
                overrides=trial.overrides, seed=trial.seed, config=trial.config.to_dict(),
                config_hash=trial.config.hash(), created=_now(),
                kind=task_kind(trial.config.data.task), role=trial.role)
    last: list[dict[str, Any]] = []
    try:
        splits = load_splits(trial.config, cache)

        def log(row: dict[str, Any]) -> None:
            last.append(row)
            on_log(row)

        def train() -> RunResult:
            return fit(trial.config, splits=splits, on_log=log, checkpoint_dir=checkpoint_dir,
                       cache=cache, on_step=on_step)

        run = measure(train) if measure is not None else train()
        if bad := nonfinite_metrics(run):
            raise TrialDiverged(f"non-finite metrics ({', '.join(bad)})")
    except TrialDiverged as exc:
        return TrialResult(**base, status="diverged", error=str(exc), history=tuple(last),
                           timing={"wall_seconds": time.perf_counter() - start})
    except BertftError:
        raise  # a usage error is the user's to fix, not a trial outcome
    except Exception as exc:  # noqa: BLE001 - isolation: any other fault fails this trial only
        reason = f"{type(exc).__name__}: {exc}".strip()
        tb = traceback.format_exc(limit=3)
        return TrialResult(**base, status="failed", error=f"{reason}\n{tb}"[:4000],
                           history=tuple(last),
                           timing={"wall_seconds": time.perf_counter() - start})
    return TrialResult(
        **base, status="passed", label_names=run.label_names, data=run.data,
        history=tuple(run.history), best=run.best, validation=run.validation, test=run.test,
        errors=tuple(confident_errors(run, splits)),
        predictions=stored_predictions(run, bool(trial.config.loop.ner_strict)),
        timing={**run.timing, "wall_seconds": time.perf_counter() - start},
        environment=run.environment,
    )


def nonfinite_metrics(run: RunResult) -> list[str]:
    """Names of the final scalar metrics that are NaN or infinite (a trial that has any is
    diverged, never passed)."""
    return [f"{split}.{k}={v}" for split, metrics in (("validation", run.validation),
                                                      ("test", run.test))
            for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]


def _label_rows(preds: dict[str, list], names: tuple[str, ...], ner_strict: bool
                ) -> dict[str, list]:
    return {"pred": [int(p) for p in preds["pred"]], "label": [int(g) for g in preds["label"]],
            "confidence": [round(float(c), 3) for c in preds["confidence"]]}


def _entity_rows(preds: dict[str, list], names: tuple[str, ...], ner_strict: bool
                 ) -> dict[str, list]:
    return entity_counts([[names[t] for t in s] for s in preds["label"]],
                         [[names[t] for t in s] for s in preds["pred"]], ner_strict)


COMPACT = {"labels": _label_rows, "entity_counts": _entity_rows}
"""How each form of stored predictions (`TaskKind.predictions`) is written."""


def stored_predictions(run: RunResult, ner_strict: bool = False) -> dict[str, dict[str, list]]:
    """Per-example predictions of each evaluated split, compact (see `TrialResult.predictions`):
    class ids and the predicted class's probability (3 decimals), or for NER the entity
    TP / FP / FN of every sentence, counted in the seqeval mode the split was scored in."""
    compact = COMPACT[kind_of(run.kind).predictions]
    return {split: compact(preds, run.label_names, ner_strict)
            for split, preds in run.predictions.items() if preds and preds.get("pred")}


def confident_errors(run: RunResult, splits: Splits, n: int = N_ERRORS) -> list[dict[str, Any]]:
    """The most confident wrong validation predictions, with their text."""
    preds = run.predictions.get("validation", {})
    names = run.label_names
    rows: list[dict[str, Any]] = []
    for i, (p, g, c) in enumerate(zip(preds.get("pred", []), preds.get("label", []),
                                      preds.get("confidence", []), strict=True)):
        example = splits.validation[i]
        if not kind_of(run.kind).token_level:
            if p != g:
                text = example.text or ""
                if example.text_pair:
                    text += " [SEP] " + example.text_pair
                rows.append({"text": text, "gold": names[g], "pred": names[p],
                             "confidence": round(float(c), 4)})
            continue
        words = list(example.tokens or ())
        for j, (pt, gt, ct) in enumerate(zip(p, g, c, strict=True)):
            if pt != gt and j < len(words):
                marked = words[:j] + [f"[[{words[j]}]]"] + words[j + 1:]
                rows.append({"text": " ".join(marked), "gold": names[gt], "pred": names[pt],
                             "confidence": round(float(ct), 4)})
    rows.sort(key=lambda r: -r["confidence"])
    return rows[:n]


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
