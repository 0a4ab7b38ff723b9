"""The `ray` executor: same results as the local executor, trials submitted up front, a dead
worker stored as a failed trial. Skipped when Ray is not installed (`pip install 'bertft[ray]'`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from bertft.ablation import ray_executor  # noqa: E402
from bertft.results import TrialResult  # noqa: E402
from bertft.ablation.runner import spec_info  # noqa: E402
from bertft.ablation.spec import expand, load_spec  # noqa: E402
from bertft.ablation.store import ResultStore  # noqa: E402
from bertft.cache import Cache  # noqa: E402
from bertft.errors import BertftError, ConfigError  # noqa: E402

pytest_plugins = ["pytester"]

SMOKE = Path(__file__).parent / "fixtures" / "specs" / "smoke.toml"
TIMING_KEYS = {"train_seconds", "samples_per_s", "tokens_per_s"}  # differ run to run


def _ablate(cwd: Path, results: Path, *extra: str) -> subprocess.Popen:
    """The plugin in a fresh process, as a user runs it (one thread: CPU results are then
    bit-identical whatever process or Ray worker trains the trial)."""
    cmd = [sys.executable, "-m", "pytest", str(SMOKE), "-q", "-p", "no:cacheprovider",
           "--bertft-results", str(results), "--bertft-set", "num_threads=1", *extra]
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _output(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-5000:]
    return out


def _comparable(path: Path) -> dict:
    r = json.loads(path.read_text())
    history = [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in r["history"]]
    return {k: r[k] for k in ("status", "config_hash", "validation", "test", "best",
                              "label_names", "errors")} | {"history": history}


def test_ray_results_match_local_and_resume(tmp_path, pytester):
    local, remote = tmp_path / "local", tmp_path / "ray"
    # both at once: the local run mostly imports while Ray starts
    tracked = ("--bertft-set", "report_to=tensorboard")  # trackers log from the Ray worker
    runs = [_ablate(tmp_path, local, "--bertft-executor", "local", *tracked),
            _ablate(tmp_path, remote, "--bertft-executor", "ray", *tracked)]  # a local Ray
    assert "4 passed" in _output(runs[0])
    assert "4 passed" in _output(runs[1])
    logdirs = sorted(p.name for p in (remote / "tensorboard" / "smoke").iterdir()
                     if any(p.glob("events.out.tfevents.*")))
    assert logdirs == sorted(p.name for p in (local / "tensorboard" / "smoke").iterdir())
    assert len(logdirs) == 4 and all("seed=" in name for name in logdirs)

    files = sorted(p.name for p in (local / "smoke").glob("*.json"))
    assert len(files) == 4
    assert sorted(p.name for p in (remote / "smoke").glob("*.json")) == files
    for name in files:
        a, b = _comparable(local / "smoke" / name), _comparable(remote / "smoke" / name)
        assert a["status"] == "passed"
        assert a["validation"]["accuracy"] is not None and a["history"][0]["train_loss"] > 0
        assert a == b, name

    # the driver wrote ordinary records: a second ray run reuses them without starting Ray
    again = pytester.inline_run(str(SMOKE), "-p", "no:cacheprovider", "--bertft-results",
                                str(remote), "--bertft-executor", "ray")
    again.assertoutcome(skipped=4)
    assert not ray.is_initialized()


class FakeExecutor(ray_executor.RayExecutor):
    """Records what the plugin asks of the ray executor (made by the plugin's session, with
    the options' settings); runs nothing and starts no Ray."""

    def __init__(self, results, cache, settings) -> None:
        self.made_with = (results, settings)
        self.calls: list[tuple[str, list[str]]] = []

    def submit(self, jobs):
        self.calls.append(("submit", [t.trial_id for t, _ in jobs]))

    def result(self, trial, spec, measure=None):
        self.calls.append(("run", [trial.trial_id]))
        return _passed(trial, spec)

    def cancel(self):
        self.calls.append(("cancel", []))


def _fake_ray(monkeypatch) -> list[FakeExecutor]:
    """The plugin's `ray` executor replaced by a FakeExecutor; returns those made."""
    from bertft.ablation import plugin

    made: list[FakeExecutor] = []

    class Fake(FakeExecutor):
        def __init__(self, results, cache, settings) -> None:
            super().__init__(results, cache, settings)
            made.append(self)
    monkeypatch.setitem(plugin.EXECUTORS, "ray", Fake)
    return made


def _passed(trial, spec) -> TrialResult:
    return TrialResult(spec=spec_info(spec), trial_id=trial.trial_id, arm_id=trial.arm_id,
                       overrides=trial.overrides, seed=trial.seed,
                       config=trial.config.to_dict(), config_hash=trial.config.hash(),
                       status="passed", validation={"accuracy": 0.9})


def test_plugin_submits_pending_trials_before_running_any(pytester, monkeypatch):
    made = _fake_ray(monkeypatch)
    spec_path = pytester.path / "smoke.toml"
    spec_path.write_text(SMOKE.read_text())
    results = pytester.path / "results"
    spec = load_spec(spec_path)
    _stored, deselected, *pending = [t.trial_id for t in expand(spec)]
    ResultStore(results).write(_passed(expand(spec)[0], spec))  # resumed, not submitted

    out = pytester.inline_run(
        str(spec_path), "-p", "no:cacheprovider", "--bertft-results", str(results),
        "--bertft-executor", "ray", "--bertft-ray-address", "auto",
        "--bertft-ray-num-gpus", "0.5", "--bertft-ray-max-retries", "3",
        "--deselect", f"smoke.toml::smoke[{deselected}]")

    out.assertoutcome(passed=2, skipped=1)
    [fake] = made  # one executor for the session, cancelled when it ends
    assert fake.calls == [("submit", pending)] + [("run", [t]) for t in pending] + [
        ("cancel", [])]
    # None: the spec's [resources], else 1; the results dir locates per-epoch checkpoints
    assert fake.made_with == (results, {"address": "auto", "num_gpus": 0.5, "num_cpus": None,
                                       "max_retries": 3})


def test_a_stored_file_that_is_not_an_object_is_submitted_again(pytester, monkeypatch):
    made = _fake_ray(monkeypatch)
    spec_path = pytester.path / "smoke.toml"
    spec_path.write_text(SMOKE.read_text())
    results = pytester.path / "results"
    trial_ids = [t.trial_id for t in expand(load_spec(spec_path))]
    path = ResultStore(results).path("smoke", trial_ids[0])
    path.parent.mkdir(parents=True)
    path.write_text("[]")
    out = pytester.inline_run(str(spec_path), "-p", "no:cacheprovider", "--bertft-results",
                              str(results), "--bertft-executor", "ray")
    out.assertoutcome(passed=4)
    assert made[0].calls[0] == ("submit", trial_ids)
    assert Path(f"{path}.corrupt").read_text() == "[]"


def _trial_and_spec():
    spec = load_spec(SMOKE)
    return expand(spec)[0], spec


def _executor_whose_task(monkeypatch, error: BaseException, sent: list | None = None,
                         results: Path | None = None) -> ray_executor.RayExecutor:
    """A RayExecutor built by its public constructor on a pretend Ray (already initialised, no
    GPUs): submitting records the task's arguments in `sent`, `ray.get` raises `error`."""
    task = type("Task", (), {"remote": staticmethod(
        lambda *a: (sent.append(a) if sent is not None else None) or object())})()
    options = []
    remote = type("Remote", (), {"options": staticmethod(
        lambda **kw: options.append(kw) or task)})()

    def get(ref):
        raise error
    monkeypatch.setattr(ray, "is_initialized", lambda: True)  # nothing to start or shut down
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    monkeypatch.setattr(ray, "remote", lambda fn: remote if fn.__name__ == "run_remote"
                        else pytest.fail(f"unexpected remote function {fn}"))
    monkeypatch.setattr(ray, "get", get)
    executor = ray_executor.RayExecutor(results, Cache(), {"num_cpus": 2, "max_retries": 3})
    executor.options = options  # what each task was submitted with
    return executor


@pytest.mark.parametrize("error", [
    ray.exceptions.WorkerCrashedError(),
    ray.exceptions.OutOfMemoryError("Task was killed due to the node running low on memory."),
    ray.exceptions.RayTaskError("_run_remote", "Traceback ...", RuntimeError("boom")),
], ids=["crashed", "oom", "task-error"])
def test_dead_worker_is_a_failed_trial(monkeypatch, error):
    trial, spec = _trial_and_spec()
    executor = _executor_whose_task(monkeypatch, error)
    result = executor.result(trial, spec, measure=None)
    assert executor.options == [{"num_gpus": 0.0, "num_cpus": 2.0, "max_retries": 3}]
    assert result.status == "failed"
    assert type(error).__name__ in result.error
    assert (result.trial_id, result.config_hash) == (trial.trial_id, trial.config.hash())
    assert TrialResult.from_json(json.loads(result.dumps())) == result  # storable as is
    assert executor._refs == {}


def test_usage_error_in_worker_is_raised_on_driver(monkeypatch):
    trial, spec = _trial_and_spec()
    cause = ConfigError(["model = 'nope': not found"], "smoke.toml")
    executor = _executor_whose_task(
        monkeypatch, ray.exceptions.RayTaskError("_run_remote", "Traceback ...", cause))
    with pytest.raises(ConfigError, match="nope"):
        executor.result(trial, spec)


def test_settings_are_checked_together():
    with pytest.raises(ConfigError) as info:
        ray_executor.check_settings(1.5, -1, -2)
    assert len(info.value.problems) == 3
    ray_executor.check_settings(0.25, 2, 0)
    ray_executor.check_settings(2, 1, 1)


def test_resources_come_from_the_options_then_the_spec_then_defaults():
    resolve = ray_executor.resolve_resources
    assert resolve(None, None, {}, cluster_gpus=0) == (0.0, 1.0)
    assert resolve(None, None, {}, cluster_gpus=4) == (1.0, 1.0)
    assert resolve(None, None, {"num_gpus": 0.25, "num_cpus": 4}, cluster_gpus=4) == (0.25, 4.0)
    assert resolve(0.5, 2, {"num_gpus": 0.25, "num_cpus": 4}, cluster_gpus=4) == (0.5, 2.0)
    assert resolve(None, 8, {"num_gpus": 2}, cluster_gpus=0) == (2.0, 8.0)


def test_missing_ray_is_a_usage_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(BertftError, match=r"pip install 'bertft\[ray\]'"):
        ray_executor.RayExecutor(None, Cache(), {})


def test_tasks_checkpoint_where_the_local_runner_does(monkeypatch, tmp_path):
    """`checkpoint_every_epoch` under Ray: the task gets the local runner's checkpoint folder
    and hands it to run_trial."""
    from bertft.ablation import runner

    trial, spec = _trial_and_spec()
    sent: list = []
    executor = _executor_whose_task(monkeypatch, RuntimeError("unused"), sent, Path("results"))
    executor.submit([(trial, spec)])
    expected = ResultStore("results").checkpoint_dir(spec.name, trial.trial_id)
    assert sent == [(trial, spec, str(Path.cwd()), str(expected), "results")]

    got = []
    monkeypatch.setattr(runner, "run_trial",
                        lambda t, s, measure=None, checkpoint_dir=None, tracking_root=None,
                        cache=None: got.append((checkpoint_dir, tracking_root)) or _passed(t, s))
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [0])
    monkeypatch.chdir(tmp_path)
    ray_executor._run_remote(*sent[0])
    assert got == [(expected, Path("results"))]  # trackers log where a local trial's do


