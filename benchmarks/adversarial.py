"""Adversarial pass (issue 14): hostile inputs and faults against the real CLI and pytest
plugin (`bertft.cli.main`, in this process), on tiny-bert and small files in a scratch folder.

    python -m benchmarks.adversarial /tmp/scratch      # writes /tmp/scratch/adversarial.md

Each case returns one outcome:
- clean: a usage error with one `bertft: error:` message (exit 2), a divergence message
  (exit 3), a pytest usage/collection error naming the problem, or a correct success;
- silent: exit 0 with a wrong answer (a stale model, shifted spans, NaN metrics...);
- lost: training ran, then the run failed or its results were not stored;
- unclear: anything else (a traceback, a message that does not say what is wrong).
Not part of CI (minutes of CPU); the case list and the counts go to docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES: list[tuple[str, str, Callable[[Path], tuple[str, str]]]] = []
TINY = ["--model", "tiny-bert", "--epochs", "1", "--batch-size", "8", "--max-length", "16",
        "--progress", "false", "--num-threads", "1"]


def case(group: str, title: str):
    def register(fn):
        CASES.append((group, title, fn))
        return fn
    return register


def bertft(*args: str, cwd: Path | None = None, umask: int | None = None
           ) -> subprocess.CompletedProcess:
    """The CLI's `main` in this process (a subprocess per case would import torch fifty times
    on a shared machine), its stdout and stderr captured; an escaping exception is a
    traceback on stderr, as the console script would print it."""
    from bertft.cli import main as cli

    if args and args[0] == "ablate":
        args = (*args, "-p", "no:cacheprovider")
    out, err = io.StringIO(), io.StringIO()
    here, mask = os.getcwd(), None
    try:
        if cwd is not None:
            os.chdir(cwd)
        if umask is not None:
            mask = os.umask(umask)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = cli(list(args))
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 2
            except Exception:  # noqa: BLE001 - what a user would see
                traceback.print_exc(file=err)
                rc = 1
    finally:
        os.chdir(here)
        if mask is not None:
            os.umask(mask)
    return subprocess.CompletedProcess(list(args), rc, out.getvalue(), err.getvalue())


def one_error(p: subprocess.CompletedProcess, *needles: str, code: int = 2) -> tuple[str, str]:
    """clean when the process exited `code` with one message holding every needle."""
    err = p.stderr.strip().splitlines()
    last = err[-1] if err else ""
    if "Traceback" in p.stderr:
        return "unclear", "traceback: " + last[:160]
    if p.returncode == code and all(n in p.stderr for n in needles):
        return "clean", last[:200]
    if p.returncode == 0:
        return "silent", f"exit 0; expected an error ({last[:160]})"
    return "unclear", f"exit {p.returncode}: {last[:160]}"


def csv_file(path: Path, n: int = 24, labels: int = 2) -> Path:
    rows = "".join(f"word{i} text {i % 7},c{i % labels}\n" for i in range(n))
    path.write_text("text,label\n" + rows, encoding="utf-8")
    return path


def conll_file(path: Path) -> Path:
    path.write_text("".join(f"John{i} B-PER\nlives O\nin O\nParis B-LOC\n\n" for i in range(12)),
                    encoding="utf-8")
    return path


def train(d: Path, out: str, *extra: str, data: Path | None = None, task: str = "text-file"
          ) -> subprocess.CompletedProcess:
    data = data or csv_file(d / "train.csv")
    return bertft("train", "--out", str(d / out), "--task", task, "--train-file", str(data),
                  *TINY, *extra)


_RUNS: dict[str, Path] = {}


def minilm_dir() -> Path:
    from bertft.models import minilm_dir as find

    return Path(find())


def trained_run(d: Path, kind: str = "classification", seed: int = 0) -> Path:
    """A saved run, trained once per pass and copied by each case that damages it."""
    key = f"{kind}-{seed}"
    if key not in _RUNS:
        base = d.parent / f"_run_{key}"
        if kind == "ner":
            p = train(base.parent, base.name, "--seed", str(seed), task="conll-file",
                      data=conll_file(base.parent / "train.conll"))
        else:
            p = train(base.parent, base.name, "--seed", str(seed))
        assert p.returncode == 0, p.stderr
        _RUNS[key] = base
    copy = d / f"run_{key}"
    shutil.copytree(_RUNS[key], copy)
    return copy


# -- output locations ----------------------------------------------------------------------------
@case("outputs", "--out is a symlink to a file")
def _(d):
    (d / "f").write_text("x")
    (d / "link").symlink_to(d / "f")
    return one_error(train(d, "link"), "exists and is not a folder")


@case("outputs", "--out under /sys (read-only even for root)")
def _(d):
    return one_error(bertft("train", "--out", "/sys/bertft-run", "--task", "text-file",
                            "--train-file", str(csv_file(d / "t.csv")), *TINY),
                     "--out /sys/bertft-run: cannot write in /sys")


@case("outputs", "--out '' (the current folder, not empty)")
def _(d):
    (d / "notes.txt").write_text("mine")
    p = bertft("train", "--out", "", "--task", "text-file", "--train-file",
               str(csv_file(d / "t.csv")), *TINY, cwd=d)
    kept = (d / "notes.txt").read_text() == "mine"
    out = one_error(p, "not empty")
    return out if kept else ("lost", "a user file was removed")


@case("outputs", "report --out with a 256-byte folder name")
def _(d):
    shutil.copytree(ROOT / "tests/fixtures/report/results", d / "results")
    return one_error(bertft("report", str(d / "results"), "--out", str(d / ("r" * 256))),
                     "256 bytes long")


@case("outputs", "ablate --results below a file")
def _(d):
    (d / "f").write_text("x")
    spec = d / "s.toml"
    spec.write_text('name = "s"\n[base]\nmodel = "tiny-bert"\n[grid]\nepochs = [1]\n')
    return one_error(bertft("ablate", str(spec), "--results", str(d / "f" / "results")),
                     "exists and is not a folder")


@case("outputs", "train again into a finished run (no --overwrite)")
def _(d):
    run = trained_run(d)
    before = (run / "model.safetensors").read_bytes()
    out = one_error(train(d, run.name), "holds another run", "--overwrite")
    return out if (run / "model.safetensors").read_bytes() == before else ("lost", "changed")


@case("outputs", "a folder holding another config's checkpoint")
def _(d):
    (d / "out" / "checkpoint").mkdir(parents=True)
    (d / "out" / "checkpoint" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    return one_error(train(d, "out", "--checkpoint-every-epoch", "true"), "holds another run")


@case("outputs", "--overwrite a run: new model answers, old files gone")
def _(d):
    run = trained_run(d)
    p = train(d, run.name, "--overwrite", "--seed", "5")
    if p.returncode != 0:
        return "unclear", p.stderr[-200:]
    cfg = json.loads((run / "bertft_config.json").read_text())
    q = bertft("predict", str(run), "word3 text")
    ok = cfg["config"]["seed"] == 5 and q.returncode == 0
    return ("clean", "replaced; predict answers") if ok else ("silent", q.stderr[-200:])


# -- numeric settings ----------------------------------------------------------------------------
def setting_case(title: str, flag: list[str], *needles: str, task: str = "text-file") -> None:
    @case("settings", title)
    def _(d):
        data = conll_file(d / "t.conll") if task == "conll-file" else None
        p = train(d, "out", *flag, data=data, task=task)
        out = one_error(p, *needles)
        if (d / "out" / "metrics.json").exists():
            return "lost", "trained before refusing"
        return out


setting_case("warmup_steps = inf", ["--set", "warmup_steps=inf"], "warmup_steps = inf")
setting_case("adam_beta2 = nan", ["--set", "adam_beta2=nan"], "adam_beta2 = nan")
setting_case("layer_lr_decay = inf", ["--layer-lr-decay", "inf"], "layer_lr_decay = inf")
setting_case("eval_steps = -1", ["--eval-steps=-1"], "eval_steps = -1")
setting_case("seed = -5", ["--seed=-5"], "seed = -5: allowed: [0, 4294967295]")
setting_case("data_seed = 2**40", ["--data-seed", str(2**40)], "data_seed = 1099511627776")
setting_case("max_length = 513 on a 512-position model", ["--max-length", "513"],
             "embeds at most 512 positions")
setting_case("freeze_layers = 3 on a 2-layer model", ["--freeze-layers", "3"],
             "has 2 encoder layers")
setting_case("token_column = 1000 (conll)", ["--token-column", "1000"],
             "token_column = 1000: allowed", task="conll-file")
setting_case("weight_decay = -inf", ["--set", "weight_decay=-inf"], "weight_decay = -inf")
setting_case("max_grad_norm = 1e300", ["--max-grad-norm", "1e300"], "max_grad_norm = 1e+300")


@case("settings", "--config TOML with head_lr = inf")
def _(d):
    (d / "c.toml").write_text("[base]\nhead_lr = inf\n")
    return one_error(train(d, "out", "--config", str(d / "c.toml")), "head_lr = inf")


@case("settings", "--config TOML whose base is a list")
def _(d):
    (d / "c.toml").write_text("base = [1, 2]\n")
    return one_error(train(d, "out", "--config", str(d / "c.toml")), "'base' is list")


def spec_case(title: str, text: str, *needles: str) -> None:
    @case("specs", title)
    def _(d):
        return collection_error(d, text, needles)


def collection_error(d: Path, text: str, needles: tuple[str, ...], args: tuple[str, ...] = (),
                     cwd: Path | None = None) -> tuple[str, str]:
    """`bertft ablate` on a spec that should fail collection: clean when it exits 2 or 4 with
    every needle in its output, no traceback and no stored result."""
    spec = d / "s.toml"
    spec.write_text(text)
    p = bertft("ablate", str(spec), *args, "--results", str(d / "results"), "--no-report", "-q",
               cwd=cwd)
    out = p.stdout + p.stderr
    if "INTERNALERROR" in out or "Traceback" in out:
        return "unclear", "traceback"
    stored = list((d / "results").rglob("*=*.json")) if (d / "results").exists() else []
    if p.returncode in (2, 4) and all(n in out for n in needles) and not stored:
        return "clean", next(ln for ln in out.splitlines() if needles[0] in ln)[:200]
    return ("silent" if p.returncode == 0 else "unclear"), out[-300:]


SPEC = ('name = "s"\nseeds = [0]\n[base]\nmodel = "tiny-bert"\ntask = "bbc-news"\n'
        'max_train_samples = 16\nmax_length = 16\nepochs = 1\nprogress = false\n')
spec_case("grid max_length = [64, 100000]", SPEC + "[grid]\nmax_length = [64, 100000]\n",
          "max_length = 100000")
spec_case("[resources] num_gpus = -inf", SPEC + "[grid]\nepochs = [1]\n[resources]\n"
          "num_gpus = -inf\n", "num_gpus = -inf: expected a finite number")
spec_case("base head_lr = nan", SPEC.replace("epochs = 1", "epochs = 1\nhead_lr = nan")
          + "[grid]\nbatch_size = [8]\n", "head_lr = nan")
spec_case("zip baseline matching no arm", SPEC.replace('name = "s"', 'name = "s"\nbaseline = '
          '{ head_lr = 1e-3, base_lr = 1e-5 }') + "[[zip]]\nhead_lr = [1e-3, 1e-4]\n"
          "base_lr = [1e-4, 1e-5]\n", "matches no arm of zip[0]")
spec_case("seeds = [4294967296]", SPEC.replace("seeds = [0]", "seeds = [4294967296]")
          + "[grid]\nepochs = [1]\n", "seed = 4294967296")


@case("specs", "two spec files with the same name")
def _(d):
    for n in ("a", "b"):
        (d / f"{n}.toml").write_text(SPEC + "[grid]\nepochs = [1]\n")
    p = bertft("ablate", str(d / "a.toml"), str(d / "b.toml"), "--results", str(d / "r"),
               "--no-report", "-q")
    out = p.stdout + p.stderr
    stored = list((d / "r").glob("s/*.json")) if (d / "r").exists() else []
    if p.returncode != 0 and "also the name of" in out and not stored:
        return "clean", "collection error: name = 's': also the name of a.toml"
    return ("silent" if p.returncode == 0 else "unclear"), out[-300:]


# -- divergence ----------------------------------------------------------------------------------
@case("divergence", "train with head_lr = base_lr = 10, no clipping")
def _(d):
    p = train(d, "out", "--head-lr", "10", "--base-lr", "10", "--max-grad-norm", "0",
              "--epochs", "3")
    if p.returncode == 3:
        return one_error(p, "bertft: diverged:", code=3)
    if p.returncode == 0:
        text = (d / "out" / "metrics.json").read_text()
        finite = "NaN" not in text and "Infinity" not in text
        val = json.loads(text)["validation"]
        ok = finite and all(v is not None for v in val.values())
        return ("clean", "trained; every metric finite") if ok else ("silent", "NaN metrics")
    return one_error(p, "never")


@case("divergence", "an ablation trial with lr = 10 stores no NaN and no false pass")
def _(d):
    spec = d / "s.toml"
    spec.write_text(SPEC.replace("epochs = 1", "epochs = 2\nmax_grad_norm = 0.0\nbase_lr = 10.0")
                    + "[grid]\nhead_lr = [10.0]\n")
    bertft("ablate", str(spec), "--results", str(d / "r"), "--no-report", "-q")
    files = list((d / "r" / "s").glob("*.json"))
    if not files:
        return "lost", "no result stored"
    text = files[0].read_text()
    rec = json.loads(text)
    val = rec.get("validation", {})
    nan = "NaN" in text or "Infinity" in text or any(
        v is None or (isinstance(v, float) and not math.isfinite(v)) for v in val.values()
        if not isinstance(v, dict | list))
    if rec["status"] == "passed" and nan:
        return "silent", "passed with NaN metrics"
    return "clean", f"stored as {rec['status']}; JSON finite"


# -- run folders ---------------------------------------------------------------------------------
def run_case(title: str, damage: Callable[[Path, Path], None], *needles: str,
             command: str = "predict") -> None:
    @case("run folders", title)
    def _(d):
        run = trained_run(d)
        damage(run, d)
        args = ["predict", str(run), "word1 text"] if command == "predict" \
            else ["eval", str(run)]
        return one_error(bertft(*args), *needles)


run_case("weights from another run (seed 1)", lambda r, d: shutil.copy(
    trained_run(d, seed=1) / "model.safetensors", r / "model.safetensors"),
    "not the file this run wrote")
run_case("tokenizer.json of another model (minilm)", lambda r, d: shutil.copy(
    minilm_dir() / "tokenizer.json", r / "tokenizer.json"), "tokenizer.json")
run_case("label names edited in bertft_config.json", lambda r, d: (r / "bertft_config.json")
         .write_text((r / "bertft_config.json").read_text().replace('"c0"', '"zz"')),
         "differ from the run's")
run_case("eval with config.json deleted", lambda r, d: (r / "config.json").unlink(),
         "no model files", command="eval")
run_case("empty model.safetensors", lambda r, d: (r / "model.safetensors").write_bytes(b""),
         "model.safetensors")
run_case("bertft_config.json truncated", lambda r, d: (r / "bertft_config.json").write_text(
    '{"kind": '), "unreadable")


@case("run folders", "predict --device cuda:x")
def _(d):
    return one_error(bertft("predict", str(trained_run(d)), "hi", "--device", "cuda:x"),
                     "device = 'cuda:x'")


@case("run folders", "eval --set data_seed=-1")
def _(d):
    return one_error(bertft("eval", str(trained_run(d)), "--set", "data_seed=-1"),
                     "data_seed = -1")


# -- NER spans -----------------------------------------------------------------------------------
def ner_case(title: str, text: str) -> None:
    @case("ner spans", title)
    def _(d):
        run = trained_run(d, "ner")
        p = bertft("predict", str(run), text)
        if p.returncode != 0:
            return one_error(p, "never")
        row = json.loads(p.stdout.splitlines()[0])
        bad = [e for e in row["entities"] if text[e["start"]:e["end"]] != e["text"]]
        if row["text"] != text or bad:
            return "silent", f"span text differs from the input at its offsets: {bad[:1]}"
        return "clean", f"{len(row['entities'])} entities, offsets match"


ner_case("only zero-width words", "\u200b \u200b\u200d John2 \u200b Paris")
ner_case("combining marks and tabs", "Jo\u0301hn3\tlives in\tPa\u0308ris")
ner_case("\\x1c separators and controls", "John4\x1clives\x07 in \x00 Paris")
ner_case("more words than max_length", " ".join(["John5 lives in Paris"] * 20))


# -- the results store ---------------------------------------------------------------------------
def store_case(title: str, change: Callable[[dict], None], *extra: str) -> None:
    @case("store", title)
    def _(d):
        spec = d / "s.toml"
        spec.write_text(SPEC + "[grid]\nepochs = [1]\n")
        args = ["ablate", str(spec), "--results", str(d / "r"), "--no-report", "-q"]
        first = bertft(*args)
        path = d / "r" / "s" / "epochs=1,seed=0.json"
        if first.returncode != 0 or not path.exists():
            return "lost", first.stdout[-200:]
        rec = json.loads(path.read_text())
        change(rec)
        path.write_text(json.dumps(rec))
        p = bertft(*args, *extra)
        moved = path.with_name(path.name + ".corrupt").exists()
        fresh = json.loads(path.read_text()) if path.exists() else {}
        if p.returncode == 0 and fresh.get("status") == "passed" and (moved or extra):
            return "clean", "quarantined and rerun" if moved else "rerun"
        if p.returncode == 0:
            return "silent", "damaged result reused"
        return "unclear", (p.stdout + p.stderr)[-200:]


store_case("stored seed is a string", lambda r: r.update(seed="0"))
store_case("stored passed result without validation metrics",
           lambda r: r.update(validation={}))
store_case("stored history row is a number", lambda r: r.update(history=[3]))
store_case("created = 'not a date' with --rerun", lambda r: r.update(created="not a date"),
           "--rerun")


@case("store", "an axis value of 400 characters")
def _(d):
    spec = d / "s.toml"
    long = "x" * 400
    spec.write_text(SPEC.replace("[base]", f'description = "{long}"\n[base]')
                    + f'[grid]\nmetric_for_best = ["auto"]\n[[zip]]\ntrain_file = ["{long}a", '
                    f'"{long}b"]\nfile_format = ["csv", "tsv"]\n')
    p = bertft("ablate", str(spec), "--results", str(d / "r"), "--no-report", "-q")
    out = p.stdout + p.stderr
    if "INTERNALERROR" in out or "File name too long" in out:
        return "unclear", out[-200:]
    stored = list((d / "r" / "s").glob("*.json")) if (d / "r" / "s").exists() else []
    # bbc-news ignores train_file: both trials train and must be stored under distinct names
    if len(stored) == 2:
        return "clean", f"stored as {stored[0].name[:30]}...{stored[0].name[-22:]}"
    return "lost", out[-200:]


@case("store", "result files are group-readable under umask 027")
def _(d):
    spec = d / "s.toml"
    spec.write_text(SPEC + "[grid]\nepochs = [1]\n")
    bertft("ablate", str(spec), "--results", str(d / "r"), "--no-report", "-q", umask=0o027)
    files = list((d / "r" / "s").glob("*.json"))
    if not files:
        return "lost", "not stored"
    mode = files[0].stat().st_mode & 0o777
    return ("clean", f"mode {oct(mode)}") if mode == 0o640 else ("silent", f"mode {oct(mode)}")


# -- data files ----------------------------------------------------------------------------------
def data_case(title: str, name: str, content: str, *needles: str,
              task: str = "text-file") -> None:
    @case("data", title)
    def _(d):
        (d / name).write_text(content, encoding="utf-8")
        return one_error(train(d, "out", data=d / name, task=task), *needles)


data_case("TSV header with a repeated column", "t.tsv", "label\ttext\tlabel\na\tx\tb\n",
          "names column 'label' twice")
data_case("JSONL object with a repeated key", "t.jsonl",
          '{"text": "x", "text": "y", "label": "a"}\n', "key 'text' appears twice")
data_case("CoNLL train file with only O tags", "t.conll", "a O\nb O\n\nc O\n",
          "every tag is 'O'", task="conll-file")


@case("data", "300 labels: metrics.json stays small")
def _(d):
    p = train(d, "out", "--save-model", "false", "--validation-ratio", "0.5",
              data=csv_file(d / "many.csv", n=1200, labels=300))
    if p.returncode != 0:
        return one_error(p, "never")
    size = (d / "out" / "metrics.json").stat().st_size
    val = json.loads((d / "out" / "metrics.json").read_text())["validation"]
    ok = "confusion_matrix" not in val and "top_confusions" in val and size < 400_000
    return ("clean", f"metrics.json {size} bytes, top confusions only") if ok else \
        ("silent", f"{size} bytes")


# -- reports -------------------------------------------------------------------------------------
@case("reports", "render one spec into a folder indexing others")
def _(d):
    src = ROOT / "tests/fixtures/report/results"
    for name in ("lr_batch", "ner_freeze"):
        shutil.copytree(src / name, d / f"res_{name}" / name)
    bertft("report", str(d / "res_lr_batch"), "--out", str(d / "reports"))
    p = bertft("report", str(d / "res_ner_freeze"), "--out", str(d / "reports"))
    index = (d / "reports" / "README.md").read_text()
    ok = p.returncode == 0 and "[lr_batch]" in index and "[ner_freeze]" in index
    return ("clean", "index keeps both specs") if ok else ("silent", "index truncated")


@case("reports", "report --format json of a result with inf in timing")
def _(d):
    src = ROOT / "tests/fixtures/report/results/ner_freeze"
    shutil.copytree(src, d / "r" / "ner_freeze")
    f = d / "r" / "ner_freeze" / "freeze_layers=0,seed=1.json"
    f.write_text(f.read_text().replace('"train_seconds": ', '"train_seconds": 1e999, "x": '))
    p = bertft("report", str(d / "r"), "--out", str(d / "out"), "--format", "json")
    text = (d / "out" / "ner_freeze.json").read_text() if p.returncode == 0 else ""
    try:
        json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        return "clean", "strict JSON"
    except ValueError as exc:
        return "silent", f"not JSON: {exc}"


# ---- issue 22: specs mean what they say ----
def meaning_case(title: str, text: str, *needles: str, args: tuple[str, ...] = ()) -> None:
    """A spec whose meaning differs from what it says: one collection error, nothing trained."""
    @case("specs", title)
    def _(d):
        (d / "data.csv").write_text("text,label\n" + "".join(f"t {i},{i % 2}\n"
                                                              for i in range(16)))
        return collection_error(d, text, needles, args, cwd=d)


GRID = SPEC + "[grid]\nepochs = [1, 2]\n"
meaning_case("--set epochs=2 where epochs is a grid axis", GRID, "epochs = 2 given on the "
             "command line", "the axis grid.epochs", args=("--set", "epochs=2"))
meaning_case("a baseline fixing one of two axes (matches 2 arms)",
             GRID.replace('name = "s"', 'name = "s"\nbaseline = { epochs = 1 }')
             + "freeze_layers = [0, 1]\n", "matches 2 arms", "add freeze_layers to it")
meaning_case("baseline = { freeze_embeddings = 0 } on a boolean axis",
             SPEC.replace('name = "s"', 'name = "s"\nbaseline = { freeze_embeddings = 0 }')
             + "[grid]\nfreeze_embeddings = [false, true]\n",
             "baseline.freeze_embeddings = 0: not among the axis values [false, true]")
meaning_case("a spec named README (the reports index)", GRID.replace('"s"', '"README"'),
             "name = 'README': reserved")
meaning_case("a grid over data files, one missing",
             SPEC.replace('"bbc-news"', '"text-file"')
             + '[grid]\ntrain_file = ["data.csv", "gone.csv"]\n',
             "train_file = 'gone.csv': file not found (arm train_file=gone.csv)")
meaning_case("a grid over num_threads (outside the result key)",
             SPEC + "[grid]\nnum_threads = [1, 2]\n",
             "grid.num_threads: num_threads does not change a trial's result")


@case("reports", "report after a run stopped after 1 of 3 trials")
def _(d):
    spec = d / "s.toml"
    spec.write_text(SPEC.replace("seeds = [0]", "seeds = [0, 1, 2]\nbaseline = { epochs = 1 }")
                    + "[grid]\nepochs = [1]\n")
    p = bertft("ablate", f"{spec}::s[epochs=1,seed=0]", "--results", str(d / "r"),
               "--no-report", "-q")
    if p.returncode != 0:
        return "unclear", (p.stdout + p.stderr)[-300:]
    p = bertft("report", str(d / "r"), "--out", str(d / "out"))
    index = (d / "out" / "README.md").read_text() if p.returncode == 0 else ""
    if "1 passed, 0 failed, 0 diverged, 0 unreadable; 2 of 3 trials missing" in index \
            and "no finding: 2 of 3 trials missing" in index:
        return "clean", "index: 2 of 3 trials missing; no finding"
    return "silent", index[-300:]


# ---- issue 22: result identity ----
@case("identity", "ablate, rewrite the local model's weights, ablate again")
def _(d):
    model = d / "model"
    shutil.copytree(minilm_dir(), model, ignore=shutil.ignore_patterns("1_Pooling"))
    spec = d / "s.toml"
    spec.write_text(SPEC.replace('"tiny-bert"', json.dumps(str(model))) + "[grid]\nepochs = [1]\n")
    args = ["ablate", str(spec), "--results", str(d / "r"), "--no-report", "-q", "-rs",
            "-W", "always"]
    first = bertft(*args)
    if first.returncode != 0:
        return "lost", (first.stdout + first.stderr)[-200:]
    weights = model / "model.safetensors"  # another pre-trained model of the same shape
    blob = bytearray(weights.read_bytes())
    blob[-1000:] = bytes(1000)
    weights.write_bytes(bytes(blob))
    p = bertft(*args)
    out = p.stdout + p.stderr
    if "stored result reused" in out:
        return "silent", "the old result was reused"
    if p.returncode == 0 and "the model files changed since this result was stored" in out:
        return "clean", "trained again: the model files changed (model.safetensors)"
    return "unclear", out[-200:]


@case("identity", "a tokenizer with truncation_side = left after one with right")
def _(d):
    from bertft.cache import Cache
    from bertft.config import Config
    from bertft.data import load_task
    from bertft.features import encode_splits
    from bertft.models import load_tokenizer

    rows = "".join(f"first{i} words differ from the last words {i % 5},c{i % 2}\n"
                   for i in range(40))
    (d / "t.csv").write_text("text,label\n" + rows, encoding="utf-8")
    cfg = Config.of(model="tiny-bert", task="text-file", train_file=str(d / "t.csv"),
                    max_length=8)
    splits, cache = load_task(cfg.data), Cache()
    right, left = load_tokenizer(cfg.model), load_tokenizer(cfg.model)
    left.truncation_side = "left"
    a = encode_splits(splits, right, cfg.tokens, cache).train
    b = encode_splits(splits, left, cfg.tokens, cache).train
    same = [x["input_ids"] == y["input_ids"] for x, y in zip(a, b, strict=True)]
    return ("silent", "left-truncating tokenizer got the first one's features") if all(same) \
        else ("clean", f"{same.count(False)} of {len(same)} examples truncated on the left")


@case("identity", "report over a store without .current, training-code versions 1 and 2")
def _(d):
    import warnings

    shutil.copytree(ROOT / "tests/fixtures/report/results", d / "results")
    folder = next(p for p in sorted((d / "results").iterdir()) if p.is_dir())
    shutil.rmtree(folder / ".current", ignore_errors=True)
    from bertft.report.load import load_one

    paths = [p for p in sorted(folder.glob("*.json")) if _loads(load_one, p)]
    for i, path in enumerate(paths):  # one result of version 1 among results of version 2
        rec = json.loads(path.read_text())
        rec["environment"]["training_code_version"] = 1 if i == 0 else 2
        path.write_text(json.dumps(rec))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = bertft("report", str(d / "results"), "--out", str(d / "reports"))
    md = (d / "reports" / f"{folder.name}.md").read_text() if p.returncode == 0 else ""
    if "training-code versions 1 and 2 are not compared" in md:
        return "clean", "version 1 left out, named in the report"
    return ("silent" if p.returncode == 0 else "unclear"), (p.stderr or md)[-200:]


def _loads(load: Callable[[Path], object], path: Path) -> bool:
    try:
        return bool(load(path))
    except ValueError:
        return False


@case("identity", "train killed with checkpoints, data file reordered, same command again")
def _(d):
    from unittest import mock

    from bertft import checkpoint

    data = csv_file(d / "t.csv", n=40)
    args = ("--checkpoint-every-epoch", "true", "--epochs", "2")
    with mock.patch.object(checkpoint, "remove", lambda directory: None):  # as if killed
        first = train(d, "run", *args, data=data)
    if first.returncode != 0:
        return "lost", first.stderr[-200:]
    lines = data.read_text().splitlines()
    data.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    p = train(d, "run", *args, data=data)
    if p.returncode == 0 and "was trained on other data" in p.stderr:
        return "clean", "started over: the checkpoint was trained on other data"
    return ("silent" if p.returncode == 0 else "unclear"), p.stderr[-200:]


@case("identity", "eval --split test after the data file's rows were reordered")
def _(d):
    data = csv_file(d / "t.csv", n=40)
    if train(d, "run", data=data).returncode != 0:
        return "lost", "training failed"
    lines = data.read_text().splitlines()
    data.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    return one_error(bertft("eval", str(d / "run"), "--split", "test"),
                     "the data differ from the data the run was trained on", str(data))


@case("identity", "a setting added with a default: the stored result is still reused")
def _(d):
    import dataclasses
    from unittest import mock

    from bertft import config
    from bertft.ablation.store import ResultStore
    from bertft.results import SpecInfo, TrialResult

    cfg = config.Config.of(model="tiny-bert")
    store = ResultStore(d / "r")
    info = SpecInfo(name="s", description="", file="s.toml", axes=(), baseline={}, seeds=(0,))
    store.write(TrialResult(info, "seed=0", "", {}, 0,
                            cfg.to_dict(), cfg.hash(), "passed", validation={"accuracy": 1.0}))
    settings = cfg.to_dict()  # as a spec written before the setting existed
    newer = dataclasses.make_dataclass("OptimConfig", [("knob", int, dataclasses.field(
        default=0))], bases=(config.OptimConfig,), frozen=True)
    with mock.patch.dict(config.SECTIONS, optim=newer), \
            mock.patch.dict(config.FIELDS, knob=dataclasses.fields(newer)[-1]), \
            mock.patch.dict(config.SECTION_OF, knob="optim"), \
            mock.patch.dict(config.HINTS, knob=int):
        now = config.Config.from_dict(settings)
        found = store.lookup("s", "seed=0", now)
        other = store.lookup("s", "seed=0", now.replace(knob=2))
    if found.state == "complete" and "knob 0 -> 2" in other.reason:
        return "clean", f"reused; with knob = 2: {other.reason}"
    return "silent", f"{found.state}: {found.reason}"


# ---- issue 22: data read as meant ----
def _saved(d: Path, splits: dict[str, dict], features: dict | None = None) -> Path:
    """A save_to_disk DatasetDict; `features[split]` gives a split its own features."""
    import datasets

    datasets.DatasetDict({k: datasets.Dataset.from_dict(v, features=(features or {}).get(k))
                          for k, v in splits.items()}).save_to_disk(str(d / "ds"))
    return d / "ds"


def _labelled(*names: str):
    import datasets

    return datasets.Features({"text": datasets.Value("string"),
                              "label": datasets.ClassLabel(names=list(names))})


def _loaded(**settings):
    from bertft.config import DataConfig
    from bertft.data import load_task

    return load_task(DataConfig(**settings))


_TRAIN = {"text": [f"t{i}" for i in range(24)], "label": [i % 2 for i in range(24)]}


def data22_case(title: str, build: Callable[[Path], tuple[dict, Callable]]) -> None:
    """`build` writes the data and returns the task settings and a check of the loaded
    splits: True when the labels are what the user meant."""
    @case("data (issue 22)", title)
    def _(d):
        settings, check = build(d)
        try:
            splits = _loaded(**settings)
        except Exception as exc:  # noqa: BLE001 - a refusal is not what these cases want
            return "unclear", f"{type(exc).__name__}: {exc}"[:200]
        return ("clean", "labels mapped by name") if check(splits) else (
            "silent", f"labels {splits.label_names}, test {[e.label for e in splits.test]}")


data22_case("test ClassLabel lists the names in another order", lambda d: (
    {"task": "hf-dataset", "dataset": str(_saved(
        d, {"train": _TRAIN, "test": {"text": ["a", "b"], "label": [0, 1]}},
        {"train": _labelled("neg", "pos"), "test": _labelled("pos", "neg")}))},
    lambda s: [e.label for e in s.test] == [1, 0]))
data22_case("string test labels beside a train ClassLabel", lambda d: (
    {"task": "hf-dataset", "dataset": str(_saved(
        d, {"train": _TRAIN, "test": {"text": ["a", "b"], "label": ["pos", "neg"]}},
        {"train": _labelled("neg", "pos")}))},
    lambda s: [e.label for e in s.test] == [1, 0]))
data22_case("labels 'neg', 'neg ' and café in NFC and NFD", lambda d: (
    {"task": "hf-dataset", "dataset": str(_saved(d, {"train": {
        "text": [f"t{i}" for i in range(24)],
        "label": ["neg", "neg ", "caf\u00e9", "cafe\u0301"] * 6}}))},
    lambda s: s.label_names == ("caf\u00e9", "neg")))
def _ag_news(d: Path) -> tuple[dict, Callable]:
    _write(d / "ag.csv", "".join(f"{i % 2 + 1},t{i}\n" for i in range(24)))
    disk = _saved(d, {"train": _TRAIN}, {"train": _labelled("World", "Sports")})
    return ({"task": "text-file", "train_file": str(d / "ag.csv"), "header": False,
             "label_column": 0, "text_column": 1, "label_names": ("World", "Sports"),
             "first_label_id": 1},
            lambda s: s.train == _loaded(task="hf-dataset", dataset=str(disk)).train)


data22_case("AG News 1..4 in a CSV with label_names agrees with the ClassLabel copy", _ag_news)


def _ner_null(d: Path) -> subprocess.CompletedProcess:
    rows = {"tokens": [["John", "lives"]] * 8 + [["Paris", None]],
            "ner_tags": [["B-PER", "O"]] * 9}
    return bertft("train", "--out", str(d / "o"), "--task", "hf-dataset-ner", "--dataset",
                  str(_saved(d, {"train": rows})), *TINY)


@case("data (issue 22)", "hf-dataset-ner: a null token")
def _(d):
    return one_error(_ner_null(d), "row 9: item 2 of column 'tokens' is null")


data_case("CoNLL: a line with an extra column among two-column lines", "t.conll",
          "John B-PER\nlives O\n\nNew York B-LOC\nis O\n", "line 4: 3 columns, but line 1",
          task="conll-file")


@case("data (issue 22)", "--header false on a file with a header line")
def _(d):
    path = d / "h.csv"
    path.write_text("text,label\n" + "".join(f"a text {i},{i % 6}\n" for i in range(36)))
    return one_error(train(d, "out", "--header", "false", "--text-column", "0",
                           "--label-column", "1", data=path), "looks like a header line")


@case("data (issue 22)", "hf-dataset with --header false")
def _(d):
    p = bertft("train", "--out", str(d / "o"), "--task", "hf-dataset", "--dataset",
               str(_saved(d, {"train": _TRAIN})), "--header", "false", "--text-column", "0",
               "--label-column", "1", *TINY)
    return one_error(p, "does not read header")


@case("data (issue 22)", "NER entities past max_length: counted, recall below 1")
def _(d):
    long = "".join("John B-PER\n" + "and O\n" * 20 + "Paris B-LOC\n\n" for _ in range(20))
    p = train(d, "out", "--max-length", "16", data=_write(d / "l.conll", long),
              task="conll-file")
    if p.returncode != 0:
        return one_error(p, "never")
    test = json.loads((d / "out" / "metrics.json").read_text())["test"]
    ok = test.get("truncated_entities", 0) > 0 and test["recall"] <= 0.5
    return ("clean", f"{test.get('truncated_entities')} cut, recall {test['recall']:.2f}") \
        if ok else ("silent", f"recall {test['recall']}, no count of cut entities")


@case("data (issue 22)", "a class absent from gold and predictions in macro-F1")
def _(d):
    from bertft.metrics import classification_metrics

    m = classification_metrics([0, 1, 0, 1], [0, 1, 0, 1], ("a", "b", "never"))
    return ("clean", "macro-F1 1.0") if m["f1_macro"] == 1.0 else (
        "silent", f"macro-F1 {m['f1_macro']:.3f} with a phantom class")


@case("data (issue 22)", "max_train_samples leaves one class")
def _(d):
    return one_error(train(d, "out", "--set", "max_train_samples=1"),
                     "the train split after carving and max_train_samples has only 1 class")


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---- issue 22: commands keep their word ----
def pair_run(d: Path) -> Path:
    """A run trained on text pairs (text_pair_column)."""
    data = d / "pairs.csv"
    data.write_text("text,second,label\n" + "".join(
        f"word{i} text,other {i % 5},c{i % 2}\n" for i in range(24)), encoding="utf-8")
    p = train(d, "pair_run", "--text-pair-column", "second", data=data)
    assert p.returncode == 0, p.stderr
    return d / "pair_run"


@case("commands", "predict a lone text with a run trained on pairs")
def _(d):
    return one_error(bertft("predict", str(pair_run(d)), "word3 text"),
                     "this run was trained on text pairs")


@case("commands", "NER predict 'Paris!!': no punctuation inside an entity")
def _(d):
    text = "John3 lives in Paris!!"  # training saw "Paris" tagged B-LOC, never "Paris!!"
    p = bertft("predict", str(trained_run(d, "ner")), text)
    if p.returncode != 0:
        return one_error(p, "never")
    ents = json.loads(p.stdout.splitlines()[0])["entities"]
    bad = [e["text"] for e in ents if "Paris!" in e["text"]
           or text[e["start"]:e["end"]] != e["text"]]
    return ("silent", f"punctuation glued to a word: {bad}") if bad else \
        ("clean", f"entities {[e['text'] for e in ents]}")


@case("commands", "predict --file: 3 lines holding U+2028 and a form feed")
def _(d):
    (d / "in.txt").write_text("one\u2028still one\ntwo\x0cstill two\r\nthree\n",
                              encoding="utf-8")
    p = bertft("predict", str(trained_run(d)), "--file", str(d / "in.txt"))
    n = len(p.stdout.splitlines())
    return ("clean", "3 predictions") if p.returncode == 0 and n == 3 else \
        ("silent", f"exit {p.returncode}, {n} predictions for 3 lines")


@case("commands", "predict --file ... | head -1")
def _(d):
    (d / "in.txt").write_text("".join(f"text {i}\n" for i in range(3000)), encoding="utf-8")
    cmd = (f"set -o pipefail; {sys.executable} -m bertft predict {trained_run(d)} --file "
           f"{d / 'in.txt'} --device cpu | head -1")
    p = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    if p.stderr.strip():
        return "unclear", p.stderr.strip().splitlines()[-1][:160]
    return ("clean", f"one line, exit {p.returncode}, stderr empty") if \
        len(p.stdout.splitlines()) == 1 else ("unclear", p.stdout[-160:])


@case("commands", "--config with top-level keys beside [base]")
def _(d):
    (d / "c.toml").write_text("epochs = 2\n[base]\nseed = 1\n")
    return one_error(train(d, "out", "--config", str(d / "c.toml")),
                     "'epochs' beside the [base] table")


@case("commands", "--overwrite with a mistyped --label-column")
def _(d):
    run = trained_run(d)
    before = (run / "metrics.json").read_bytes()
    out = one_error(train(d, run.name, "--overwrite", "--label-column", "lable"), "lable")
    if not (run / "metrics.json").exists() or (run / "metrics.json").read_bytes() != before:
        return "lost", "the finished run was deleted before the typo was reported"
    return out


setting_case("max_length 512, pad_to_multiple_of 100, padding max_length, unpad false",
             ["--max-length", "512", "--pad-to-multiple-of", "100", "--padding", "max_length",
              "--unpad", "false"], "padded to 600 positions; model tiny-bert embeds at most 512")
setting_case("--report-to mlflow,mlflow", ["--report-to", "mlflow,mlflow"],
             "'mlflow' named more than once")


@case("trackers", "an axis value with ../ and report_to tensorboard")
def _(d):
    deep = "/".join([".."] * 5) + "/escaped"  # from results/tensorboard/s/<id>: to the case
    spec = d / "s.toml"
    spec.write_text(SPEC.replace("[base]", '[base]\nreport_to = ["tensorboard"]')
                    + f'[grid]\ntext_column = ["{deep}"]\n')
    bertft("ablate", str(spec), "--results", str(d / "r"), "--no-report", "-q")
    outside = list(d.glob("escaped*"))
    return ("silent", f"wrote {outside[0]}") if outside else \
        ("clean", "every tracker file inside the results folder")


@case("trackers", "MLflow file store without MLFLOW_ALLOW_FILE_STORE: the hint is kept")
def _(d):
    keep = {k: os.environ.pop(k, None) for k in ("MLFLOW_TRACKING_URI",
                                                   "MLFLOW_ALLOW_FILE_STORE")}
    os.environ["MLFLOW_TRACKING_URI"] = (d / "mlruns").as_uri()
    try:
        p = train(d, "out", "--report-to", "mlflow", "--save-model", "false")
    finally:
        for k, v in keep.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    ok = p.returncode == 0 and "MLFLOW_ALLOW_FILE_STORE=true" in p.stderr
    return ("clean", "warning names MLFLOW_ALLOW_FILE_STORE=true") if ok else \
        ("unclear", p.stderr.strip()[-160:])


@case("trackers", "train/loss every log_every steps, per-class metrics at the end")
def _(d):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    p = train(d, "out", "--report-to", "tensorboard", "--log-every", "1", "--save-model",
              "false")
    if p.returncode != 0:
        return one_error(p, "never")
    acc = EventAccumulator(str(d / "out" / "tensorboard" / "bertft-train" / "out"))
    acc.Reload()
    steps = json.loads((d / "out" / "metrics.json").read_text())["timing"]["optimizer_steps"]
    tags = acc.Tags()["scalars"]
    n = len(acc.Scalars("train/loss")) if "train/loss" in tags else 0
    per_class = [t for t in tags if "/per_class/" in t]
    return ("clean", f"{n} loss points for {steps} steps, {len(per_class)} per-class") if \
        n == steps and per_class else ("silent", f"{n} loss points for {steps} steps")


@case("progress", "no 'Writing model shards' bar and a loss that says its window")
def _(d):
    p = train(d, "out", "--progress", "true", "--log-every", "1")
    bar = "Writing model shards" in p.stderr or "\r" in p.stderr
    said = "(mean of the last" in p.stderr
    return ("clean", "no bar; loss line names its window") if p.returncode == 0 and said and \
        not bar else ("unclear", f"bar {bar}, window named {said}")


def main() -> None:
    os.environ.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    scratch = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bertft-adversarial")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    rows, counts = [], {}
    only = sys.argv[2:]
    for i, (group, title, fn) in enumerate(CASES, 1):
        if only and not any(o in title for o in only):
            continue
        d = scratch / f"case{i:02d}"
        d.mkdir()
        t0 = time.perf_counter()
        try:
            outcome, note = fn(d)
        except Exception as exc:  # noqa: BLE001 - a broken case is reported, not fatal
            outcome, note = "unclear", f"case raised {type(exc).__name__}: {exc}"[:200]
        counts[outcome] = counts.get(outcome, 0) + 1
        rows.append(f"| {i} | {group} | {title} | {outcome} | {note.replace('|', '/')} |")
        print(f"{i:2d} {outcome:8s} {time.perf_counter() - t0:5.1f}s {title}: {note[:120]}",
              flush=True)
    table = "\n".join(["| # | Kind | Case | Outcome | What happened |",
                       "|---|------|------|---------|---------------|", *rows])
    (scratch / "adversarial.md").write_text(table + "\n\n" + json.dumps(counts) + "\n")
    print(json.dumps(counts))


if __name__ == "__main__":
    main()

