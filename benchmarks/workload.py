"""The benchmark workload, shared by the pytest-benchmark suite and the regression gate.

Both systems get the same examples and the same token ids (bertft's tokenization, done once and
timed separately), the same model and head initialisation (`bertft.models.build_model` after
seeding), the same optimizer settings (AdamW, lr, weight decay, linear schedule, clipping) and the
same threads. Throughput counts training only: bertft's `train_seconds` (which includes any
frozen-prefix precompute) and the wall time of `Trainer.train()`; neither includes model loading,
tokenization or evaluation. Grid wall times count everything per trial (model build, training,
evaluation each epoch; bertft also re-evaluates the best weights and scores the test split).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bertft import optim
from bertft.cache import Cache
from bertft.config import Config
from bertft.data import Splits, load_task
from bertft.features import encode_examples, encode_splits
from bertft.models import build_model, load_tokenizer, non_embedding_params, num_layers
from bertft.perf import mfu, peak_flops, training_flops
from bertft.runtime import (
    device_name, peak_memory_mb, reset_peak_memory, resolve_device, resolve_precision, set_seed,
    synchronize,
)

ROOT = Path(__file__).resolve().parent.parent


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} = {raw!r}: expected an integer") from None


# The file each benchmark task reads first, relative to the data folder.
DATA_MARKERS = {"sst2": "sst2/train.tsv", "imdb": "imdb/imdb_train_sample.csv"}


def data_dir(task: str = "sst2") -> Path | None:
    """$BERTFT_DATA_DIR, else <repo>/../shared/data; None when it lacks `task`'s data
    (`DATA_MARKERS`)."""
    root = Path(os.environ.get("BERTFT_DATA_DIR") or ROOT.parent / "shared" / "data")
    return root if (root / DATA_MARKERS[task]).is_file() else None


@dataclass(frozen=True)
class Workload:
    """What is measured; every field is saved beside the numbers."""

    train_rows: int = 4000
    val_rows: int = 500  # carved from SST-2 train
    test_rows: int = 872  # GLUE SST-2 dev (872 rows): the accuracy reported
    max_length: int = 128
    batch_size: int = 32
    lr: float = 5e-5
    epochs: int = 1
    grid_epochs: int = 2
    grid: tuple[int, ...] = (0, 2, 4, 6)
    model: str = "minilm-l6"
    task: str = "sst2"
    precision: str = "auto"  # both systems: bf16 autocast (Trainer bf16=True) or fp32
    # (lo, hi): train on training texts of lo..hi whitespace words only (before the first
    # train_rows are taken, in the task's seeded order); None: every text
    words: tuple[int, int] | None = None

    @classmethod
    def from_env(cls, **defaults: Any) -> Workload:
        w = cls(**defaults)
        return dataclasses.replace(
            w, train_rows=env_int("BERTFT_BENCH_TRAIN_ROWS", w.train_rows),
            val_rows=env_int("BERTFT_BENCH_VAL_ROWS", w.val_rows),
            test_rows=env_int("BERTFT_BENCH_TEST_ROWS", w.test_rows),
            max_length=env_int("BERTFT_BENCH_MAX_LENGTH", w.max_length),
            epochs=env_int("BERTFT_BENCH_EPOCHS", w.epochs),
            grid_epochs=env_int("BERTFT_BENCH_GRID_EPOCHS", w.grid_epochs),
            model=os.environ.get("BERTFT_BENCH_MODEL", w.model),
            precision=os.environ.get("BERTFT_BENCH_PRECISION", w.precision))

    def config(self, **overrides: Any) -> Config:
        return Config.of(**{"model": self.model, "task": self.task,
                         "data_dir": str(data_dir(self.task)),
                         "max_train_samples": self.train_rows, "max_length": self.max_length,
                         "batch_size": self.batch_size, "head_lr": self.lr, "base_lr": self.lr,
                         "precision": self.precision,
                         "epochs": self.epochs, "progress": False, "save_model": False,
                         # bertft's own batching defaults (sampling = length_buckets, unpad
                         # per batch) against the Trainer's best recipe: defaults must be fast
                         **overrides})


# Short texts: GLUE SST-2 training phrases (mean 13.3 word pieces, median 10, like TREC's
# questions, which are not available offline) at TREC's training-set size; max_length 64 cuts
# nothing. Per-batch overhead weighs most here, and unpadding saves least on grouped batches.
SHORT_TEXT = Workload(train_rows=5500, max_length=64, val_rows=500, test_rows=872)
# Very short, uniform texts, as TREC-6's questions (5,452 training questions of 10 words on
# average, most of them 6 to 14; TREC is not available offline): SST-2 training phrases of 6 to
# 14 words (mean about 10 words, 12-13 word pieces with [CLS] and [SEP]), TREC's size, one
# epoch. Length groups then carry almost no padding in either system, so what bertft's
# batching saves elsewhere does not show, and its fixed per-batch costs do.
SHORT_QUESTIONS = Workload(train_rows=5452, max_length=64, val_rows=500, test_rows=872,
                           words=(6, 14))


def keep_words(splits: Splits, words: tuple[int, int] | None, rows: int) -> Splits:
    """The first `rows` training examples of lo..hi whitespace words (`Workload.words`)."""
    if words is None:
        return splits
    lo, hi = words
    train = tuple(e for e in splits.train if lo <= len((e.text or "").split()) <= hi)[:rows]
    if len(train) < rows:
        raise SystemExit(f"only {len(train)} training texts of {lo}-{hi} words; asked for {rows}")
    return dataclasses.replace(splits, train=train)


@dataclass
class Setup:
    """Loaded once per process: splits, tokenizer, encoded features, device."""

    workload: Workload
    splits: Splits
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype
    tokenize_seconds: float
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    # what bertft's runs in this process share (tokenized data, frozen-prefix states), as the
    # ablation runner shares it between trials
    cache: Cache = field(default_factory=Cache)

    @classmethod
    def load(cls, w: Workload) -> Setup:
        cfg = w.config(max_train_samples=None) if w.words else w.config()
        splits = keep_words(load_task(cfg.data), w.words, w.train_rows)
        splits = dataclasses.replace(splits, validation=splits.validation[:w.val_rows],
                                     test=splits.test[:w.test_rows])
        tok = load_tokenizer(cfg.model)
        cache = Cache()
        t0 = time.perf_counter()
        encode_splits(splits, tok, cfg.tokens, cache)  # fills the cache that fit() reads
        device = resolve_device(cfg.runtime.device)
        return cls(w, splits, tok, device, resolve_precision(cfg.runtime.precision, device),
                   time.perf_counter() - t0, cache=cache)

    def encoded(self, cfg: Config):
        return encode_splits(self.splits, self.tokenizer, cfg.tokens, self.cache)

    def facts(self) -> dict[str, Any]:
        return {"device": device_name(self.device), "device_type": self.device.type,
                "dtype": str(self.dtype).replace("torch.", ""),
                "threads": torch.get_num_threads(), **dataclasses.asdict(self.workload)}


def _lengths(features: list[dict]) -> list[int]:
    return [len(f["input_ids"]) for f in features]


def _mfu(setup: Setup, model, lengths: list[int], epochs: int, seconds: float) -> float | None:
    peak = peak_flops(device_name(setup.device)) if setup.device.type == "cuda" else None
    if peak is None:
        return None
    flops = epochs * training_flops(non_embedding_params(model), num_layers(model),
                                    model.config.hidden_size, sum(lengths), lengths)
    return mfu(flops, seconds, peak)


def run_bertft(setup: Setup, **overrides: Any) -> dict[str, Any]:
    """One `fit` on the workload; throughput from fit's own train timer."""
    from bertft.train import fit

    cfg = setup.workload.config(**overrides)
    reset_peak_memory(setup.device)
    t0 = time.perf_counter()
    r = fit(cfg, setup.splits, cache=setup.cache)
    wall = time.perf_counter() - t0
    t = r.timing
    lengths = _lengths(setup.encoded(cfg).train)
    epochs = epoch_seconds(r.history) if not cfg.loop.eval_steps else []
    return {"system": "bertft", "wall_seconds": wall, "train_seconds": t["train_seconds"],
            "samples_per_s": t["samples_per_s"], "tokens_per_s": t["tokens_per_s"],
            "accuracy": r.test.get("accuracy"), "peak_memory_mb": t["peak_memory_mb"],
            "frozen_cache": t.get("frozen_cache", 0.0), "unpadded": t.get("unpadded", 0.0),
            "frozen_precompute_seconds": t.get("frozen_precompute_seconds", 0.0),
            "epoch_seconds": epochs, "compile_seconds": t.get("compile_seconds"),
            "compiled_model_reused": t.get("compiled_model_reused"),
            "resolved": r.environment.get("resolved"),
            "mfu": _mfu(setup, r.model, lengths, cfg.loop.epochs, t["train_seconds"]),
            "mfu_last_epoch": _mfu(setup, r.model, lengths, 1, epochs[-1]) if epochs else None}


