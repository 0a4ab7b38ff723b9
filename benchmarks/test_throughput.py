"""Training, evaluation and tokenization throughput, bertft vs the Hugging Face Trainer.

Each benchmark runs once (`rounds=1`: a run is minutes on a CPU) after the session warmup, and
stores in `extra_info` what was measured (samples/s, real tokens/s, device, dtype, peak memory,
accuracy) and its ratio to the baselines measured in the same session.
"""

from __future__ import annotations

from benchmarks.workload import (
    accuracy_over_seeds, env_int, eval_throughput, run_bertft, run_grid_bertft,
    run_grid_bertft_parallel, run_grid_trainer, run_trainer, tokenize_throughput,
)


def _once(benchmark, fn):
    return benchmark.pedantic(fn, rounds=1, iterations=1, warmup_rounds=0)


def _record(benchmark, setup, result: dict, **ratios: float) -> None:
    benchmark.extra_info.update(setup.facts())
    benchmark.extra_info.update({k: v for k, v in result.items() if k != "trials"})
    benchmark.extra_info.update(ratios)


def test_train_trainer_max_length(benchmark, setup, baseline):
    r = _once(benchmark, lambda: run_trainer(setup, "max_length"))
    setup.results["trainer-max_length"] = r
    _record(benchmark, setup, r)


def test_train_trainer_dynamic(benchmark, setup, baseline):
    r = _once(benchmark, lambda: run_trainer(setup, "dynamic"))
    setup.results["trainer-dynamic"] = r
    _record(benchmark, setup, r)


def test_train_bertft(benchmark, setup, baseline):
    """Targets: >= 3x the max-length Trainer, >= 1.0x the dynamic Trainer, accuracy within 1pt."""
    r = _once(benchmark, lambda: run_bertft(setup))
    maxlen = baseline("trainer-max_length", lambda: run_trainer(setup, "max_length"))
    dyn = baseline("trainer-dynamic", lambda: run_trainer(setup, "dynamic"))
    _record(benchmark, setup, r,
            ratio_vs_trainer_max_length=r["samples_per_s"] / maxlen["samples_per_s"],
            ratio_vs_trainer_dynamic=r["samples_per_s"] / dyn["samples_per_s"],
            accuracy_minus_trainer_dynamic=r["accuracy"] - dyn["accuracy"])


def test_grid_trainer_dynamic(benchmark, setup, baseline):
    r = _once(benchmark, lambda: run_grid_trainer(setup))
    setup.results["grid-trainer"] = r
    _record(benchmark, setup, r, trial_wall_seconds={
        k: t["wall_seconds"] for k, t in r["trials"].items()})


def test_grid_bertft(benchmark, setup, baseline):
    """Freezing grid (freeze_layers 0, 2, 4, 6 + frozen embeddings); target <= 0.5x the
    Trainer's wall time."""
    r = _once(benchmark, lambda: run_grid_bertft(setup))
    trainer = baseline("grid-trainer", lambda: run_grid_trainer(setup))
    _record(benchmark, setup, r,
            trial_wall_seconds={k: t["wall_seconds"] for k, t in r["trials"].items()},
            frozen_cache={k: t["frozen_cache"] for k, t in r["trials"].items()},
            wall_ratio_vs_trainer_dynamic=r["wall_seconds"] / trainer["wall_seconds"])


def test_grid_bertft_parallel(benchmark, setup, baseline):
    """The same grid as the ablation suite runs it: one single-threaded trial per core."""
    r = _once(benchmark, lambda: run_grid_bertft_parallel(setup))
    trainer = baseline("grid-trainer", lambda: run_grid_trainer(setup))
    _record(benchmark, setup, r,
            trial_wall_seconds={k: t["wall_seconds"] for k, t in r["trials"].items()},
            wall_ratio_vs_trainer_dynamic=r["wall_seconds"] / trainer["wall_seconds"])


def test_accuracy_over_seeds(benchmark, setup):
    """Target: dev accuracy within 1 point of the dynamic Trainer, as a mean over seeds
    (BERTFT_BENCH_SEEDS, default 3) with the paired difference's 95% CI."""
    seeds = tuple(range(env_int("BERTFT_BENCH_SEEDS", 3)))
    r = _once(benchmark, lambda: accuracy_over_seeds(setup, seeds))
    _record(benchmark, setup, r)


def test_eval_bertft(benchmark, setup):
    r = _once(benchmark, lambda: eval_throughput(setup))
    _record(benchmark, setup, r)


def test_tokenize(benchmark, setup):
    """Fast tokenizer, no cache: what `fit` pays once per process and data set."""
    r = _once(benchmark, lambda: tokenize_throughput(setup))
    _record(benchmark, setup, r)
