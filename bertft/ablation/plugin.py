"""pytest plugin: every trial of every spec in `ablations/*.toml` is one test item.

    pytest ablations/                                  # the whole suite
    pytest ablations/freezing.toml -k "seed=0"         # narrow with -k, -x, --lf as usual
    pytest ablations --bertft-pilot                    # the pilot seeds instead (plan)
    pytest ablations --bertft-set model=bert-base-uncased --bertft-data-dir ../shared/data

Registered through the `pytest11` entry point, so it works from any directory. Item ids read
`freezing.toml::freezing[freeze_layers=2,seed=1]`.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bertft.results import TrialResult
from bertft.ablation.runner import load_splits, spec_info
from bertft.ablation.adaptive import skip_reason
from bertft.ablation.executors import Executor, GpusExecutor, LocalExecutor, Session
from bertft.ablation.ray_executor import RayExecutor
from bertft.ablation.spec import (
    ROLES, SEED_LIMIT, Spec, SpecError, Trial, expand, load_spec,
)
from bertft.ablation.store import ResultStore
from bertft.config import parse_overrides
from bertft.errors import BertftError, ConfigError
from bertft.outputs import output_problem
from bertft.trackers import check_installed

EXECUTORS: dict[str, type[Executor]] = {
    cls.name: cls for cls in (LocalExecutor, GpusExecutor, RayExecutor)}


@dataclass(frozen=True)
class Options:
    overrides: dict[str, Any]
    results: Path
    rerun: bool
    executor: str                       # a name in EXECUTORS
    started: float
    executor_settings: dict[str, Any] = dataclasses.field(default_factory=dict)  # its options
    max_seeds: int | None = None        # --bertft-max-seeds: adaptive seeds up to this many
    role: str = "confirmation"          # --bertft-pilot: "pilot" (the specs' pilot_seeds)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bertft", "bertft ablations")
    group.addoption("--bertft-set", action="append", default=[], metavar="KEY=VALUE",
                    help="Override a base setting of every spec (repeatable).")
    group.addoption("--bertft-data-dir", default=None, metavar="DIR",
                    help="Local copies of standard tasks (sst2, imdb, conll2003).")
    group.addoption("--bertft-results", default="results", metavar="DIR",
                    help="Results store (default: results/).")
    group.addoption("--bertft-rerun", action="store_true",
                    help="Run trials again even when a stored result matches.")
    group.addoption("--bertft-executor", default="local", choices=tuple(EXECUTORS),
                    help="; ".join(f"{n}: {c.summary}" for n, c in EXECUTORS.items()) + ".")
    for cls in EXECUTORS.values():  # --bertft-<executor>-<option>: each executor's own
        for o in cls.options:
            group.addoption(_flag(cls, o.name), type=o.type, default=o.default,
                            metavar=o.metavar, help=o.help)
    group.addoption("--bertft-max-seeds", type=int, default=None, metavar="N",
                    help="Adaptive seeds: run up to N seeds per arm, adding seeds only to "
                         "arms whose comparison with the baseline is still undecided (a spec's "
                         "seed list becomes the minimum; seeds = {min, max} gets max = N).")
    group.addoption("--bertft-pilot", action="store_true",
                    help="Run each spec's pilot_seeds instead of its seeds (the confirmation): "
                         "the pilot's report plans the confirmation (docs/statistics.md).")


def _flag(cls: type[Executor], option: str) -> str:
    return f"--bertft-{cls.name}-{option.replace('_', '-')}"


def pytest_configure(config: pytest.Config) -> None:
    try:
        overrides = parse_overrides(config.getoption("bertft_set"), source="--bertft-set")
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    settings = {name: {o.name: config.getoption(_flag(cls, o.name)) for o in cls.options}
                for name, cls in EXECUTORS.items()}
    # every executor's options are checked whatever the executor: nan/inf must not wait for
    # a Ray run to be found
    if bad := [_flag(cls, p.partition(" ")[0]) + " " + p.partition(" ")[2]
               for name, cls in EXECUTORS.items() for p in cls.option_problems(settings[name])]:
        raise pytest.UsageError("; ".join(bad))
    if config.getoption("bertft_data_dir"):
        overrides["data_dir"] = config.getoption("bertft_data_dir")
    max_seeds = config.getoption("bertft_max_seeds")
    if max_seeds is not None and not 2 <= max_seeds <= SEED_LIMIT:
        raise pytest.UsageError(f"--bertft-max-seeds {max_seeds}: allowed: an integer from 2 "
                                f"to {SEED_LIMIT}")
    executor = config.getoption("bertft_executor")
    opts = config.stash[OPTIONS] = Options(
        overrides=overrides, results=Path(config.getoption("bertft_results")),
        rerun=config.getoption("bertft_rerun"), executor=executor, started=time.time(),
        executor_settings=settings[executor], max_seeds=max_seeds,
        role="pilot" if config.getoption("bertft_pilot") else "confirmation")
    EXECUTORS[executor].prepare(getattr(config, "workerinput", {}).get("workerid"))  # gwN
    config.stash[SESSION] = Session(EXECUTORS[executor], opts.executor_settings, opts.results)


OPTIONS = pytest.StashKey[Options]()
SESSION = pytest.StashKey[Session]()  # the executor and the cache this session's trials share
SPEC_NAMES = pytest.StashKey[dict[str, Path]]()  # spec name -> the file collected with it


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect `*.toml` inside a folder named `ablations`, or any `.toml` named explicitly."""
    if file_path.suffix != ".toml":
        return None
    explicit = any(Path(a.split("::")[0]).resolve() == file_path.resolve()
                   for a in parent.config.args)
    if file_path.parent.name == "ablations" or explicit:
        return SpecFile.from_parent(parent, path=file_path)
    return None


