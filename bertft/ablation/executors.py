"""Executors: where a session's trials run. The plugin asks its executor three things:

- `submit(jobs)`: start these trials now, ahead of their turn (an executor whose trials run
  where they are asked for ignores it; `submits_ahead` tells the plugin whether to bother);
- `result(trial, spec, measure)`: the trial's result, running it or waiting for it; the
  plugin stores it, so resume, reports and the regression gate work the same on every executor;
- `cancel()`: stop what nobody waits for any more and release what the executor holds (the
  end of a session, `-x`, Ctrl-C).

An executor declares its own command-line options (`options`, shown as
`--bertft-<name>-<option>`), checks them (`option_problems`), and may set up the process it
runs in (`prepare`). The plugin picks one by name from its registry and makes it on first use
through a `Session`, which also owns the cache the session's local trials share. docs/scale-out.md
sketches a Slurm executor.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from bertft.ablation.runner import run_trial
from bertft.ablation.spec import Spec, Trial
from bertft.ablation.store import ResultStore
from bertft.cache import Cache
from bertft.results import TrialResult

Measure = Callable[[Callable[[], Any]], Any] | None
"""Wraps the training call once (pytest-benchmark times it); None: call it plainly."""


@dataclass(frozen=True)
class Option:
    """A setting of one executor, given on the command line as --bertft-<executor>-<name>."""

    name: str                     # e.g. num_gpus -> --bertft-ray-num-gpus
    help: str
    type: Callable[[str], Any] = str
    default: Any = None
    metavar: str = "V"


class Executor(ABC):
    """Runs trials somewhere and hands back their results (see the module docstring)."""

    name: ClassVar[str]
    summary: ClassVar[str]        # one line for --help
    options: ClassVar[tuple[Option, ...]] = ()
    submits_ahead: ClassVar[bool] = False  # True: give it every pending trial up front

    @classmethod
    def option_problems(cls, settings: Mapping[str, Any]) -> list[str]:
        """What is wrong with these option values, each message starting with the option's
        name; checked whatever executor a session chose."""
        return []

    @classmethod
    def prepare(cls, worker: str | None) -> None:
        """Set up this process (`worker`: its pytest-xdist id, e.g. gw1, if it is one)."""
        return None

    def __init__(self, results: Path, cache: Cache, settings: Mapping[str, Any]) -> None:
        self.results, self.cache, self.settings = results, cache, dict(settings)

    def submit(self, jobs: Sequence[tuple[Trial, Spec]]) -> None:
        """Start these trials ahead of their turn (default: nothing; `result` runs them)."""
        return None

    @abstractmethod
    def result(self, trial: Trial, spec: Spec, measure: Measure = None) -> TrialResult:
        """This trial's result: run it now, or wait for it if it was submitted."""

    def cancel(self) -> None:
        """Stop the trials nobody waits for and release what this executor holds."""
        return None


class LocalExecutor(Executor):
    """Trials one after another in this process (on a pytest-xdist worker: in that worker),
    sharing the session's cache of loaded data, tokenized features and frozen-prefix states."""

    name = "local"
    summary = "in this process"

    def result(self, trial: Trial, spec: Spec, measure: Measure = None) -> TrialResult:
        store = ResultStore(self.results)
        return run_trial(trial, spec, measure, store.checkpoint_dir(spec.name, trial.trial_id),
                         store.root, cache=self.cache)


class GpusExecutor(LocalExecutor):
    """One pytest-xdist worker per GPU (`-n N`): worker gwN sees only GPU N of those visible to
    the parent, and runs its trials as the local executor does."""

    name = "gpus"
    summary = "one pytest-xdist worker per GPU (with -n)"

    @classmethod
    def prepare(cls, worker: str | None) -> None:
        if worker:
            import os

            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            gpus = visible.split(",") if visible else None
            if gpus is None:
                import torch

                gpus = [str(i) for i in range(torch.cuda.device_count())] or ["0"]
            os.environ["CUDA_VISIBLE_DEVICES"] = gpus[int(worker.removeprefix("gw")) % len(gpus)]


class Session:
    """What the trials of one pytest session share: the cache of loaded data (also used for
    data fingerprints), and the executor, made on first use (a session that reuses every
    stored result starts no Ray) and cancelled by `close`."""

    def __init__(self, executor: type[Executor], settings: Mapping[str, Any], results: Path
                 ) -> None:
        self.cache = Cache()
        self._make = lambda: executor(results, self.cache, settings)
        self._executor: Executor | None = None

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            self._executor = self._make()
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            executor, self._executor = self._executor, None
            executor.cancel()


__all__ = ["Executor", "GpusExecutor", "LocalExecutor", "Measure", "Option", "Session"]
