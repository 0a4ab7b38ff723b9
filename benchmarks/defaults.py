"""bertft's defaults against the Trainer's best CPU recipe, training throughput, one process.

    python -m benchmarks.defaults                     # SST-2 2,000 rows and the short-text set
    python -m benchmarks.defaults --workload sst2-2k --rounds 3
    python -m benchmarks.defaults --workload short-questions --also unpad_min_padding=0.15

For each workload, after a warmup, rounds of: bertft with its defaults (sampling =
length_buckets, unpadding per batch), the Trainer with dynamic padding and
train_sampling_strategy = "group_by_length", and bertft with sampling = "random" (the old
default), interleaved so that load on a shared machine hits rounds, not systems; each `--also
KEY=VALUE[,KEY=VALUE...]` adds a bertft run with those settings (a candidate default, measured
in the same rounds). Prints samples/s of every run and the ratios of the means to the Trainer.
Throughput counts training only (see workload.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics

from benchmarks.workload import (
    SHORT_QUESTIONS, SHORT_TEXT, Setup, Workload, data_dir, run_bertft, run_trainer,
)
from bertft.config import Config, parse_overrides
from bertft.errors import ConfigError

WORKLOADS = {"sst2-2k": Workload(train_rows=2000, val_rows=500, test_rows=872, max_length=128),
             "short-text": SHORT_TEXT, "short-questions": SHORT_QUESTIONS}
SYSTEMS = {"bertft-defaults": lambda s: run_bertft(s),
           "trainer-dynamic-grouped": lambda s: run_trainer(s, "dynamic"),
           "bertft-random": lambda s: run_bertft(s, sampling="random")}


def candidates(items: list[str]) -> dict[str, dict]:
    """`--also` values as named bertft systems: 'a=1,b=x' -> {'bertft-a=1,b=x': {a: 1, b: x}};
    every setting is checked (a typo is an error before anything runs)."""
    out = {}
    for item in items:
        overrides = parse_overrides([p for p in item.split(",") if p], "--also")
        Config.of(**overrides)  # validated here
        out[f"bertft-{item}"] = overrides
    return out


def measure(name: str, rounds: int, also: dict[str, dict] | None = None) -> dict:
    setup = Setup.load(WORKLOADS[name])
    run_bertft(setup, max_steps=2)  # warmup, not timed
    run_trainer(setup, "dynamic", max_steps=2)
    systems = {**SYSTEMS, **{k: (lambda s, o=o: run_bertft(s, **o))
                             for k, o in (also or {}).items()}}
    speed: dict[str, list[float]] = {k: [] for k in systems}
    for _ in range(rounds):
        for system, run in systems.items():
            r = run(setup)
            speed[system].append(round(r["samples_per_s"], 1))
            print(json.dumps({"workload": name, "system": system,
                              "samples_per_s": speed[system][-1],
                              "accuracy": r["accuracy"]}), flush=True)
    mean = {k: statistics.mean(v) for k, v in speed.items()}
    return {"workload": name, **dataclasses.asdict(setup.workload), "rounds": rounds,
            "samples_per_s": speed, "facts": setup.facts(),
            **{f"{k.removeprefix('bertft-')}_vs_trainer": v / mean["trainer-dynamic-grouped"]
               for k, v in mean.items() if k.startswith("bertft-")}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.defaults", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", choices=sorted(WORKLOADS), action="append")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--also", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                   help="also run bertft with these settings (repeatable)")
    args = p.parse_args(argv)
    try:
        also = candidates(args.also)
    except ConfigError as exc:
        p.error(str(exc))
    if data_dir() is None:
        p.error("SST-2 not found: set BERTFT_DATA_DIR (default <repo>/../shared/data)")
    for name in args.workload or list(WORKLOADS):
        print(json.dumps(measure(name, args.rounds, also)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
