"""Shared fixtures: a tiny random BERT for unit tests, paths to real data for integration tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("BERTFT_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Tokenization cache in a temporary folder: tests never touch ~/.cache."""
    old = os.environ.get("BERTFT_CACHE_DIR")
    os.environ["BERTFT_CACHE_DIR"] = str(tmp_path_factory.mktemp("bertft-cache"))
    yield
    if old is None:
        os.environ.pop("BERTFT_CACHE_DIR", None)
    else:
        os.environ["BERTFT_CACHE_DIR"] = old


@pytest.fixture(autouse=True, scope="session")
def _threads_per_worker():
    """On pytest-xdist workers, the cores split between them: N workers with torch's default
    of one thread per core each would run N threads per core and slow every test down."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    yield


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "sst2").is_dir():
        pytest.skip(f"real benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model():
    """A 2-layer randomly initialised BERT classifier (builds in well under a second)."""
    from bertft.config import Config
    from bertft.models import build_model
    from bertft.runtime import set_seed

    set_seed(0)
    return build_model(Config.of(model="tiny-bert").model, "classification", ("neg", "pos"))