class SpecFile(pytest.File):
    def collect(self):
        opts = self.config.stash[OPTIONS]
        try:
            spec = load_spec(self.path, opts.overrides, opts.max_seeds)
            trials = expand(spec, opts.role)
            if spec.min_seeds and opts.role == "confirmation":  # adaptive: seed-major, so
                trials = sorted(trials, key=lambda t: spec.seeds.index(t.seed))  # looks first
        except SpecError as exc:
            raise self.CollectError(str(exc)) from None
        if not trials:
            raise self.CollectError(f"{self.path}: 1 problem:\n  - --bertft-pilot: the spec has "
                                    "no pilot_seeds; add pilot_seeds = [...] or run it without "
                                    "--bertft-pilot")
        names = self.config.stash.setdefault(SPEC_NAMES, {})
        other = names.setdefault(spec.name.lower(), self.path)  # some file systems ignore case
        if other != self.path:  # both would store under results/<name>/, undoing each other
            raise self.CollectError(f"{self.path}: 1 problem:\n  - name = {spec.name!r}: also "
                                    f"the name of {other}; results are stored by spec name, so "
                                    "each collected spec needs its own (names are compared "
                                    "ignoring case, as some file systems do)")
        try:  # before any training: a tracker asked for but not installed
            check_installed(sorted({t for trial in trials
                                    for t in trial.config.process.report_to}))
        except BertftError as exc:
            raise self.CollectError(f"{self.path}: {exc}") from None
        # the spec's current trials of both roles, for the store: a pilot run keeps the
        # confirmation's results in the report and the other way round
        self.bertft_trials = (spec, [t for role in ROLES for t in expand(spec, role)])
        for trial in trials:
            item = pytest.Function.from_parent(self, name=f"{spec.name}[{trial.trial_id}]",
                                               callobj=_trial_test(spec, trial))
            item.bertft_trial = (spec, trial)  # for the ray executor's up-front submission
            yield item


def _trial_test(spec: Spec, trial: Trial):
    def trial_test(benchmark: Any, request: pytest.FixtureRequest) -> None:
        opts, session = request.config.stash[OPTIONS], request.config.stash[SESSION]
        if spec.min_seeds and trial.role == "confirmation":
            _skip_if_decided(spec, trial, opts, session)
        result = run_stored(spec, trial, opts, session, benchmark)
        benchmark.extra_info.update(_extra_info(result))
        if result.status != "passed":
            pytest.fail(f"trial {result.status}: {result.error}", pytrace=False)
    trial_test.__doc__ = f"{spec.name}: {trial.trial_id}"
    return trial_test


