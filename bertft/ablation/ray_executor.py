"""The `ray` executor: every trial of a session is one Ray task, on a cluster you already run.

    pytest ablations --bertft-executor ray --bertft-ray-address auto
    bertft ablate --executor ray --ray-address auto

pytest runs items one after another, so the plugin submits every pending trial up front
(`submit`, at the end of collection) and each item's `run` then waits for its own task. A worker
runs `run_trial` and returns the `TrialResult` as plain JSON data; the driver turns it back into
a `TrialResult` and the plugin writes it to the results store, so resume, reports and gates
work unchanged.

Data and models reach the workers without redoing shared work: a worker process keeps loaded
datasets in memory between its trials (the cache of its task function, `worker_task`), and
tokenization is cached on disk
under `$BERTFT_CACHE_DIR`. `BERTFT_*` and `HF_*` variables of the driver are passed to every task
(`runtime_env`), so on a multi-node cluster point `BERTFT_CACHE_DIR` (and `HF_HOME`) at a shared
path. Relative paths in a spec resolve against the driver's working directory, which the task
enters when it exists on the worker's node (a shared filesystem); otherwise use absolute paths.

Each task reserves `num_gpus` (a fraction shares a GPU) and `num_cpus`: the CLI/pytest options
when given, else the spec's `[resources]` table, else 1 GPU when the cluster has GPUs (0
otherwise) and 1 CPU (`resolve_resources`). Ray sets
`OMP_NUM_THREADS` to `num_cpus`, so a CPU trial trains with that many threads unless the spec
sets `num_threads`. A worker that dies (crash, out of memory, lost node) is retried
`max_retries` times by Ray, then its trial is stored as `failed` and the grid continues.
With `checkpoint_every_epoch`, a task checkpoints into the folder the local runner uses
(`<results>/<spec>/.checkpoints/<trial>`, relative like data paths), so on a shared filesystem
a retried task resumes from its last finished epoch.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bertft.ablation.executors import Executor, Measure, Option
from bertft.ablation.runner import spec_info
from bertft.ablation.spec import Spec, Trial, resource_problems
from bertft.ablation.store import ResultStore
from bertft.cache import Cache
from bertft.data import task_kind
from bertft.errors import BertftError, ConfigError
from bertft.results import TrialResult

MISSING_RAY = "executor 'ray' needs Ray: pip install 'bertft[ray]'"
FORWARDED_ENV_PREFIXES = ("BERTFT_", "HF_")  # cache, data and model locations for the workers


def _import_ray():
    try:
        import ray
    except ImportError:
        raise BertftError(MISSING_RAY) from None
    return ray


def worker_task() -> Callable[..., dict[str, Any]]:
    """The function each Ray task runs (`_run_remote`), with a cache of its own: a worker
    process unpickles the function once and keeps it, so the cache (loaded datasets,
    frozen-prefix states) serves every trial that worker runs; it is empty when pickled."""
    cache: Cache | None = None

    def run_remote(trial: Trial, spec: Spec, cwd: str, checkpoint_dir: str | None = None,
                   tracking_root: str | None = None) -> dict[str, Any]:
        nonlocal cache
        cache = cache if cache is not None else Cache()
        return _run_remote(trial, spec, cwd, checkpoint_dir, tracking_root, cache)
    return run_remote


def _run_remote(trial: Trial, spec: Spec, cwd: str, checkpoint_dir: str | None = None,
                tracking_root: str | None = None, cache: Cache | None = None
                ) -> dict[str, Any]:
    """Body of a Ray task: one trial, returned as plain JSON data (the driver stores it).
    `checkpoint_dir`: the local runner's, relative to `cwd` when the results dir is; trackers
    log from here, under the same run names and `tracking_root` as a local trial."""
    import ray

    from bertft.ablation.runner import run_trial

    if not ray.get_gpu_ids():  # Ray leaves the GPUs visible to a task that reserved none
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    if os.path.isdir(cwd):  # relative data paths mean the same files as on the driver
        os.chdir(cwd)
    return run_trial(trial, spec, checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir
                     else None, tracking_root=Path(tracking_root) if tracking_root
                     else None, cache=cache).to_json()


def _key(trial: Trial) -> tuple[str, str, str]:
    return trial.spec, trial.trial_id, trial.config.hash()


class RayExecutor(Executor):
    """Submits trials as Ray tasks and hands back their results, one `result` per pytest item.
    Settings (`options`): address, num_gpus, num_cpus, max_retries."""

    name = "ray"
    summary = "Ray tasks"
    submits_ahead = True
    options = (
        Option("address", "Ray cluster address ('auto' for a running cluster); default: a "
               "local Ray.", metavar="ADDR"),
        Option("num_gpus", "GPUs per trial with the ray executor (fractions share a GPU); "
               "overrides the spec's [resources] num_gpus; default: 1 if the cluster has GPUs, "
               "else 0.", float, metavar="N"),
        Option("num_cpus", "CPUs per trial with the ray executor; overrides the spec's "
               "[resources] num_cpus; default: 1.", float, metavar="N"),
        Option("max_retries", "Ray retries of a trial whose worker died (default: 1); then the "
               "trial is stored as failed.", int, 1, metavar="N"),
    )

    @classmethod
    def option_problems(cls, settings: Mapping[str, Any]) -> list[str]:
        """Resources that are not finite numbers (nan, inf) or out of range."""
        return resource_problems({k: settings[k] for k in ("num_gpus", "num_cpus")
                                  if settings.get(k) is not None})

    def __init__(self, results: Path | None, cache: Cache, settings: Mapping[str, Any]
                 ) -> None:
        """`results`: the store (tasks checkpoint into its per-trial folders); `cache`: unused
        here (each worker keeps its own, `worker_task`); `settings`: the options' values,
        defaults for those not given."""
        settings = {o.name: o.default for o in self.options} | dict(settings)
        address, num_gpus, num_cpus, max_retries = (
            settings["address"], settings["num_gpus"], settings["num_cpus"],
            settings["max_retries"])
        check_settings(num_gpus, num_cpus, max_retries)
        super().__init__(results, cache, settings)  # type: ignore[arg-type]
        self.address = address
        ray = _import_ray()
        self._initialised_ray = not ray.is_initialized()
        if self._initialised_ray:
            env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}
            # A local Ray (no address) lives as long as this session: no dashboard to start.
            extra = {"include_dashboard": False} if address is None else {}
            # Worker logs stay in Ray's session folder (/tmp/ray/session_latest/logs): they
            # would interleave with pytest's output; a failed trial stores its own traceback.
            ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False,
                     **extra)
        self.cluster_gpus = float(ray.cluster_resources().get("GPU", 0))
        self.num_gpus, self.num_cpus, self.max_retries = num_gpus, num_cpus, max_retries
        self._remote = ray.remote(worker_task())
        self._warned: set[float] = set()
        self._refs: dict[tuple[str, str, str], Any] = {}
        self._submitted: dict[tuple[str, str, str], float] = {}

    def resources(self, spec: Spec) -> tuple[float, float]:
        gpus, cpus = resolve_resources(self.num_gpus, self.num_cpus, spec.resources,
                                       self.cluster_gpus)
        if gpus > self.cluster_gpus and gpus not in self._warned:
            self._warned.add(gpus)  # not an error: an autoscaling cluster may add GPUs
            warnings.warn(f"each trial of {spec.name} asks for {gpus:g} GPU(s) but the Ray "
                          f"cluster has {self.cluster_gpus:g} now; trials wait until such a "
                          "node joins", stacklevel=2)
        return gpus, cpus

    def submit(self, jobs: Sequence[tuple[Trial, Spec]]) -> None:
        """Start a task for each trial not already running."""
        for trial, spec in jobs:
            key = _key(trial)
            if key not in self._refs:
                gpus, cpus = self.resources(spec)
                task = self._remote.options(num_gpus=gpus, num_cpus=cpus,
                                            max_retries=self.max_retries)
                self._refs[key] = task.remote(trial, spec, os.getcwd(),
                                              self.checkpoint_dir(trial, spec),
                                              str(self.results) if self.results else None)
                self._submitted[key] = time.time()

    def checkpoint_dir(self, trial: Trial, spec: Spec) -> str | None:
        """The same per-trial checkpoint folder the local runner uses."""
        if self.results is None:
            return None
        return str(ResultStore(self.results).checkpoint_dir(spec.name, trial.trial_id))

    def result(self, trial: Trial, spec: Spec, measure: Measure = None) -> TrialResult:
        """Wait for this trial's task (submitting it now if it was not) and return its result.
        `measure` can only time the wait here; the result's own `timing` is what counts."""
        ray = _import_ray()
        key = _key(trial)
        self.submit([(trial, spec)])
        ref = self._refs.pop(key)
        submitted = self._submitted.pop(key)
        try:
            data = measure(lambda: ray.get(ref)) if measure is not None else ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, BertftError):
                raise exc.cause from None  # a usage error is the user's to fix, as locally
            return failed_result(trial, spec, exc, submitted)
        except ray.exceptions.RayError as exc:  # worker crashed or killed (OOM), node lost
            return failed_result(trial, spec, exc, submitted)
        return TrialResult.from_json(data)

    def cancel(self) -> None:
        """Cancel tasks nobody waits for any more (e.g. after `-x`), then disconnect from Ray
        (a local Ray stops; a cluster keeps running)."""
        ray = _import_ray()
        for ref in self._refs.values():
            ray.cancel(ref, force=True)
        self._refs.clear()
        self._submitted.clear()
        if self._initialised_ray and ray.is_initialized():
            ray.shutdown()


