"""Whole process against whole process: `bertft train` (its defaults) against a Trainer script.

    python -m benchmarks.process                      # SST-2, 2,000 rows, 875 validation rows
    python -m benchmarks.process --rows 256 --val-rows 64 --test-rows 256   # the gate's size
    python -m benchmarks.process --workload short-questions   # very short texts, same sizes

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

`--workload short-questions` trains both on very short texts instead: the first `--rows` SST-2
training phrases of 6 to 14 words (`benchmarks.workload.SHORT_QUESTIONS`' selection,
`keep_words`, in the order `load_task` gives the training split), with the same validation and
test rows as the default workload. The benchmark writes the three splits once, untimed, as TSV
files (`sentence<TAB>label`) in a temporary folder, checks that bertft's `text-file` task reads
them back as exactly those examples, and both processes then load them through that task (as a
user's own data), so reading the data is inside each timed process.
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


def sst2_settings(data: str, rows: int | None, val_rows: int, test_rows: int | None,
                  folder: Path | None = None) -> dict:
    """The default workload's data settings: SST-2 from `data`, a seeded subset of `rows`
    training rows, `val_rows` carved from train, `test_rows` of GLUE dev (None: all 872).
    Both systems load their rows with them (`bertft.data.load_task`); `folder` is unused."""
    return {"task": "sst2", "data_dir": data, "max_train_samples": rows,
            "validation_ratio": val_rows / GLUE_SST2_TRAIN, "max_test_samples": test_rows}


QUESTION_COLUMNS = ("sentence", "label")


def question_settings(data: str, rows: int, val_rows: int, test_rows: int | None,
                      folder: Path) -> dict:
    """The short-questions workload: writes its splits into `folder` as TSV files and returns
    the `text-file` settings that load them. Train: the first `rows` training texts of
    `SHORT_QUESTIONS.words` words (`keep_words`) of the default workload's training pool;
    validation and test: the default workload's. Refuses files that bertft would not read back
    as exactly these examples."""
    from benchmarks.workload import SHORT_QUESTIONS, keep_words  # imports torch: not in the
    from bertft.config import Config  # timed Trainer script, which imports this module
    from bertft.data import load_task

    source = load_task(Config.of(**sst2_settings(data, None, val_rows, test_rows)).data)
    chosen = keep_words(source, SHORT_QUESTIONS.words, rows)
    settings: dict = {"task": "text-file", "text_column": QUESTION_COLUMNS[0],
                      "label_column": QUESTION_COLUMNS[1]}
    for split in ("train", "validation", "test"):
        path = folder / f"{split}.tsv"
        lines = ["\t".join(QUESTION_COLUMNS)] + [
            f"{e.text}\t{chosen.label_names[e.label]}" for e in getattr(chosen, split)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        settings[f"{split}_file"] = str(path)
    loaded = load_task(Config.of(**settings).data)
    differ = [name for name in ("label_names", "train", "validation", "test")
              if getattr(loaded, name) != getattr(chosen, name)]
    if differ:
        raise SystemExit(f"short-questions: {', '.join(differ)} read back from {folder} differ "
                         "from the rows written there")
    return settings


# --workload: the function that gives both systems' data settings (writing any files they read
# into the folder it is given, which lives as long as the measurement)
WORKLOADS = {"sst2": sst2_settings, "short-questions": question_settings}


def _cli_value(value) -> str:
    """A setting as `--set` reads it back (a TOML literal; `none` for None)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return json.dumps(value) if isinstance(value, str) else str(value)


def bertft_argv(settings: dict, out: str) -> list[str]:
    """`bertft train` with its defaults, the data `settings` and the shared workload settings."""
    c = COMMON
    sets = {**settings, "epochs": c["epochs"], "batch_size": c["batch_size"],
            "head_lr": c["lr"], "base_lr": c["lr"], "max_length": c["max_length"],
            "eval_batch_size": c["eval_batch_size"], "save_model": False, "progress": False}
    return [sys.executable, "-m", "bertft", "train", "--out", out,
            *[x for k, v in sets.items() for x in ("--set", f"{k}={_cli_value(v)}")]]


def trainer_main(settings: dict) -> dict:
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
    splits = load_task(Config.of(**settings).data)
    tok = AutoTokenizer.from_pretrained(minilm_dir())

    def encode(examples) -> list[dict]:
        enc = tok([e.text for e in examples], truncation=True, max_length=c["max_length"])
        return [{"input_ids": ids, "attention_mask": m, "labels": e.label}
                for ids, m, e in zip(enc["input_ids"], enc["attention_mask"], examples,
                                     strict=True)]

    train, val, test = (encode(s) for s in (splits.train, splits.validation, splits.test))
    model = AutoModelForSequenceClassification.from_pretrained(
        minilm_dir(), num_labels=len(splits.label_names))
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


def trainer_argv(settings: dict) -> list[str]:
    return [sys.executable, "-m", "benchmarks.process", "--trainer-script", "--settings",
            json.dumps(settings)]


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
            test_rows: int | None = None, workload: str = "sst2") -> dict:
    """Interleaved rounds of both processes on `workload` (`WORKLOADS`); the fastest wall time
    of each counts. Any data files are written once, before the first round, untimed."""
    walls: dict[str, list[float]] = {"bertft": [], "trainer": []}
    info: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bertft-bench-data-") as folder:
        settings = WORKLOADS[workload](data, rows, val_rows, test_rows, Path(folder))
        for _ in range(rounds):
            with tempfile.TemporaryDirectory(prefix="bertft-bench-process-") as out:
                seconds, _ = _timed(bertft_argv(settings, out))
                metrics = json.loads((Path(out) / "metrics.json").read_text())
            walls["bertft"].append(seconds)
            info["bertft"] = {"accuracy": metrics["test"]["accuracy"], **{
                k: metrics["timing"][k] for k in ("train_seconds", "samples_per_s",
                                                  "eval_seconds", "setup_seconds",
                                                  "non_train_share")},
                "validation": metrics["data"]["validation"]}
            seconds, stdout = _timed(trainer_argv(settings))
            walls["trainer"].append(seconds)
            info["trainer"] = json.loads(stdout.strip().splitlines()[-1])
    return {"workload": workload, "rows": rows, "val_rows": val_rows, "test_rows": test_rows,
            "rounds": rounds, "wall_seconds": walls,
            "process_vs_trainer": min(walls["trainer"]) / min(walls["bertft"]), **info}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.process", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", choices=list(WORKLOADS), default="sst2",
                   help="sst2: SST-2 rows; short-questions: SST-2 phrases of 6 to 14 words, "
                        "read from TSV files (default: sst2)")
    p.add_argument("--data", default=os.environ.get("BERTFT_DATA_DIR")
                   or str(ROOT.parent / "shared" / "data"))
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--val-rows", type=int, default=875)
    p.add_argument("--test-rows", type=int, default=None,
                   help="a seeded subset of GLUE dev as the test set (default: all 872)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--trainer-script", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--settings", type=json.loads, help=argparse.SUPPRESS)  # the script's data
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.trainer_script:
        print(json.dumps(trainer_main(args.settings)))
        return 0
    print(json.dumps(measure(args.data, args.rows, args.val_rows, args.rounds, args.test_rows,
                             args.workload), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
