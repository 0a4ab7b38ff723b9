"""GPU training efficiency: bertft against the Hugging Face Trainer in the same process, the
issue-23 tables (short text and long text), samples/s and model FLOPs utilisation.

    python -m benchmarks.gpu --all --random-init --out DIR   # everything: see benchmarks/gpu_all.py
    python -m benchmarks.gpu --all --dry-run                 # the plan, and what is missing here
    python -m benchmarks.gpu --table long --random-init      # one table (default: long)
    python -m benchmarks.gpu --table short --rows-only trainer-dynamic,bertft-defaults

Tables (rows in the order they run; each row's JSON is written as soon as it ends, so a run
stopped at its time cap keeps what it measured):
  short  SST-2, 4,000 rows, max_length 128, batch 32, 2 epochs (samples/s of the last epoch)
  long   IMDb train sample, 2,048 rows (nearly every row fills max_length 128), batch 32,
         3 epochs; samples/s and MFU of the last epoch; bf16 autocast (the CUDA default) and
         `precision = "bf16-master"` (no weight casts per step) at batch 32 and 128

Throughput and MFU are taken from the *last* epoch (steady state: CUDA context, allocator,
cuBLAS heuristics, torch.compile and CUDA graph capture all happen in the first; the first
epoch's seconds are reported beside it, and their excess over the last is the compile share).
MFU = training FLOPs (6 x non-embedding parameters x real tokens + attention,
`bertft.perf.training_flops`) over the epoch's synchronised wall time and the device's dense
bf16 peak (`bertft.perf.peak_flops`).

`--random-init` builds bert-base-uncased's architecture (transformers' `BertConfig()`: 12
layers, hidden 768, 12 heads, vocab 30,522) with seeded random weights and the minilm-l6
tokenizer (the same uncased WordPiece vocabulary): time and MFU do not depend on weight values,
and no Hub access is needed. Accuracy is not reported for random weights.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmarks.workload import ROOT, Setup, Workload, data_dir, run_bertft, run_trainer

EAGER = {"compile": False}
# bertft's defaults before issue 23 (what `auto` gave on every device): eager, unpadded
OLD_DEFAULTS = {"compile": False, "unpad": True, "pad_to_multiple_of": None}
# CUDA graphs over length buckets of 32 with fixed batch rows: "auto" on CUDA once this run
# shows them right (tests/test_gpu.py) and faster than eager (bertft/auto.py)
GRAPHS = {"compile": True}


@dataclass(frozen=True)
class Table:
    """One table: its workload and its rows (name -> bertft overrides, or a Trainer recipe)."""

    title: str
    workload: Workload
    rows: dict[str, dict[str, Any]]


TRAINER = "trainer"  # the key a Trainer row's dict holds: its padding
TABLES: dict[str, Table] = {
    "short": Table("Short text: SST-2, 4,000 rows, max_length 128, batch 32, 2 epochs",
                   Workload(task="sst2", train_rows=4000, val_rows=256, test_rows=256,
                            max_length=128, batch_size=32, epochs=2), {
        "trainer-dynamic": {TRAINER: "dynamic"},  # + train_sampling_strategy=group_by_length
        "bertft-defaults": {},
        "trainer-max_length": {TRAINER: "max_length"},
        "bertft-eager-padded": {**EAGER, "unpad": False},
        "bertft-old-defaults": OLD_DEFAULTS,
        "bertft-graphs-bucketed": GRAPHS,  # the candidate CUDA default (auto.py keeps it opt-in)
        "bertft-graphs-max_length": {"compile": True, "compile_mode": "reduce-overhead",
                                     "padding": "max_length", "pad_to_multiple_of": None},
        "bertft-old-defaults-random": {**OLD_DEFAULTS, "sampling": "random"},
    }),
    "long": Table("Long text: IMDb, 2,048 rows, max_length 128, batch 32, 3 epochs",
                  Workload(task="imdb", train_rows=2048, val_rows=256, test_rows=512,
                           max_length=128, batch_size=32, epochs=3), {
        "trainer-dynamic": {TRAINER: "dynamic"},
        "bertft-defaults": {},
        "bertft-defaults-bs128": {"batch_size": 128},
        "bertft-graphs-bucketed": GRAPHS,
        "bertft-graphs-bucketed-bs128": {**GRAPHS, "batch_size": 128},
        # bf16 weights with fp32 masters, no autocast (bertft/master.py), after the graphed rows
        # the targets read (a part stopped at its time cap keeps the rows before)
        "bertft-bf16-master": {"precision": "bf16-master"},
        "bertft-bf16-master-bs128": {"precision": "bf16-master", "batch_size": 128},
        "bertft-eager-padded": {**EAGER, "unpad": False},
        "bertft-old-defaults": OLD_DEFAULTS,
        "bertft-compile-default-mode": {"compile": True, "compile_mode": "default"},
    }),
}


def random_bert_base(directory: Path) -> str:
    """bert-base-uncased's architecture with seeded random weights, saved as a local model."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from bertft.models import minilm_dir

    config = BertConfig()  # defaults are bert-base-uncased
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    if len(tokenizer) != config.vocab_size:
        raise SystemExit(f"tokenizer has {len(tokenizer)} tokens, bert-base {config.vocab_size}")
    torch.manual_seed(0)
    BertModel(config, add_pooling_layer=True).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def run_row(setup: Setup, overrides: dict[str, Any]) -> dict[str, Any]:
    if TRAINER in overrides:
        return run_trainer(setup, overrides[TRAINER])
    return run_bertft(setup, **overrides)