def resolve_resources(num_gpus: float | None, num_cpus: float | None,
                      spec_resources: dict[str, float], cluster_gpus: float
                      ) -> tuple[float, float]:
    """(GPUs, CPUs) one trial reserves: the option when given, else the spec's [resources],
    else one GPU when the cluster has GPUs (none otherwise) and one CPU."""
    gpus = num_gpus if num_gpus is not None else spec_resources.get(
        "num_gpus", 1.0 if cluster_gpus > 0 else 0.0)
    cpus = num_cpus if num_cpus is not None else spec_resources.get("num_cpus", 1.0)
    return float(gpus), float(cpus)


def check_settings(num_gpus: float | None, num_cpus: float | None, max_retries: int) -> None:
    """All problems with the per-trial resources at once, before Ray starts."""
    given = {k: v for k, v in (("num_gpus", num_gpus), ("num_cpus", num_cpus)) if v is not None}
    p = resource_problems(given)
    if not max_retries >= 0:
        p.append(f"max_retries = {max_retries!r}: allowed: an integer >= 0")
    if p:
        raise ConfigError(p, "ray executor")


def failed_result(trial: Trial, spec: Spec, exc: BaseException, submitted: float
                  ) -> TrialResult:
    """A trial whose task died: stored as `failed` (retried on the next run), like the
    runner's record of an exception inside a trial."""
    reason = f"{type(exc).__name__}: {exc}".strip()
    tb = "".join(traceback.format_exception(exc, limit=3))
    return TrialResult(
        spec=spec_info(spec), trial_id=trial.trial_id, arm_id=trial.arm_id,
        overrides=trial.overrides, seed=trial.seed, config=trial.config.to_dict(),
        config_hash=trial.config.hash(), created=_now(), status="failed",
        kind=task_kind(trial.config.data.task), role=trial.role,
        error=f"{reason}\n{tb}"[:4000],
        timing={"wall_seconds": time.time() - submitted})  # includes time queued on Ray


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


__all__ = ["MISSING_RAY", "RayExecutor", "check_settings", "failed_result", "resolve_resources",
           "worker_task"]
