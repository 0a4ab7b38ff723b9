"""Trial isolation: a trial that raises (out of memory included) or whose loss turns NaN is
stored as `failed` / `diverged` with its reason and last metrics, and the grid goes on.
Also: the same seed gives the same run, a different seed a different one."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import bertft.ablation.runner as runner
import bertft.train as train
from bertft.ablation.spec import expand, load_spec
from bertft.config import Config
from bertft.errors import TrialDiverged

pytest_plugins = ["pytester"]

SMOKE = Path(__file__).parent / "fixtures" / "specs" / "smoke.toml"
# Timing fields differ between identical runs; everything else must not.
TIMING = {"train_seconds", "samples_per_s", "tokens_per_s"}

TWO_TRIALS = """
name = "two"
seeds = [0]
[base]
model = "tiny-bert"
task = "bbc-news"
max_train_samples = 40
max_length = 32
epochs = 1
batch_size = 8
progress = false
save_model = false
num_threads = 1
[grid]
head_lr = [1e-3, 1e-2]
"""


def tiny(**overrides) -> Config:
    return Config.from_dict({"model": "tiny-bert", "task": "bbc-news", "max_train_samples": 64,
                             "max_length": 32, "epochs": 1, "batch_size": 4, "progress": False,
                             "save_model": False, "num_threads": 1, **overrides})


@pytest.fixture(scope="module")
def splits():
    """bbc-news takes seconds to read; every fit here uses the same data settings."""
    from bertft.data import load_task

    return load_task(tiny().data)


@pytest.fixture(autouse=True)
def _restore_threads():
    """num_threads = 1 keeps these tests fast on a busy machine (2 threads fighting other
    processes for 2 cores is ~15x slower); give the rest of the suite torch's setting back."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


# -- run_trial ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smoke_trials():
    spec = load_spec(SMOKE)
    return spec, expand(spec)


@pytest.mark.parametrize("exc, reason", [
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
     "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"),
    (RuntimeError("cuDNN error: CUDNN_STATUS_INTERNAL_ERROR"), "RuntimeError: cuDNN error"),
    (ZeroDivisionError("division by zero"), "ZeroDivisionError: division by zero"),
])
def test_a_raising_trial_is_stored_as_failed(exc, reason, smoke_trials, monkeypatch) -> None:
    spec, trials = smoke_trials
    last = {"epoch": 1, "step": 3, "train_loss": 1.5, "val_f1_macro": 0.25}

    def fit(cfg, splits=None, out_dir=None, on_log=None, checkpoint_dir=None, cache=None,
            **hooks):
        on_log(last)  # one evaluation happened before the fault
        raise exc
    monkeypatch.setattr(runner, "fit", fit)
    result = runner.run_trial(trials[0], spec)
    assert result.status == "failed"
    assert result.error.startswith(reason)
    assert result.history == (last,)  # its last metrics are kept
    assert result.config_hash == trials[0].config.hash()
    assert result.timing["wall_seconds"] >= 0


def test_a_diverging_trial_is_stored_as_diverged(smoke_trials, monkeypatch) -> None:
    spec, trials = smoke_trials

    def fit(cfg, splits=None, out_dir=None, on_log=None, checkpoint_dir=None, cache=None,
            **hooks):
        on_log({"epoch": 1, "step": 20, "train_loss": 7.0})
        raise TrialDiverged("training loss became nan by step 40 (epoch 2)")
    monkeypatch.setattr(runner, "fit", fit)
    result = runner.run_trial(trials[1], spec)
    assert result.status == "diverged"
    assert result.error == "training loss became nan by step 40 (epoch 2)"
    assert result.history[-1]["train_loss"] == 7.0


