"""Experiment trackers: `report_to = ["tensorboard", "mlflow", "wandb"]`.

One run per `bertft train` or ablation trial, named by the trial id (or the run directory) and
grouped by the spec name (MLflow experiment, W&B group, TensorBoard folder). A run logs the
flattened resolved config as parameters, every history row as metrics at its step, the final
training loss every `log_every` optimizer steps (`train/loss`, the mean over those steps), the
final validation and test metrics (per class and per entity type too) and the environment.
A log folder (TensorBoard) is named from the sanitised spec name and trial id
(`bertft.names.folder_name`, the store's sanitiser), so it stays inside the tracking folder.

The libraries are optional extras, imported only when asked for; `check_installed` reports a
missing one before any training. A tracker that fails later (server gone, disk full) warns once
and stops logging that run: it never fails or loses the trial. `seconds` is the time spent in
tracker calls, stored with the result (`timing.tracker_seconds`) so overhead is measured on
every run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import time
import warnings
from pathlib import Path
from typing import Any

from bertft.errors import BertftError
from bertft.names import folder_name
from bertft.sections import TRACKERS

MODULES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}
PARAM_LIMIT = 250  # MLflow's oldest servers' limit on a parameter value (newer: 6000)
BATCH = 100  # MLflow: at most 100 params per log_batch
MESSAGE_LIMIT = 2000  # a failure's message kept whole up to here (the hint is often at its end)
_METRIC_UNSAFE = re.compile(r"[^\w.\- ]")  # what MLflow allows in a metric name, less its "/"


def check_installed(names: tuple[str, ...] | list[str]) -> None:
    """One BertftError naming every asked-for tracker whose library is not installed."""
    missing = [n for n in names if importlib.util.find_spec(MODULES[n]) is None]
    if missing:
        extras = ",".join(missing)
        raise BertftError(f"report_to: {', '.join(missing)} not installed; install the extra "
                          f"(pip install 'bertft[{extras}]') or remove it from report_to "
                          f"(known trackers: {', '.join(TRACKERS)})")


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """{"a": {"b": 1}} -> {"a.b": "1"}; values as short strings (lists as JSON)."""
    out: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            text = json.dumps(value) if isinstance(value, list | tuple) else str(value)
            out[name] = text if len(text) <= PARAM_LIMIT else text[:PARAM_LIMIT - 3] + "..."
    return out


def numeric(row: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers of a history row or metrics dict (no bools, lists or strings); a nested
    dict of numbers (per-class figures: `{"per_class": {"neg": {"f1": 0.5}}}`) gives
    `per_class/neg/f1`, a nested name's characters that trackers refuse replaced by `_`."""
    out: dict[str, float] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update(numeric({_METRIC_UNSAFE.sub("_", str(k)): v for k, v in value.items()},
                               f"{prefix}{key}/"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out


def failure_text(exc: BaseException) -> str:
    """A tracker library's message on one line and whole (MLflow ends its refusal of a file
    store with the setting that allows it): only a message past MESSAGE_LIMIT characters is
    shortened, in its middle, so that its start and its hint both stay."""
    text = " ".join(str(exc).split())
    if len(text) > MESSAGE_LIMIT:
        half = MESSAGE_LIMIT // 2
        text = f"{text[:half]} [...] {text[-half:]}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _TensorBoard:
    def __init__(self, root: Path, group: str, name: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(root / "tensorboard" / folder_name(group)
                                                / folder_name(name)))

    def params(self, values: dict[str, str], title: str) -> None:
        table = "\n".join(f"| {k} | {v} |" for k, v in values.items())
        self.writer.add_text(title, "| name | value |\n|---|---|\n" + table)

    def log(self, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)

    def finish(self, ok: bool) -> None:
        self.writer.close()


class _MLflow:
    def __init__(self, root: Path, group: str, name: str) -> None:
        from mlflow.tracking import MlflowClient

        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:  # a local store beside the results; mlflow 3 asks to opt in to files
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = (root / "mlruns").resolve().as_uri()
        self.client = MlflowClient(uri)
        exp = self.client.get_experiment_by_name(group)
        exp_id = exp.experiment_id if exp else self.client.create_experiment(group)
        self.run_id = self.client.create_run(exp_id, run_name=name).info.run_id

    def params(self, values: dict[str, str], title: str) -> None:
        from mlflow.entities import Param

        items = [Param(k if title == "config" else f"{title}.{k}", v)
                 for k, v in values.items()]
        for i in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, params=items[i:i + BATCH])

    def log(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step)
                                                    for k, v in metrics.items()])

    def finish(self, ok: bool) -> None:
        self.client.set_terminated(self.run_id, "FINISHED" if ok else "FAILED")


