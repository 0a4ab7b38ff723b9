"""Accuracy targets of the core (issue 2), measured on real data with the offline model.

    python -m benchmarks.accuracy sst2-4k       # CPU-friendly: 4,000 SST-2 rows, 2 epochs
    python -m benchmarks.accuracy sst2-full     # full SST-2 train set, 1 epoch
    python -m benchmarks.accuracy conll2003     # full CoNLL-2003 train set, 3 epochs
    python -m benchmarks.accuracy bbc-news wnut16
    python -m benchmarks.accuracy sst2-4k --seeds 3 --against sampling=random
                                                # the defaults against a variant, paired by seed

Data: $BERTFT_DATA_DIR or ../shared/data. Each run prints one JSON line and writes
`.benchmarks/accuracy/<name>/metrics.json`. Not a test: these take minutes to tens of minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from bertft.config import Config, parse_overrides
from bertft.train import fit

ROOT = Path(__file__).resolve().parent.parent
DATA = os.environ.get("BERTFT_DATA_DIR", str(ROOT.parent / "shared" / "data"))
COMMON = dict(model="minilm-l6", progress=False, save_model=False, data_dir=DATA)

# name -> (settings, metric, target); targets from the issue, None where it says "report".
RUNS: dict[str, tuple[dict, str, float | None]] = {
    "sst2-4k": (dict(task="sst2", max_train_samples=4000, epochs=2, batch_size=16,
                     max_length=64, head_lr=1e-3, base_lr=1e-4, warmup_ratio=0.1), "accuracy",
                0.84),
    "sst2-full": (dict(task="sst2", epochs=1, batch_size=32, max_length=64, head_lr=1e-4,
                       base_lr=1e-4, warmup_ratio=0.06, eval_steps=0), "accuracy", 0.89),
    "conll2003": (dict(task="conll2003", epochs=3, batch_size=32, max_length=128,
                       head_lr=1e-3, base_lr=1e-4, warmup_ratio=0.1), "f1", 0.85),
    "bbc-news": (dict(task="bbc-news", epochs=3, batch_size=16, max_length=256, head_lr=1e-3,
                      base_lr=1e-4, warmup_ratio=0.1), "accuracy", 0.95),
    "wnut16": (dict(task="wnut16", epochs=5, batch_size=16, max_length=64, head_lr=1e-3,
                    base_lr=1e-4, warmup_ratio=0.1), "f1", None),
}


def run(name: str, threads: int = 0, **overrides) -> dict:
    settings, metric, target = RUNS[name]
    cfg = Config.of(**{**COMMON, **settings, "num_threads": threads, **overrides})
    start = time.perf_counter()
    label = ",".join([name] + [f"{k}={v}" for k, v in sorted(overrides.items())])
    result = fit(cfg, out_dir=ROOT / ".benchmarks" / "accuracy" / label)
    row = {
        "run": name, "task": cfg.data.task, "metric": metric,
        "validation": round(result.validation[metric], 4),
        "test": round(result.test[metric], 4) if result.test else None,
        "target": target, "met": None if target is None else result.test[metric] >= target,
        "train_size": result.data["train"], "epochs": cfg.loop.epochs,
        "seed": cfg.loop.seed,
        "train_seconds": round(result.timing["train_seconds"], 1),
        "non_train_share": round(result.timing["non_train_share"], 3),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "samples_per_s": round(result.timing["samples_per_s"], 1),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
                   f"{result.environment['device']}",
        "settings": cfg.diff(),
    }
    print(json.dumps(row), flush=True)
    return row


def compare(name: str, seeds: int, against: dict, threads: int = 0, **common) -> dict:
    """The test metric of the defaults and of `against` (overrides) on seeds 0..seeds-1, run
    interleaved, and their paired difference (mean, 95% t-interval, paired t-test p)."""
    from bertft.report.stats import mean_ci, paired_test

    metric = RUNS[name][1]
    a, b = {}, {}
    for seed in range(seeds):
        a[seed] = run(name, threads, seed=seed, **common)["test"]
        b[seed] = run(name, threads, seed=seed, **{**common, **against})["test"]
    diff, half = mean_ci([a[s] - b[s] for s in a])
    row = {"run": name, "metric": f"test {metric}", "seeds": seeds, "defaults": list(a.values()),
           "settings": common, "against": against, "against_values": list(b.values()),
           "defaults_mean": round(sum(a.values()) / seeds, 4),
           "against_mean": round(sum(b.values()) / seeds, 4),
           "difference_mean": round(diff, 4), "difference_ci95": round(half, 4),
           "paired_p": round(paired_test(a, b)[1], 3)}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", choices=sorted(RUNS))
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: torch's default); 1 lets two runs share 2 cores")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 of each run")
    parser.add_argument("--against", action="append", default=[], metavar="KEY=VALUE",
                        help="also run with these settings, seed by seed, and print the "
                             "paired difference of the defaults against them")
    parser.add_argument("--set", dest="common", action="append", default=[],
                        metavar="KEY=VALUE", help="settings for every run, e.g. "
                        "validation_ratio=0.013 (a smaller validation split: faster)")
    args = parser.parse_args()
    against = parse_overrides(args.against, "--against")
    common = parse_overrides(args.common)
    for name in args.runs:
        if against:
            compare(name, args.seeds, against, args.threads, **common)
        else:
            for seed in range(args.seeds):
                run(name, args.threads, seed=seed, **common)


if __name__ == "__main__":
    main()