def epoch_seconds(history: list[dict[str, Any]]) -> list[float]:
    """Training seconds of each epoch, from fit's cumulative `train_seconds` (one history row
    per epoch when eval_steps is 0); the first includes any frozen-prefix precompute and, with
    compile, the compilation."""
    totals = [row["train_seconds"] for row in history]
    return [b - a for a, b in zip([0.0, *totals[:-1]], totals, strict=True)]


def _epoch_timer(device: torch.device):
    """A TrainerCallback recording the synchronised wall time of each training epoch."""
    from transformers import TrainerCallback

    class EpochTimer(TrainerCallback):
        def __init__(self) -> None:
            self.seconds: list[float] = []
            self._t0 = 0.0

        def on_epoch_begin(self, args, state, control, **kwargs):
            synchronize(device)
            self._t0 = time.perf_counter()

        def on_epoch_end(self, args, state, control, **kwargs):
            synchronize(device)
            self.seconds.append(time.perf_counter() - self._t0)

    return EpochTimer()


def run_trainer(setup: Setup, padding: str, *, epochs: int | None = None,
                freeze_layers: int = 0, freeze_embeddings: bool = False,
                eval_each_epoch: bool = False, max_steps: int = -1,
                compile: bool = False, seed: int = 0) -> dict[str, Any]:
    """The Hugging Face Trainer on the same features: padding 'max_length' (random order) or
    'dynamic' (train_sampling_strategy='group_by_length'). Frozen parameters get
    requires_grad=False (the Trainer then leaves them out of the optimizer). The features are
    passed as plain lists of dicts (every key is a model input), which the Trainer indexes
    directly."""
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    w = setup.workload
    epochs = epochs or w.epochs
    cfg = w.config(epochs=epochs, freeze_layers=freeze_layers,
                   freeze_embeddings=freeze_embeddings, seed=seed)
    enc = setup.encoded(cfg)
    t0 = time.perf_counter()
    set_seed(cfg.loop.seed)
    model = build_model(cfg.model, "classification", setup.splits.label_names).to(setup.device)
    optim.apply_freezing(model, optim.frozen_parameter_names(model, cfg.model))
    # output_dir is required but unused (save_strategy="no"); removed when the run ends
    with tempfile.TemporaryDirectory(prefix="bertft-bench-trainer-") as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=cfg.batch.batch_size,
            per_device_eval_batch_size=cfg.batch.eval_batch_size, learning_rate=cfg.optim.base_lr,
            weight_decay=cfg.optim.weight_decay, num_train_epochs=epochs, max_steps=max_steps,
            lr_scheduler_type="linear", warmup_steps=0, max_grad_norm=cfg.optim.max_grad_norm,
            seed=cfg.loop.seed, report_to=[], save_strategy="no", logging_strategy="no",
            eval_strategy="epoch" if eval_each_epoch else "no", disable_tqdm=True,
            use_cpu=setup.device.type == "cpu", bf16=setup.dtype == torch.bfloat16,
            train_sampling_strategy="group_by_length" if padding == "dynamic" else "random",
            torch_compile=compile, dataloader_num_workers=0)
        collate = DataCollatorWithPadding(
            setup.tokenizer, padding="max_length" if padding == "max_length" else "longest",
            max_length=cfg.tokens.max_length)
        timer = _epoch_timer(setup.device)
        trainer = Trainer(model=model, args=args, data_collator=collate, train_dataset=enc.train,
                          eval_dataset=enc.validation if eval_each_epoch else None,
                          callbacks=[timer])
        reset_peak_memory(setup.device)
        synchronize(setup.device)
        t1 = time.perf_counter()
        trainer.train()
        synchronize(setup.device)
        seconds = time.perf_counter() - t1
        steps_seen = len(enc.train) * epochs if max_steps < 0 else max_steps * cfg.batch.batch_size
        pred = trainer.predict(enc.test) if max_steps < 0 else None
    acc = (float((pred.predictions.argmax(-1) == pred.label_ids).mean())
           if pred is not None else None)
    lengths = _lengths(enc.train)
    return {"system": f"trainer-{padding}", "wall_seconds": time.perf_counter() - t0,
            "train_seconds": seconds, "samples_per_s": steps_seen / seconds,
            "tokens_per_s": sum(lengths) * epochs / seconds if max_steps < 0 else None,
            "accuracy": acc, "peak_memory_mb": peak_memory_mb(setup.device),
            "epoch_seconds": timer.seconds,
            "mfu": _mfu(setup, model, lengths, epochs, seconds) if max_steps < 0 else None,
            "mfu_last_epoch": (_mfu(setup, model, lengths, 1, timer.seconds[-1])
                               if max_steps < 0 and timer.seconds else None)}


