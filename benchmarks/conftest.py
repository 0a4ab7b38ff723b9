"""Benchmark fixtures: the SST-2 workload loaded once, a warmup run, and the baselines.

Run `tox -e bench` (or `pytest benchmarks --benchmark-only`). Workload sizes come from
BERTFT_BENCH_* environment variables (see benchmarks/workload.py), e.g. a quick run:
BERTFT_BENCH_TRAIN_ROWS=256 BERTFT_BENCH_MAX_LENGTH=64 pytest benchmarks --benchmark-only
"""

from __future__ import annotations

import os

import pytest

from benchmarks.workload import Setup, Workload, data_dir, warmup


@pytest.fixture(autouse=True, scope="session")
def _no_disk_cache():
    """Tokenization is timed on its own; never read a tokenized copy from a previous session."""
    old = os.environ.get("BERTFT_CACHE_DIR")
    os.environ["BERTFT_CACHE_DIR"] = ""
    yield
    if old is not None:
        os.environ["BERTFT_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def setup() -> Setup:
    if data_dir() is None:
        pytest.skip("SST-2 not found: set BERTFT_DATA_DIR to a folder holding sst2/train.tsv "
                    "and sst2/dev.tsv (default: <repo>/../shared/data)")
    s = Setup.load(Workload.from_env())
    warmup(s)  # excluded from every measurement
    return s


@pytest.fixture(scope="session")
def baseline(setup):
    """Baseline results by name, measured once per session (by their own benchmark when it ran
    first, else on demand), so that ratios compare runs from the same process."""

    def get(name: str, run):
        if name not in setup.results:
            setup.results[name] = run()
        return setup.results[name]

    return get
