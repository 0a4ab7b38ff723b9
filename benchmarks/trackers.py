"""Tracker check on a shipped spec: one MLflow run per trial, same final metrics as the
results JSON, and the time spent in tracker calls as a share of each trial's wall time.

    python -m benchmarks.trackers                                   # learning_rates, mlflow
    python -m benchmarks.trackers --report-to mlflow,tensorboard --set num_threads=1

Runs the spec with `report_to` set into a fresh results folder (the stored results of the
working tree are not touched), reads the MLflow store back with MlflowClient and compares
every run's `validation/...` and `test/...` metrics with the trial's stored result. The
overhead is `timing.tracker_seconds / timing.wall_seconds` of each trial (library imports
included, in the first trial that pays them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import pytest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.trackers", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spec", default="ablations/learning_rates.toml")
    p.add_argument("--report-to", default="mlflow")
    p.add_argument("-k", dest="keyword", default=None, help="pytest -k expression")
    p.add_argument("--results", default=None, help="results folder (default: a temp dir)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="more base settings (e.g. num_threads=1)")
    args = p.parse_args(argv)
    results = Path(args.results or tempfile.mkdtemp(prefix="bertft-trackers-"))
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # the file store under the results folder
    argv_ = [args.spec, "-q", "-p", "no:cacheprovider", "--bertft-results", str(results),
             "--bertft-set", f"report_to={args.report_to}", "--bertft-rerun"]
    argv_ += [x for kv in args.overrides for x in ("--bertft-set", kv)]
    code = pytest.main(argv_ + (["-k", args.keyword] if args.keyword else []))
    if code not in (0, 1):
        return int(code)
    stored = [json.loads(f.read_text()) for f in sorted(results.glob("*/*.json"))]
    stored = [r for r in stored if isinstance(r, dict) and r.get("status") == "passed"]
    shares = [r["timing"]["tracker_seconds"] / r["timing"]["wall_seconds"] for r in stored]
    print(f"{len(stored)} trials; tracker time / trial wall time: mean "
          f"{statistics.mean(shares):.2%}, max {max(shares):.2%} "
          f"(wall {statistics.mean(r['timing']['wall_seconds'] for r in stored):.1f} s mean)")
    if "mlflow" in args.report_to:
        return _compare_mlflow(results, stored)
    return 0


def _compare_mlflow(results: Path, stored: list[dict]) -> int:
    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient((results / "mlruns").resolve().as_uri())
    spec = stored[0]["spec"]["name"]
    exp = client.get_experiment_by_name(spec)
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    bad = []
    for r in stored:
        run = runs.get(r["trial_id"])
        want = {f"{section}/{k}": v for section in ("validation", "test")
                for k, v in r[section].items() if isinstance(v, int | float)}
        got = run.data.metrics if run else {}
        if any(abs(got.get(k, float("nan")) - v) > 1e-9 for k, v in want.items()):
            bad.append(r["trial_id"])
    print(f"MLflow experiment '{spec}': {len(runs)} runs for {len(stored)} trials; final "
          f"metrics equal to the results JSON for {len(stored) - len(bad)} of them"
          + (f"; differ: {bad}" if bad else ""))
    return 0 if not bad and len(runs) == len(stored) else 1


if __name__ == "__main__":
    sys.exit(main())
