"""bertft's defaults against the Trainer's best CPU recipe, training throughput, one process.

    python -m benchmarks.defaults                     # SST-2 2,000 rows and the short-text set
    python -m benchmarks.defaults --workload sst2-2k --rounds 3

For each workload, after a warmup, rounds of: bertft with its defaults (sampling =
length_buckets, unpadding per batch), the Trainer with dynamic padding and
train_sampling_strategy = "group_by_length", and bertft with sampling = "random" (the old
default), interleaved so that load on a shared machine hits rounds, not systems. Prints samples/s
of every run and the ratio of the means. Throughput counts training only (see workload.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics

from benchmarks.workload import SHORT_TEXT, Setup, Workload, data_dir, run_bertft, run_trainer

WORKLOADS = {"sst2-2k": Workload(train_rows=2000, val_rows=500, test_rows=872, max_length=128),
             "short-text": SHORT_TEXT}
SYSTEMS = {"bertft-defaults": lambda s: run_bertft(s),
           "trainer-dynamic-grouped": lambda s: run_trainer(s, "dynamic"),
           "bertft-random": lambda s: run_bertft(s, sampling="random")}


def measure(name: str, rounds: int) -> dict:
    setup = Setup.load(WORKLOADS[name])
    run_bertft(setup, max_steps=2)  # warmup, not timed
    run_trainer(setup, "dynamic", max_steps=2)
    speed: dict[str, list[float]] = {k: [] for k in SYSTEMS}
    for _ in range(rounds):
        for system, run in SYSTEMS.items():
            r = run(setup)
            speed[system].append(round(r["samples_per_s"], 1))
            print(json.dumps({"workload": name, "system": system,
                              "samples_per_s": speed[system][-1],
                              "accuracy": r["accuracy"]}), flush=True)
    mean = {k: statistics.mean(v) for k, v in speed.items()}
    return {"workload": name, **dataclasses.asdict(setup.workload), "rounds": rounds,
            "samples_per_s": speed, "facts": setup.facts(),
            "defaults_vs_trainer": mean["bertft-defaults"] / mean["trainer-dynamic-grouped"],
            "random_vs_trainer": mean["bertft-random"] / mean["trainer-dynamic-grouped"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.defaults", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", choices=sorted(WORKLOADS), action="append")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    if data_dir() is None:
        p.error("SST-2 not found: set BERTFT_DATA_DIR (default <repo>/../shared/data)")
    for name in args.workload or list(WORKLOADS):
        print(json.dumps(measure(name, args.rounds)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