def test_a_worker_keeps_one_cache_for_its_trials(monkeypatch):
    """The task function a worker unpickles once holds the cache its trials share."""
    from bertft.ablation import runner

    caches = []
    monkeypatch.setattr(runner, "run_trial", lambda t, s, measure=None, checkpoint_dir=None,
                        tracking_root=None, cache=None: caches.append(cache) or _passed(t, s))
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [0])
    task = ray_executor.worker_task()
    shipped = ray.cloudpickle.loads(ray.cloudpickle.dumps(task))  # as Ray sends it
    trial, spec = _trial_and_spec()
    shipped(trial, spec, "/nonexistent")
    shipped(trial, spec, "/nonexistent")
    assert isinstance(caches[0], Cache) and caches[1] is caches[0]


def test_failed_ner_trial_is_stored_as_ner():
    spec = load_spec(SMOKE, {"task": "wnut16"})
    result = ray_executor.failed_result(expand(spec)[0], spec, RuntimeError("x"), time.time())
    assert (result.status, result.kind) == ("failed", "ner")


def test_a_failed_pilot_trial_is_stored_as_the_pilots():
    """Else its stored role would differ from its trial's, and the next run would supersede it."""
    import dataclasses

    trial, spec = _trial_and_spec()
    pilot = dataclasses.replace(trial, role="pilot")
    assert ray_executor.failed_result(pilot, spec, RuntimeError("x"), time.time()).role == "pilot"


def test_failed_result_times_from_submission():
    trial, spec = _trial_and_spec()
    result = ray_executor.failed_result(trial, spec, RuntimeError("x"), time.time() - 2)
    assert result.status == "failed" and result.timing["wall_seconds"] >= 2
