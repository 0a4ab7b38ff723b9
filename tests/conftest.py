"""Shared fixtures: a tiny random BERT for unit tests, paths to real data for integration tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("BERTFT_SHARED_DATA", ROOT.parent / "shared" / "data"))


NO_DROPOUT = {"model": "tiny-bert", "progress": False, "max_length": 32, "head_dropout": 0.0,
              "encoder_dropout": 0.0, "save_model": False}
"""tiny-bert settings whose training steps are deterministic (no dropout): gradient checks."""


def seeded_forward(splits, cfg):
    """(tokenizer, encoded splits, model, forward path) for `cfg` on `splits`: the model built
    after `set_seed(0)` and in train mode, its forward path (`frozen.choose_forward`) on the CPU
    in fp32."""
    import torch

    from bertft import frozen
    from bertft.features import encode_splits
    from bertft.models import build_model, load_tokenizer
    from bertft.runtime import set_seed

    tok = load_tokenizer(cfg.model)
    enc = encode_splits(splits, tok, cfg.tokens)
    set_seed(0)
    model = build_model(cfg.model, splits.kind, splits.label_names)
    model.train()
    forward = frozen.choose_forward(model, enc, tok, splits.kind, cfg, torch.device("cpu"),
                                    torch.float32)
    return tok, enc, model, forward


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


@pytest.fixture
def toy_text_run(tmp_path):
    """`train(epochs, *args)`: `bertft train` (tiny-bert, max_length 16, one thread; torch's
    thread count restored after) on a CSV of 40 toy rows under `tmp_path`, asserting exit 0.
    Returns (the run folder, the data file, its rows)."""
    def train(epochs: int, *args: str) -> tuple[Path, Path, list[str]]:
        import torch

        from bertft.cli import main

        rows = [f"{'good great fine' if i % 2 else 'bad awful poor'} text {i},"
                f"{'pos' if i % 2 else 'neg'}" for i in range(40)]
        data = tmp_path / "data.csv"
        data.write_text("text,label\n" + "\n".join(rows) + "\n")
        run = tmp_path / "run"
        threads = torch.get_num_threads()
        try:
            code = main(["train", "--out", str(run), "--task", "text-file", "--train-file",
                         str(data), "--model", "tiny-bert", "--epochs", str(epochs),
                         "--max-length", "16", "--progress", "false", "--num-threads", "1",
                         *args])
        finally:
            torch.set_num_threads(threads)
        assert code == 0
        return run, data, rows
    return train