def _skip_if_decided(spec: Spec, trial: Trial, opts: Options, session: Session) -> None:
    """Adaptive seeds: skip a seed above the minimum whose comparison is already decided
    (bertft.ablation.adaptive); a stored result is reused as usual."""
    found = ResultStore(opts.results).lookup(spec.name, trial.trial_id, trial.config,
                                             _data_fingerprint(trial, session), trial.role)
    if found.state == "complete" and not opts.rerun:
        return
    from bertft.report.looks import decided  # the report package (matplotlib) when needed

    why = skip_reason(spec, trial, opts.results, decided)
    if why:
        pytest.skip(why)


def run_stored(spec: Spec, trial: Trial, opts: Options, session: Session, benchmark: Any = None
               ) -> TrialResult:
    """Reuse a matching stored result, else run the trial under its lock and store it."""
    store = ResultStore(opts.results)
    config_hash = trial.config.hash()
    data_fingerprint = _data_fingerprint(trial, session)
    found = store.lookup(spec.name, trial.trial_id, trial.config, data_fingerprint, trial.role)
    if found.state == "complete" and not opts.rerun:
        _reuse(found.result, store, spec, trial)
    with store.lock(spec.name, trial.trial_id):
        found = store.lookup(spec.name, trial.trial_id, trial.config, data_fingerprint,
                             trial.role)
        if found.state == "complete" and (not opts.rerun or _written_since(found.result, opts)):
            _reuse(found.result, store, spec, trial)  # another run wrote it while we waited
        if found.state == "corrupt":
            kept = store.quarantine(spec.name, trial.trial_id)
            warnings.warn(f"{found.reason}; moved to {kept} and running the trial again",
                          stacklevel=1)
        with store.settings_lock(config_hash):
            shared = None if opts.rerun else store.same_settings(config_hash, data_fingerprint,
                                                                 trial.role)
            if shared is not None:  # another spec trained these settings: copy its result
                result = _copy_for(shared, spec, trial, store)
            else:
                result = session.executor.result(trial, spec, _measure(benchmark))
            if found.state == "stale":  # stored under other settings: kept, never overwritten
                assert found.result is not None
                kept = store.supersede(spec.name, trial.trial_id, found.result.config_hash)
                warnings.warn(f"stored result not reused: {found.reason}; kept as {kept}",
                              stacklevel=1)
            store.write(result)
    if shared is not None:
        pytest.skip(f"same settings as {result.environment['reused_from']}: result copied "
                    f"(--bertft-rerun trains it again)")
    return result


def _copy_for(result: TrialResult, spec: Spec, trial: Trial, store: ResultStore) -> TrialResult:
    """A passed result of the same settings, stored for another spec, as this trial's own: the
    spec's and the trial's names change, the outcome and its provenance do not."""
    source = store.path(result.spec.name, result.trial_id).relative_to(store.root).as_posix()
    return dataclasses.replace(
        result, spec=spec_info(spec), trial_id=trial.trial_id, arm_id=trial.arm_id,
        overrides=dict(trial.overrides), role=trial.role,
        environment={**result.environment, "reused_from": source})


def _data_fingerprint(trial: Trial, session: Session) -> Callable[[], str]:
    """The fingerprint of the data as the trial would load it now (loaded once per session)."""
    return lambda: load_splits(trial.config, session.cache).fingerprint()


def _reuse(result: TrialResult | None, store: ResultStore, spec: Spec, trial: Trial) -> None:
    """A stored pass is skipped; a stored divergence fails again without rerunning (it is
    deterministic); a stored failure (e.g. out of memory) is retried."""
    assert result is not None
    path = store.path(spec.name, trial.trial_id)
    if result.status == "passed":
        pytest.skip(f"stored result reused: {path} (--bertft-rerun runs it again)")
    if result.status == "diverged":
        pytest.fail(f"trial diverged (stored in {path}): {result.error}", pytrace=False)


def _written_since(result: TrialResult | None, opts: Options) -> bool:
    import datetime as dt

    if result is None or not result.created:
        return False
    try:
        return dt.datetime.fromisoformat(result.created).timestamp() >= int(opts.started)
    except ValueError:  # a hand-edited or foreign `created`: not written by this session
        return False


def _measure(benchmark: Any):
    """Time the training call as one pytest-benchmark round (no warmup round: a trial is
    too expensive to run twice; the core excludes tokenization and evaluation from its own
    throughput figures)."""
    if benchmark is None:
        return None

    def measure(fn):
        return benchmark.pedantic(fn, rounds=1, iterations=1, warmup_rounds=0)
    return measure