class _WandB:
    def __init__(self, root: Path, group: str, name: str) -> None:
        import wandb

        (root / "wandb").mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "bertft"), group=group,
                              name=name, dir=str(root), reinit="create_new",
                              settings=wandb.Settings(quiet=True, console="off"))

    def params(self, values: dict[str, str], title: str) -> None:
        self.run.config.update(values if title == "config" else {title: values})

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def finish(self, ok: bool) -> None:
        self.run.finish(exit_code=0 if ok else 1)


BACKENDS = {"tensorboard": _TensorBoard, "mlflow": _MLflow, "wandb": _WandB}


class Trackers:
    """The asked-for trackers of one run; every call is guarded (see the module docstring)."""

    def __init__(self, names: tuple[str, ...], root: Path, group: str, name: str,
                 config: dict[str, Any]) -> None:
        self.seconds = 0.0
        self.step = 0
        self.live: dict[str, Any] = {}
        for tracker in names:
            self._guard(tracker, lambda t=tracker: self.live.__setitem__(
                t, BACKENDS[t](root, group, name)))  # report_to names each once (ProcessConfig)
        self._params(flatten(config), "config")

    @classmethod
    def open(cls, process: Any, root: Path | None, group: str, name: str,
             config: dict[str, Any]) -> Trackers:
        """The runs of `process.report_to` under `process.tracking_dir`, else `root`, else
        `.` (no tracker, no import, when report_to is empty); `config`: the flat settings."""
        base = Path(process.tracking_dir or root or ".")
        return cls(tuple(process.report_to), base, group, name, config)

    def _params(self, values: dict[str, str], title: str) -> None:
        for tracker, backend in list(self.live.items()):
            self._guard(tracker, lambda b=backend: b.params(values, title))

    def _guard(self, tracker: str, call) -> None:
        start = time.perf_counter()
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - a tracker never fails the run
            backend = self.live.pop(tracker, None)
            if backend is not None:  # close its run as failed: no run stays RUNNING forever
                try:
                    backend.finish(False)
                except Exception:  # noqa: BLE001, S110 - it failed already; warned below
                    pass
            warnings.warn(f"report_to: {tracker} failed ({failure_text(exc)}); it logs "
                          "nothing more for this run, whose result is stored as usual",
                          stacklevel=3)
        finally:
            self.seconds += time.perf_counter() - start

    def log_row(self, row: dict[str, Any]) -> None:
        """One history row as metrics at its optimizer step."""
        self.step = int(row.get("step", self.step))
        metrics = numeric({k: v for k, v in row.items() if k not in ("step",)})
        for tracker, backend in list(self.live.items()):
            self._guard(tracker, lambda b=backend: b.log(metrics, self.step))

    def finish(self, final: dict[str, dict[str, Any]], environment: dict[str, Any] | None = None,
               ok: bool = True) -> None:
        """Final metrics (`{"validation": {...}, "test": {...}}`, logged at the last step as
        `validation/accuracy`..., per class as `validation/per_class/<name>/f1`) and the
        environment (as parameters), then close every run."""
        if environment:
            self._params(flatten(environment), "environment")
        metrics: dict[str, float] = {}
        for section, values in final.items():
            metrics.update(numeric(values, f"{section}/"))
        for tracker, backend in list(self.live.items()):
            self._guard(tracker, lambda b=backend: b.log(metrics, self.step))
            if tracker in self.live:  # a failed log closed the run already (as failed)
                self._guard(tracker, lambda b=backend: b.finish(ok))
        self.live.clear()
