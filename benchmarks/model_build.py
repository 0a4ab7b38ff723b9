"""What building a trial's model costs in a process that has built it before, against copying it.

    python -m benchmarks.model_build [--model minilm-l6] [--builds 4]

Issue 15 asked for the model's weights to be read once per process and copied per trial. This
times `bertft.models.build_model` (seeded, as `fit` calls it) several times in one process, then
`copy.deepcopy` of the built model and a `load_state_dict` of its weights: if later builds cost
no more than a copy, a per-process copy saves nothing. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import torch

from bertft.config import Config
from bertft.models import build_model
from bertft.runtime import set_seed


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return round(time.perf_counter() - t0, 3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.model_build", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="minilm-l6")
    p.add_argument("--builds", type=int, default=4)
    args = p.parse_args(argv)
    cfg = Config.of(model=args.model, task="bbc-news").model
    labels = ("business", "entertainment", "politics", "sport", "tech")
    built: list[torch.nn.Module] = []

    def build() -> None:
        set_seed(0)
        built.append(build_model(cfg, "classification", labels))

    builds = [_timed(build) for _ in range(args.builds)]
    model = built[-1]
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    print(json.dumps({"model": args.model, "threads": torch.get_num_threads(),
                      "build_seconds": builds, "deepcopy_seconds": _timed(
                          lambda: copy.deepcopy(model)),
                      "load_state_dict_seconds": _timed(lambda: model.load_state_dict(weights))}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
