"""GPU training efficiency: model FLOPs utilisation of bert-base fine-tuning, bertft against the
Hugging Face Trainer in the same process.

    python -m benchmarks.gpu                      # bert-base-uncased from the Hub
    python -m benchmarks.gpu --random-init        # offline: the same architecture, random weights
    python -m benchmarks.gpu --variants bertft,bertft-compile --out .benchmarks/gpu.json

Workload: the IMDb train sample (reviews average over 200 words, so nearly every sequence fills
`max_length` 128 and real tokens are nearly all tokens), batch 32, lr 5e-5, `--epochs` epochs.
Throughput and MFU are taken from the *last* epoch (steady state: CUDA context, allocator,
cuBLAS heuristics and torch.compile all warm up in the first). MFU = training FLOPs (6 x
non-embedding parameters x real tokens + attention, `bertft.perf.training_flops`) over the
epoch's synchronised wall time and the device's dense bf16 peak (`bertft.perf.peak_flops`).

Variants (all bf16 autocast where the GPU supports it, i.e. `precision="auto"`):
  bertft            fused AdamW, SDPA attention, eager
  bertft-compile    + torch.compile, lengths padded to a multiple of 32 (few shapes to compile)
  bertft-graphs     + torch.compile(mode="reduce-overhead"): CUDA graphs, max_length padding
  bertft-bs128      + torch.compile, batch 128 (what the hardware can do with bigger steps)
  trainer           Trainer, bf16=True, dynamic padding, group_by_length
  trainer-compile   Trainer, bf16=True, torch_compile=True

`--random-init` exists because MFU does not depend on weight values: it builds bert-base-uncased's
architecture (transformers' `BertConfig()` defaults: 12 layers, hidden 768, 12 heads, vocab
30,522) with random weights and the minilm-l6 tokenizer (the same uncased WordPiece vocabulary),
so it runs where the Hub cannot be reached. Accuracy is not reported for random weights.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.workload import ROOT, Setup, Workload, data_dir, run_bertft, run_trainer

VARIANTS: dict[str, dict[str, Any]] = {
    "bertft": {},
    "trainer": {},
    "bertft-compile": {"compile": True, "pad_to_multiple_of": 32},
    "bertft-graphs": {"compile": True, "compile_mode": "reduce-overhead",
                      "padding": "max_length"},
    "trainer-compile": {"compile": True},
    "bertft-bs128": {"compile": True, "pad_to_multiple_of": 32, "batch_size": 128},
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


def run_variant(setup: Setup, name: str) -> dict[str, Any]:
    overrides = dict(VARIANTS[name])
    if name.startswith("trainer"):
        return run_trainer(setup, "dynamic", compile=overrides.get("compile", False))
    return run_bertft(setup, sampling="random", **overrides)


def summarise(name: str, r: dict[str, Any], setup: Setup, random_init: bool) -> dict[str, Any]:
    last = r["epoch_seconds"][-1] if r.get("epoch_seconds") else None
    per_epoch = len(setup.splits.train)  # both systems train on these features
    return {"variant": name, "epoch_seconds": [round(s, 3) for s in r.get("epoch_seconds", [])],
            "samples_per_s_last_epoch": per_epoch / last if last else None,
            "mfu_last_epoch": r.get("mfu_last_epoch"), "mfu_all_epochs": r.get("mfu"),
            "peak_memory_mb": r.get("peak_memory_mb"),
            "accuracy": None if random_init else r.get("accuracy")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="bert-base-uncased")
    ap.add_argument("--random-init", action="store_true",
                    help="bert-base-uncased architecture with random weights (offline)")
    ap.add_argument("--rows", type=int, default=2048, help="IMDb training reviews per epoch")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--out", default=str(ROOT / ".benchmarks" / "gpu.json"))
    args = ap.parse_args(argv)
    names = [v for v in args.variants.split(",") if v]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        print(f"--variants: unknown {', '.join(unknown)}; allowed: {', '.join(VARIANTS)}",
              file=sys.stderr)
        return 2
    if data_dir("imdb") is None:
        print("benchmarks.gpu: needs imdb/imdb_train_sample.csv under BERTFT_DATA_DIR "
              "(default ../shared/data)", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("benchmarks.gpu: no CUDA device; MFU is a GPU measurement", file=sys.stderr)
        return 2
    # --random-init saves ~440 MB of weights here; removed when the measurements end
    with tempfile.TemporaryDirectory(prefix="bertft-bert-base-") as tmp:
        model = random_bert_base(Path(tmp)) if args.random_init else args.model
        return measure(args, names, model)


def measure(args: argparse.Namespace, names: list[str], model: str) -> int:
    """Run the variants on `model` (a Hub id or a local folder), write and print the table."""
    w = Workload(task="imdb", model=model, train_rows=args.rows, val_rows=256, test_rows=512,
                 max_length=128, batch_size=32, epochs=args.epochs)
    setup = Setup.load(w)
    facts = {**setup.facts(), "model": args.model, "random_init": args.random_init,
             "torch": torch.__version__, "cuda": torch.version.cuda}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows, raw = [], {}
    for name in names:
        t0 = time.perf_counter()
        raw[name] = run_variant(setup, name)
        rows.append(summarise(name, raw[name], setup, args.random_init))
        print(json.dumps({**rows[-1], "wall_seconds": round(time.perf_counter() - t0, 1)}),
              flush=True)
        out.write_text(json.dumps({"facts": facts, "rows": rows, "raw": raw}, indent=2,
                                  default=str))  # after every variant: a killed run keeps rows
    base = next((r for r in rows if r["variant"] == "trainer"), None)
    print(f"\n{facts['device']}, torch {facts['torch']}, {args.model}"
          f"{' (random init)' if args.random_init else ''}, IMDb {w.train_rows} rows, "
          f"max_length {w.max_length}, last of {w.epochs} epochs")
    print("| variant | samples/s | MFU | vs trainer | peak MiB |\n|---|---|---|---|---|")
    for r in rows:
        sps, m = r["samples_per_s_last_epoch"], r["mfu_last_epoch"]
        ratio = (sps / base["samples_per_s_last_epoch"]
                 if base and sps and base["samples_per_s_last_epoch"] else None)
        print(f"| {r['variant']} | {sps:.0f} | {m:.1%} | "
              f"{f'{ratio:.2f}x' if ratio else '-'} | {r['peak_memory_mb']:.0f} |"
              if sps and m is not None else f"| {r['variant']} | - | - | - | - |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