def summarise(name: str, r: dict[str, Any], setup: Setup, random_init: bool) -> dict[str, Any]:
    epochs = r.get("epoch_seconds") or []
    per_epoch = len(setup.splits.train)  # both systems train on these features
    last = epochs[-1] if epochs else None
    return {"row": name, "epoch_seconds": [round(s, 3) for s in epochs],
            "samples_per_s_last_epoch": per_epoch / last if last else None,
            "first_epoch_excess_seconds": epochs[0] - last if len(epochs) > 1 else None,
            "mfu_last_epoch": r.get("mfu_last_epoch"), "peak_memory_mb": r.get("peak_memory_mb"),
            "compile_seconds": r.get("compile_seconds"),
            "compiled_model_reused": r.get("compiled_model_reused"),
            "resolved": r.get("resolved"),
            "accuracy": None if random_init else r.get("accuracy")}


def markdown(table: Table, rows: list[dict[str, Any]], facts: dict[str, Any]) -> str:
    """The table as markdown, ratios against the Trainer's dynamic recipe of the same run."""
    base = next((r.get("samples_per_s_last_epoch") for r in rows
                 if r["row"] == "trainer-dynamic"), None)
    out = [f"{table.title} ({facts.get('device')}, torch {facts.get('torch')}, "
           f"{facts.get('model')}{' random init' if facts.get('random_init') else ''})", "",
           "| run | samples/s | vs Trainer dynamic | MFU | first epoch s | compile s |",
           "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['row']} | failed: {r['error'][:120]} | | | | |")
            continue
        sps, m = r["samples_per_s_last_epoch"], r["mfu_last_epoch"]
        first = r["epoch_seconds"][0] if r["epoch_seconds"] else None
        out.append("| " + " | ".join([
            r["row"], f"{sps:,.0f}" if sps else "-",
            f"{sps / base:.2f}x" if sps and base else "-",
            f"{m:.1%}" if m is not None else "-", f"{first:.1f}" if first else "-",
            f"{r['compile_seconds']:.1f}" if r.get("compile_seconds") is not None else "-"])
            + " |")
    return "\n".join(out)


def measure(table: Table, names: list[str], model: str, random_init: bool, out: Path
            ) -> int:
    """Run the table's rows on `model` (a Hub id or a local folder); write JSON after every
    row and the markdown at the end."""
    from dataclasses import replace

    w = replace(table.workload, model=model)
    setup = Setup.load(w)
    facts = {**setup.facts(), "model": "bert-base-uncased" if random_init else model,
             "random_init": random_init, "torch": torch.__version__, "cuda": torch.version.cuda}
    out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for name in names:
        t0 = time.perf_counter()
        try:
            row = summarise(name, run_row(setup, table.rows[name]), setup, random_init)
        except Exception as exc:  # a failing row is a finding; the table goes on without it
            row = {"row": name, "error": f"{type(exc).__name__}: {exc}"[:2000]}
        rows.append({**row, "wall_seconds": round(time.perf_counter() - t0, 1)})
        print(json.dumps(rows[-1]), flush=True)
        out.write_text(json.dumps({"table": table.title, "facts": facts, "rows": rows},
                                  indent=2, default=str))  # a killed run keeps its rows
    text = markdown(table, rows, facts)
    out.with_suffix(".md").write_text(text + "\n")
    print("\n" + text)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--all", action="store_true", help="every table, the GPU tests and the "
                    "shipped suite, each under a time cap (benchmarks/gpu_all.py)")
    ap.add_argument("--dry-run", action="store_true", help="with --all: print the plan")
    ap.add_argument("--table", choices=sorted(TABLES), default="long")
    ap.add_argument("--rows-only", default="", help="comma-separated rows of the table")
    ap.add_argument("--model", default="bert-base-uncased")
    ap.add_argument("--random-init", action="store_true",
                    help="bert-base-uncased architecture with random weights (offline)")
    ap.add_argument("--out", default=None, help="JSON file (--all: a folder)")
    args, rest = ap.parse_known_args(argv)
    if args.all:
        from benchmarks import gpu_all

        return gpu_all.main(rest + (["--dry-run"] if args.dry_run else [])
                            + (["--random-init"] if args.random_init else [])
                            + (["--out", args.out] if args.out else []))
    if rest:
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    table = TABLES[args.table]
    names = [v for v in args.rows_only.split(",") if v] or list(table.rows)
    unknown = [v for v in names if v not in table.rows]
    if unknown:
        print(f"--rows-only: unknown {', '.join(unknown)}; rows of table {args.table}: "
              f"{', '.join(table.rows)}", file=sys.stderr)
        return 2
    task = table.workload.task
    if data_dir(task) is None:
        from benchmarks.workload import DATA_MARKERS

        print(f"benchmarks.gpu: needs {DATA_MARKERS[task]} under BERTFT_DATA_DIR "
              "(default ../shared/data)", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("benchmarks.gpu: no CUDA device; these are GPU measurements", file=sys.stderr)
        return 2
    out = Path(args.out or ROOT / ".benchmarks" / f"gpu-{args.table}.json")
    # --random-init saves ~440 MB of weights here; removed when the measurements end
    with tempfile.TemporaryDirectory(prefix="bertft-bert-base-") as tmp:
        model = random_bert_base(Path(tmp)) if args.random_init else args.model
        return measure(table, names, model, args.random_init, out)


if __name__ == "__main__":
    raise SystemExit(main())
