"""Unpadded vs padded bertft on the SST-2 workload, interleaved in one process.

    python -m benchmarks.unpad                                  # 2,000 rows, both orders
    python -m benchmarks.unpad --rows 256 --max-length 64 --sampling group_by_length

Prints samples/s of each run and the speedup (mean over rounds); the same seed gives the same
batches to both, so the two differ only in whether padding is computed (and in their dropout
masks, drawn over packed or padded tensors: accuracy moves within seed noise).
"""

from __future__ import annotations

import argparse
import statistics

from benchmarks.workload import Setup, Workload, data_dir, run_bertft


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.unpad", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=2000, help="SST-2 training rows (default 2000)")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--sampling", choices=("random", "group_by_length"), action="append",
                   help="training order(s) to measure (default: both)")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    if data_dir() is None:
        p.error("SST-2 not found: set BERTFT_DATA_DIR (default <repo>/../shared/data)")
    setup = Setup.load(Workload(train_rows=args.rows, max_length=args.max_length))
    run_bertft(setup, max_steps=2)  # warmup, not timed
    for sampling in args.sampling or ["random", "group_by_length"]:
        speed: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.rounds):
            for unpad in (True, False):
                r = run_bertft(setup, unpad=unpad, sampling=sampling)
                speed[unpad].append(r["samples_per_s"])
                print(f"{sampling:16} {'unpadded' if unpad else 'padded':9}"
                      f"{r['samples_per_s']:8.1f} samples/s  accuracy {r['accuracy']:.4f}",
                      flush=True)
        ratio = statistics.mean(speed[True]) / statistics.mean(speed[False])
        print(f"{sampling:16} speedup {ratio:.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