# -- NaN detection inside fit --------------------------------------------------------------------
@pytest.mark.parametrize("nan_from, log_every", [(7, 5), (10, 5), (3, 1), (2, 20)])
def test_nan_loss_stops_training_within_one_logging_interval(nan_from, log_every, splits,
                                                             monkeypatch) -> None:
    """The loss turns NaN at training step `nan_from`; fit raises TrialDiverged at the next
    logging step (or at the end of the epoch, whichever comes first), not later."""
    real = train.loss_fn
    calls = {"train": 0}

    def loss_fn(logits, labels, weight, **kw):
        loss = real(logits, labels, weight, **kw)
        if not torch.is_grad_enabled():
            return loss  # evaluation
        calls["train"] += 1
        return loss * math.nan if calls["train"] >= nan_from else loss
    monkeypatch.setattr(train, "loss_fn", loss_fn)
    cfg = tiny(log_every=log_every, epochs=3)  # 64 train examples / 4 = 16 steps per epoch
    with pytest.raises(TrialDiverged, match="training loss became nan") as exc:
        train.fit(cfg, splits=splits)
    stopped = calls["train"]
    assert nan_from <= stopped < nan_from + log_every
    assert stopped == min(math.ceil(nan_from / log_every) * log_every, 16)  # epoch end: 16
    assert f"step {stopped}" in str(exc.value)


# -- the plugin, end to end ------------------------------------------------------------------------
def _run_grid(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    spec = pytester.makefile(".toml", two=TWO_TRIALS)
    return pytester.runpytest_inprocess(str(spec), "--bertft-results",
                                        str(pytester.path / "results"), "-p",
                                        "no:cacheprovider", *args)


def _stored(pytester: pytest.Pytester) -> dict[str, dict]:
    folder = pytester.path / "results" / "two"
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


@pytest.mark.parametrize("fault, status", [
    (torch.OutOfMemoryError("CUDA out of memory"), "failed"),
    (TrialDiverged("training loss became inf by step 5 (epoch 1)"), "diverged"),
])
def test_grid_goes_on_after_a_failed_trial(fault, status, pytester: pytest.Pytester,
                                           monkeypatch) -> None:
    real_fit = runner.fit
    ran: list[float] = []

    def fit(cfg, splits=None, out_dir=None, on_log=None, checkpoint_dir=None, cache=None,
            **hooks):
        ran.append(cfg.optim.head_lr)
        if cfg.optim.head_lr == 1e-3:  # the first trial faults; the second must still run
            raise fault
        return real_fit(cfg, splits=splits, out_dir=out_dir, on_log=on_log,
                        checkpoint_dir=checkpoint_dir, cache=cache)
    monkeypatch.setattr(runner, "fit", fit)

    result = _run_grid(pytester)
    result.assert_outcomes(passed=1, failed=1)
    shown = f"{type(fault).__name__}: {fault}" if status == "failed" else str(fault)
    result.stdout.fnmatch_lines([f"trial {status}: {shown}",
                                 "FAILED *two.toml::two[[]head_lr=0.001,seed=0[]]*"])
    stored = _stored(pytester)
    assert set(stored) == {"head_lr=0.001,seed=0", "head_lr=0.01,seed=0"}
    bad, good = stored["head_lr=0.001,seed=0"], stored["head_lr=0.01,seed=0"]
    assert bad["status"] == status and str(fault) in bad["error"]
    assert good["status"] == "passed" and good["test"]["accuracy"] >= 0
    assert ran == [1e-3, 1e-2]

    # Rerun: the pass is reused; a stored failure (e.g. OOM) is retried, a stored divergence
    # is deterministic and fails again without training.
    ran.clear()
    result = _run_grid(pytester)
    if status == "failed":
        result.assert_outcomes(failed=1, skipped=1)
        assert ran == [1e-3]
    else:
        result.assert_outcomes(failed=1, skipped=1)
        result.stdout.fnmatch_lines(["*trial diverged (stored in *): training loss became inf*"])
        assert ran == []


# -- determinism -------------------------------------------------------------------------------
def _comparable(run: train.RunResult) -> dict:
    history = [{k: v for k, v in row.items() if k not in TIMING} for row in run.history]
    return {"history": history, "validation": run.validation, "test": run.test,
            "best": run.best, "steps": run.timing["optimizer_steps"]}


def test_same_seed_same_run_different_seed_different_run(splits) -> None:
    cfg = tiny(epochs=2, eval_steps=5, head_lr=1e-3, base_lr=1e-3)
    first, second = train.fit(cfg, splits=splits), train.fit(cfg, splits=splits)
    assert _comparable(first) == _comparable(second)
    assert len(first.history) >= 3
    other = train.fit(cfg.with_overrides({"seed": 1}), splits=splits)
    a, b = _comparable(first), _comparable(other)
    assert [r["train_loss"] for r in a["history"]] != [r["train_loss"] for r in b["history"]]
    assert a["validation"]["loss"] != b["validation"]["loss"]