def _extra_info(result: TrialResult) -> dict[str, Any]:
    t, env = result.timing, result.environment
    return {"status": result.status, "samples_per_s": t.get("samples_per_s"),
            "tokens_per_s": t.get("tokens_per_s"), "device": env.get("device"),
            "dtype": env.get("dtype"), "peak_memory_mb": t.get("peak_memory_mb")}


HAS_TRIALS = pytest.StashKey[bool]()


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    config.stash[HAS_TRIALS] = any(isinstance(i.parent, SpecFile) for i in items)
    if config.stash[HAS_TRIALS]:
        _guard_sigint(config)


_SIGINTS: list[int] = []


def _guard_sigint(config: pytest.Config) -> None:
    """Ctrl-C raises KeyboardInterrupt as usual, and is also remembered: Python drops a
    KeyboardInterrupt raised inside a finalizer (`__del__`, e.g. during garbage collection), and
    the run would then go on as if never interrupted. A remembered one stops the run after the
    trial in progress (whose result is complete, hence kept)."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:  # someone else's handler: leave it alone
        return

    def on_sigint(signum: int, frame: Any) -> None:
        _SIGINTS.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    config.add_cleanup(lambda: signal.signal(signal.SIGINT, previous))


@pytest.hookimpl(trylast=True)
def pytest_runtest_logfinish(nodeid: str, location: tuple) -> None:
    if _SIGINTS:
        _SIGINTS.clear()
        raise KeyboardInterrupt(f"interrupted (SIGINT) after {nodeid}")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Record the current trials of the specs that will run. Ray executor: submit every trial
    that will run, so that they run in parallel while pytest waits on them one item at a time
    (after -k / --lf deselection)."""
    opts = session.config.stash[OPTIONS]
    if session.config.option.collectonly:
        return
    if session.config.stash.get(HAS_TRIALS, False) and (problem := output_problem(opts.results)):
        # before any trial trains (pytest reports a UsageError raised here as INTERNALERROR)
        pytest.exit(f"--bertft-results {opts.results}: {problem}", pytest.ExitCode.USAGE_ERROR)
    store = ResultStore(opts.results)
    _record_current(session.items, store)
    if not EXECUTORS[opts.executor].submits_ahead or hasattr(session.config, "workerinput"):
        return  # an xdist worker: items submit alone
    pending, submitted = [], set()
    for item in session.items:
        spec, trial = getattr(item, "bertft_trial", (None, None))
        if trial is None or (spec.min_seeds and trial.role == "confirmation"
                             and spec.seeds.index(trial.seed) >= spec.min_seeds):
            continue  # adaptive seeds above the minimum are submitted when found needed
        config_hash = trial.config.hash()
        found = store.lookup(spec.name, trial.trial_id, trial.config,
                             _data_fingerprint(trial, session.config.stash[SESSION]), trial.role)
        # as in run_stored/_reuse: a stored pass or divergence is not run again, a failure is;
        # settings another spec stored, or submitted above, are copied when their item runs
        if opts.rerun or found.state != "complete" or found.result.status == "failed":
            if opts.rerun or (config_hash not in submitted
                              and store.same_settings(config_hash, role=trial.role) is None):
                pending.append((trial, spec))
                submitted.add(config_hash)
    if pending:
        try:
            session.config.stash[SESSION].executor.submit(pending)
        except BertftError as exc:
            raise pytest.UsageError(str(exc)) from None


def _record_current(items: list[pytest.Item], store: ResultStore) -> None:
    """{trial id: config hash} of every trial of each spec with a selected item, deselected
    ones included: reports skip stored results of that spec that match none of them."""
    files = {item.parent for item in items if isinstance(item.parent, SpecFile)}
    for spec_file in sorted(files, key=lambda f: str(f.path)):
        spec, trials = spec_file.bertft_trials
        store.write_current(spec.name, {t.trial_id: t.config.hash() for t in trials})


def pytest_sessionfinish(session: pytest.Session) -> None:
    if SESSION in session.config.stash:  # cancel trials nobody waits for (-x); stop a local Ray
        session.config.stash[SESSION].close()


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    if config.stash.get(HAS_TRIALS, False):
        results = config.stash[OPTIONS].results
        terminalreporter.write_line(f"bertft: results stored under {results}/; render the "
                                    f"reports with `bertft report {results}`")


__all__ = ["SpecFile", "run_stored"]