def accuracy_over_seeds(setup: Setup, seeds: tuple[int, ...]) -> dict[str, Any]:
    """Dev accuracy of bertft and the dynamic Trainer for each seed (head initialisation, data
    order, dropout), and the paired difference: one seed's accuracy on 872 examples moves by
    about a point from seed to seed, so "within 1 point" is judged on the mean over seeds."""
    from bertft.report.stats import mean_ci, paired_test

    bertft = {s: run_bertft(setup, seed=s)["accuracy"] for s in seeds}
    trainer = {s: run_trainer(setup, "dynamic", seed=s)["accuracy"] for s in seeds}
    diff = [bertft[s] - trainer[s] for s in seeds]
    mean, half = mean_ci(diff)
    return {"seeds": list(seeds), "bertft_accuracy": [bertft[s] for s in seeds],
            "trainer_accuracy": [trainer[s] for s in seeds],
            "bertft_mean": sum(bertft.values()) / len(seeds),
            "trainer_mean": sum(trainer.values()) / len(seeds),
            "difference_mean": mean, "difference_ci95": half,
            "paired_p": paired_test(bertft, trainer)[1] if len(seeds) > 1 else None}


def warmup(setup: Setup) -> None:
    """A few steps of each system (kernels, allocator, lazy imports) before anything is timed."""
    run_bertft(setup, max_steps=2, epochs=1)
    run_trainer(setup, "dynamic", max_steps=2)


