"""Whole process against whole process: `bertft train` (its defaults) against a Trainer script.

    python -m benchmarks.process                      # SST-2, 2,000 rows, 875 validation rows
    python -m benchmarks.process --rows 256 --val-rows 64 --test-rows 256   # the gate's size

Each round starts both as fresh processes, one after the other (interleaved: a burst of load on a
shared machine hits one round, not one system), and times each from start to exit: interpreter
start, imports, data, tokenization, model load, training, evaluation. Both do the same evaluation
work: the same validation rows (bertft's carve, `validation_ratio = val_rows / 67,349`) once, at
the end of the one epoch, and the 872 GLUE dev rows (or a seeded subset, `--test-rows`) as the
test set, both with evaluation batches of 128. The Trainer script is what a user writes with the
Trainer's best CPU recipe (on a GPU: bf16, as bertft's defaults pick there): dynamic padding
(`DataCollatorWithPadding`) and `train_sampling_strategy = "group_by_length"`; it takes the rows
from `bertft.data.load_task` (so both see identical examples) and tokenizes them itself.
Neither writes model files. Printed per system: wall seconds (fastest round) and training
samples/s; the ratio is the Trainer's wall time over bertft's (higher is better for bertft).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GLUE_SST2_TRAIN = 67349
COMMON = dict(epochs=1, batch_size=32, lr=5e-5, max_length=128, eval_batch_size=128)


def _sizes(rows: int, val_rows: int, test_rows: int | None) -> dict:
    """The data settings both systems load their rows with (`bertft.data.load_task`)."""
    return {"max_train_samples": rows, "validation_ratio": val_rows / GLUE_SST2_TRAIN,
            "max_test_samples": test_rows}


def bertft_argv(data: str, rows: int, val_rows: int, test_rows: int | None,
                out: str) -> list[str]:
    """`bertft train` with its defaults and the shared workload settings."""
    c = COMMON
    sizes = {k: "none" if v is None else v for k, v in _sizes(rows, val_rows,
                                                               test_rows).items()}
    sets = {"task": '"sst2"', "data_dir": json.dumps(data), **sizes, "epochs": c["epochs"],
            "batch_size": c["batch_size"], "head_lr": c["lr"], "base_lr": c["lr"],
            "max_length": c["max_length"], "eval_batch_size": c["eval_batch_size"],
            "save_model": "false", "progress": "false"}
    return [sys.executable, "-m", "bertft", "train", "--out", out,
            *[x for k, v in sets.items() for x in ("--set", f"{k}={v}")]]


def trainer_main(data: str, rows: int, val_rows: int, test_rows: int | None) -> dict:
    """The Trainer script (run in its own process by `trainer_argv`)."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
        TrainingArguments,
    )

    from bertft.config import Config
    from bertft.data import load_task
    from bertft.models import minilm_dir

    c = COMMON
    splits = load_task(Config.of(task="sst2", data_dir=data,
                                 **_sizes(rows, val_rows, test_rows)).data)
    tok = AutoTokenizer.from_pretrained(minilm_dir())

    def encode(examples) -> list[dict]:
        enc = tok([e.text for e in examples], truncation=True, max_length=c["max_length"])
        return [{"input_ids": ids, "attention_mask": m, "labels": e.label}
                for ids, m, e in zip(enc["input_ids"], enc["attention_mask"], examples,
                                     strict=True)]

    train, val, test = (encode(s) for s in (splits.train, splits.validation, splits.test))
    model = AutoModelForSequenceClassification.from_pretrained(minilm_dir(), num_labels=2)
    with tempfile.TemporaryDirectory(prefix="bertft-bench-trainer-") as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=c["batch_size"],
            per_device_eval_batch_size=c["eval_batch_size"], learning_rate=c["lr"],
            weight_decay=0.01, num_train_epochs=c["epochs"], lr_scheduler_type="linear",
            seed=0, report_to=[], save_strategy="no", logging_strategy="no",
            eval_strategy="epoch", disable_tqdm=True,
            # the device and precision bertft's defaults pick: CPU fp32, or a GPU with bf16
            use_cpu=not torch.cuda.is_available(),
            bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
            train_sampling_strategy="group_by_length", dataloader_num_workers=0)
        trainer = Trainer(model=model, args=args, data_collator=DataCollatorWithPadding(tok),
                          train_dataset=train, eval_dataset=val)
        t0 = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t0  # includes the end-of-epoch evaluation
        pred = trainer.predict(test)
    acc = float((pred.predictions.argmax(-1) == pred.label_ids).mean())
    return {"train_and_eval_seconds": seconds, "accuracy": acc, "train": len(train),
            "validation": len(val), "test": len(test)}


def trainer_argv(data: str, rows: int, val_rows: int, test_rows: int | None) -> list[str]:
    return [sys.executable, "-m", "benchmarks.process", "--trainer-script", "--data", data,
            "--rows", str(rows), "--val-rows", str(val_rows),
            *(["--test-rows", str(test_rows)] if test_rows is not None else [])]


def _timed(argv: list[str]) -> tuple[float, str]:
    env = {**os.environ, "BERTFT_CACHE_DIR": "", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    out = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} ... exited {out.returncode}:\n{out.stderr}")
    return seconds, out.stdout


def measure(data: str, rows: int, val_rows: int, rounds: int,
            test_rows: int | None = None) -> dict:
    """Interleaved rounds of both processes; the fastest wall time of each counts."""
    walls: dict[str, list[float]] = {"bertft": [], "trainer": []}
    info: dict[str, dict] = {}
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="bertft-bench-process-") as out:
            seconds, _ = _timed(bertft_argv(data, rows, val_rows, test_rows, out))
            metrics = json.loads((Path(out) / "metrics.json").read_text())
        walls["bertft"].append(seconds)
        info["bertft"] = {"accuracy": metrics["test"]["accuracy"], **{
            k: metrics["timing"][k] for k in ("train_seconds", "samples_per_s", "eval_seconds",
                                              "setup_seconds", "non_train_share")},
            "validation": metrics["data"]["validation"]}
        seconds, stdout = _timed(trainer_argv(data, rows, val_rows, test_rows))
        walls["trainer"].append(seconds)
        info["trainer"] = json.loads(stdout.strip().splitlines()[-1])
    return {"rows": rows, "val_rows": val_rows, "test_rows": test_rows, "rounds": rounds,
            "wall_seconds": walls,
            "process_vs_trainer": min(walls["trainer"]) / min(walls["bertft"]), **info}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.process", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.environ.get("BERTFT_DATA_DIR")
                   or str(ROOT.parent / "shared" / "data"))
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--val-rows", type=int, default=875)
    p.add_argument("--test-rows", type=int, default=None,
                   help="a seeded subset of GLUE dev as the test set (default: all 872)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--trainer-script", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.trainer_script:
        print(json.dumps(trainer_main(args.data, args.rows, args.val_rows, args.test_rows)))
        return 0
    print(json.dumps(measure(args.data, args.rows, args.val_rows, args.rounds, args.test_rows),
                     indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