def run_grid_bertft(setup: Setup, **overrides: Any) -> dict[str, Any]:
    w = setup.workload
    trials = {k: run_bertft(setup, freeze_layers=k, freeze_embeddings=True,
                            epochs=w.grid_epochs, **overrides) for k in w.grid}
    return {"wall_seconds": sum(t["wall_seconds"] for t in trials.values()), "trials": trials}


_WORKER_SETUP: dict[Workload, Setup] = {}


def _parallel_trial(w: Workload, k: int) -> tuple[int, dict[str, Any]]:
    """One grid trial in a worker process: its own data load and tokenization (counted in the
    grid's wall time), one thread, as `tox -e ablations` runs trials."""
    if w not in _WORKER_SETUP:
        _WORKER_SETUP[w] = Setup.load(w)
    r = run_bertft(_WORKER_SETUP[w], freeze_layers=k, freeze_embeddings=True,
                   epochs=w.grid_epochs, num_threads=1)
    return k, r


def run_grid_bertft_parallel(setup: Setup, workers: int | None = None) -> dict[str, Any]:
    """The grid scheduled as the ablation suite schedules it (`pytest -n auto --bertft-set
    num_threads=1`): one single-threaded trial per core, the costliest (K=0) first. Fresh
    worker processes, so interpreter start, imports, data loading and tokenization are all
    inside the wall time."""
    w = setup.workload
    workers = workers or min(len(w.grid), os.cpu_count() or 1)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        trials = dict(pool.map(_parallel_trial, [w] * len(w.grid), w.grid))
    return {"wall_seconds": time.perf_counter() - t0, "workers": workers, "trials": trials}


def run_grid_trainer(setup: Setup) -> dict[str, Any]:
    w = setup.workload
    trials = {k: run_trainer(setup, "dynamic", epochs=w.grid_epochs, freeze_layers=k,
                             freeze_embeddings=True, eval_each_epoch=True) for k in w.grid}
    return {"wall_seconds": sum(t["wall_seconds"] for t in trials.values()), "trials": trials}


def tokenize_throughput(setup: Setup) -> dict[str, Any]:
    """Fast-tokenizer encoding of the training rows, bypassing every cache."""
    cfg = setup.workload.config()
    t0 = time.perf_counter()
    feats = encode_examples(setup.splits.train, "classification", setup.tokenizer, cfg.tokens)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "samples_per_s": len(feats) / seconds,
            "tokens_per_s": sum(_lengths(feats)) / seconds}


def eval_throughput(setup: Setup) -> dict[str, Any]:
    """bertft's `evaluate` on the test split (eval_batch_size, data order, the forward path `fit`
    uses: unpadded by default), fresh model."""
    from bertft.frozen import choose_forward
    from bertft.train import evaluate

    cfg = setup.workload.config()
    enc = setup.encoded(cfg)
    set_seed(cfg.loop.seed)
    model = build_model(cfg.model, "classification", setup.splits.label_names).to(setup.device)
    fwd = choose_forward(model, enc, setup.tokenizer, "classification", cfg, setup.device,
                         setup.dtype, setup.cache)
    loader = fwd.loader("test", train=False)
    evaluate(model, loader, "classification", setup.splits.label_names, setup.device,
             setup.dtype, logits_fn=fwd.logits)  # warmup
    synchronize(setup.device)
    t0 = time.perf_counter()
    evaluate(model, loader, "classification", setup.splits.label_names, setup.device,
             setup.dtype, logits_fn=fwd.logits)
    synchronize(setup.device)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "samples_per_s": len(enc.test) / seconds,
            "tokens_per_s": sum(_lengths(enc.test)) / seconds}
