"""Command line: `bertft train|eval|predict|inspect|tasks|ablate|report`.

Every Config field is a `--flag` (its docstring is the help text) and `--set key=value` sets any
of them; both go through the same typed validation as specs and the Python API.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bertft.config import (
    FIELDS, SECTION_OF, Config, coerce, describe_type, help_text, parse_overrides, parse_value,
    unknown_key_message,
)
from bertft.errors import BertftError, ConfigError, TrialDiverged
from bertft.kinds import DEFAULT, kind_of

EPILOG = ("Exit codes: 0 ok, 1 a run or test failed, 2 usage error (bad config, data, spec or "
          "output folder), 3 training diverged (the loss or the model's outputs became NaN or "
          "infinite; nothing was saved).")
EXIT_DIVERGED = 3


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (also: --set key=value)")
    for name in FIELDS:
        group.add_argument(f"--{name.replace('_', '-')}", dest=f"cfg_{name}", metavar="V",
                           default=argparse.SUPPRESS,
                           help=f"{help_text(name)} [{describe_type(name)}; default "
                                f"{FIELDS[name].default!r}]")
    parser.add_argument("--config", metavar="TOML", help="Read settings from a TOML file "
                        "(a flat table of settings, or its [base] table).")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="Override any setting; repeatable.")


def config_from_args(args: argparse.Namespace, base: dict[str, Any] | None = None) -> Config:
    """Defaults < base < --config file < --flags < --set."""
    values: dict[str, Any] = dict(base or {})
    if getattr(args, "config", None):
        values.update(_read_toml_settings(Path(args.config)))
    values.update({k[4:]: parse_value(v) for k, v in vars(args).items()
                   if k.startswith("cfg_")})
    values.update(parse_overrides(args.overrides))
    return Config.from_dict(values, source="command line")


def read_user_text(path: Path, flag: str, expected: str) -> str:
    """A file named on the command line, or one BertftError naming the flag, the file, the
    problem and what was `expected` (a missing file, a folder, unreadable, not UTF-8)."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BertftError(f"{flag} {path}: file not found") from None
    except IsADirectoryError:
        raise BertftError(f"{flag} {path}: is a directory; expected {expected}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BertftError(f"{flag} {path}: cannot read ({exc}); expected {expected}") from None


def _read_toml_settings(path: Path) -> dict[str, Any]:
    import tomllib

    text = read_user_text(path, "--config", "a UTF-8 TOML file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BertftError(f"{path}: TOML syntax error: {exc}") from None
    settings = data.get("base", data)
    if not isinstance(settings, dict):
        raise BertftError(f"{path}: 'base' is {type(settings).__name__}; expected a [base] "
                          "table of settings (or a flat table of settings without 'base')")
    if beside := [k for k in data if k != "base" and settings is not data]:
        # a spec's name, grid or seeds, or settings put above [base]: never dropped unread
        raise BertftError(f"{path}: {', '.join(map(repr, beside))} beside the [base] table; "
                          "--config reads settings only: put them all in [base], or use a "
                          "flat table of settings without [base]")
    # name the file: once merged with the flags, a problem could no longer be traced to it
    problems = [unknown_key_message(k) if k not in FIELDS else coerce(k, v)[2]
                for k, v in settings.items()]
    if any(problems):
        raise ConfigError([p for p in problems if p], str(path))
    return settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bertft", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="Show tracebacks.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="Fine-tune and evaluate; writes OUT/metrics.json and the "
                       "model files.", epilog=EPILOG)
    p.add_argument("--out", required=True, metavar="DIR", help="Run directory to write: new, "
                   "empty, or this run's own checkpoint (resumed).")
    p.add_argument("--overwrite", action="store_true", help="Replace the run that --out holds "
                   "(its files are removed before training).")
    _add_config_flags(p)

    p = sub.add_parser("eval", help="Evaluate a saved run on a split of its task.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--split", choices=("validation", "test"), default="test")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="Override data settings, e.g. data_dir=...")

    _add_predict_parser(sub)

    p = sub.add_parser("inspect", help="Show a model's structure and parameter counts.")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--freeze-layers", default="0", metavar="K", help="int or 'all'")
    p.add_argument("--freeze-embeddings", action="store_true")

    sub.add_parser("tasks", help="List the registered tasks.")

    p = sub.add_parser("ablate", help="Run ablation specs (a thin wrapper over pytest), then "
                       "render the reports.", epilog="Other arguments (-x, -n 2, --lf, ...) go "
                       "to pytest unchanged, before or after the specs.")
    p.add_argument("specs", nargs="*", metavar="SPEC", help="TOML spec files, or folders of "
                   "them (default: ablations/*.toml).")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="Override a base setting of every spec.")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="Local copies of standard tasks (sst2, imdb, conll2003).")
    p.add_argument("--results", default="results", metavar="DIR")
    p.add_argument("--reports", default="reports", metavar="DIR",
                   help="Where to render the reports afterwards.")
    p.add_argument("--no-report", action="store_true", help="Do not render reports.")
    p.add_argument("--executor", choices=("local", "gpus", "ray"), default="local")
    p.add_argument("--ray-address", default=None)
    p.add_argument("--ray-num-gpus", default=None, metavar="N", help="GPUs per trial (Ray).")
    p.add_argument("--ray-num-cpus", default=None, metavar="N", help="CPUs per trial (Ray).")
    p.add_argument("--ray-max-retries", default=None, metavar="N",
                   help="Retries of a trial whose Ray worker died.")
    p.add_argument("--rerun", action="store_true", help="Ignore stored results.")
    p.add_argument("-k", dest="keyword", default=None, help="pytest -k expression.")

    p = sub.add_parser("report", help="Render markdown reports from stored results.")
    p.add_argument("results", nargs="?", default="results", metavar="RESULTS_DIR")
    p.add_argument("--out", default="reports", metavar="DIR")
    p.add_argument("--format", choices=("md", "csv", "json"), default="md")
    return parser


def _add_predict_parser(sub: Any) -> None:
    p = sub.add_parser("predict", help="Predict labels (or entities) for texts.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("texts", nargs="*", metavar="TEXT")
    p.add_argument("--pair", dest="pairs", action="append", default=None, metavar="TEXT",
                   help="The second text of a pair, once per TEXT in order (runs trained "
                   "with text_pair_column only).")
    p.add_argument("--file", metavar="PATH", help="One text per line (lines end at \\n, "
                   "\\r\\n or \\r; blank lines are skipped); for a run trained on text "
                   "pairs, TEXT<tab>PAIR per line.")
    p.add_argument("--device", default="auto")


def check_usage(cfg: Config) -> None:
    """Usage errors a run would only hit after seconds of imports (torch, transformers), found
    first: bertft.config and bertft.data import neither. Then the settings against the model's
    limits (positions, depth) when its config.json is on this machine, before any data is read
    (`fit` checks them again once the model is built, wherever it came from)."""
    from bertft.data import task_spec

    task_spec(cfg.data.task)  # an unknown task: DataError naming the known ones
    from bertft.ablation.spec import model_problems

    if problems := model_problems(cfg):
        raise ConfigError(problems)


TRAIN_GROUP = "bertft-train"  # MLflow experiment / W&B group / TensorBoard folder of `train`


def cmd_train(args: argparse.Namespace) -> int:
    from bertft.outputs import check_run_dir, clear_run_dir

    cfg = config_from_args(args)
    check_usage(cfg)
    replaced = check_run_dir(args.out, cfg.hash(), cfg.process.checkpoint_every_epoch,
                             args.overwrite)
    from bertft.trackers import Trackers, check_installed
    from bertft.train import fit

    check_installed(cfg.process.report_to)
    out = Path(args.out)
    opened: list[Trackers] = []

    def ready() -> None:  # every input check passed: the old run goes, the new one starts
        clear_run_dir(replaced)
        opened.append(Trackers.open(cfg.process, out, TRAIN_GROUP, out.resolve().name,
                                    cfg.to_dict()))

    def log(row: dict[str, Any]) -> None:
        _print_row(row)
        opened[0].log_row(row)

    try:
        result = fit(cfg, out_dir=args.out, on_log=log, on_ready=ready,
                     on_step=lambda row: opened[0].log_row(row))
    except BaseException:
        if opened:
            opened[0].finish({}, ok=False)
        raise
    opened[0].finish({"validation": result.validation, "test": result.test},
                     result.environment)
    summary = {"validation": _scalar_part(result.validation), "test": _scalar_part(result.test),
               "out": str(Path(args.out) / "metrics.json")}
    print(json.dumps(summary, indent=2))
    return 0


def _scalar_part(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)}


def _print_row(row: dict[str, Any]) -> None:
    shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
    print(json.dumps(shown), file=sys.stderr, flush=True)


def cmd_eval(args: argparse.Namespace) -> int:
    from bertft.data import load_task
    from bertft.features import encode_splits, make_loader, scored_words
    from bertft.predict import Predictor
    from bertft.rundir import check_run_data, read_run_config
    from bertft.runtime import resolve_precision
    from bertft.train import evaluate

    cfg, _, _ = read_run_config(args.run_dir)
    overrides = parse_overrides(args.overrides)
    cfg = cfg.with_overrides(overrides)
    pred = Predictor.from_run(args.run_dir, device=cfg.runtime.device)
    splits = load_task(cfg.data)
    if not any(SECTION_OF[k] == "data" for k in overrides):  # --set data=...: other data asked
        check_run_data(args.run_dir, cfg, splits.fingerprint(), args.split)
    if splits.label_names != pred.label_names:
        raise BertftError(f"{args.run_dir}: the task's labels {list(splits.label_names)} differ "
                          f"from the model's {list(pred.label_names)}")
    encoded = encode_splits(splits, pred.tokenizer, cfg.tokens)
    loader = make_loader(encoded.split(args.split), pred.tokenizer, splits.kind, cfg.batch,
                         cfg.tokens.max_length, train=False)
    metrics, _ = evaluate(pred.model, loader, splits.kind, splits.label_names, pred.device,
                          resolve_precision(cfg.runtime.precision, pred.device),
                          cfg.loop.ner_strict, words=scored_words(
                              getattr(splits, args.split), pred.tokenizer, cfg.tokens)
                          if kind_of(splits.kind).token_level else ())
    print(json.dumps({args.split: metrics}, indent=2))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from bertft.predict import Predictor, file_lines, split_pair

    texts, pairs = list(args.texts), args.pairs
    if pairs is not None and len(pairs) != len(texts):
        raise BertftError(f"predict: {len(texts)} TEXT arguments but {len(pairs)} --pair; give "
                          "--pair once per TEXT, in order")
    lines: list[tuple[int, str]] = []
    if args.file:
        text = read_user_text(Path(args.file), "--file", "a UTF-8 text file, one text per line")
        lines = [(n, ln) for n, ln in enumerate(file_lines(text), 1) if ln.strip()]
    if not texts and not lines:
        raise BertftError("predict: give texts as arguments or --file PATH (one per line)")
    pred = Predictor.from_run(args.run_dir, device=args.device)
    if pred.pairs and lines:
        rows = [split_pair(ln, args.file, n) for n, ln in lines]
        texts, pairs = texts + [a for a, _ in rows], (pairs or []) + [b for _, b in rows]
    else:
        texts += [ln for _, ln in lines]
    for row in pred.predict(texts, pairs=pairs):
        print(json.dumps(row))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from bertft.models import build_model, format_inspection, inspect_model
    from bertft.optim import frozen_parameter_names

    cfg = Config.from_dict({"model": args.model, "freeze_layers": parse_value(args.freeze_layers),
                            "freeze_embeddings": args.freeze_embeddings}, source="inspect")
    model = build_model(cfg.model, DEFAULT.name, ("label_0", "label_1"))
    info = inspect_model(model, frozen_parameter_names(model, cfg.model))
    print(format_inspection(info, args.model))
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from bertft.data import TASKS

    for name in sorted(TASKS):
        spec = TASKS[name]
        print(f"{name:<12} {spec.kind:<15} {spec.description}")
    return 0


def ablate_argv(args: argparse.Namespace, extra: Sequence[str] = ()) -> list[str]:
    """The pytest command line `bertft ablate` stands for."""
    argv = list(args.specs or sorted(str(p) for p in Path("ablations").glob("*.toml")))
    if not argv:
        raise BertftError("ablate: no specs given and no ablations/*.toml in "
                          f"{Path.cwd()}; pass spec files")
    argv += ["--bertft-results", args.results,
             "--bertft-executor", args.executor]
    argv += [x for kv in args.overrides for x in ("--bertft-set", kv)]
    for flag in ("data_dir", "ray_address", "ray_num_gpus", "ray_num_cpus", "ray_max_retries"):
        if getattr(args, flag) is not None:
            argv += [f"--bertft-{flag.replace('_', '-')}", str(getattr(args, flag))]
    if args.rerun:
        argv.append("--bertft-rerun")
    if args.keyword:
        argv += ["-k", args.keyword]
    return argv + list(extra)


def is_spec_path(arg: str) -> bool:
    """A spec file (`x.toml`, or a pytest node id `x.toml::trial`) or a folder of them."""
    return arg.partition("::")[0].endswith(".toml") or Path(arg).is_dir()


def split_pytest_args(argv: Sequence[str], specs: Sequence[str], extra: Sequence[str]
                      ) -> tuple[list[str], list[str]]:
    """(specs, pytest arguments) of `bertft ablate`, each in command-line order.

    argparse cannot know that pytest's `-n` takes a value, so in `-n 2 a.toml` it reads `2` as a
    spec. A positional that is not a spec path and follows a pytest argument goes back to
    pytest, in its place; any other non-spec positional is an error."""
    stray = [s for s in specs if not is_spec_path(s)]
    unknown = list(extra)
    out: list[str] = []
    after_pytest_arg = False
    for arg in argv:  # extra and stray keep argv's order: match them against it
        if unknown and arg == unknown[0]:
            out.append(unknown.pop(0))
            after_pytest_arg = True
        elif stray and after_pytest_arg and arg == stray[0]:
            out.append(stray.pop(0))
        else:
            after_pytest_arg = False
    if stray:
        raise BertftError(f"ablate: {stray[0]!r} is not a spec (a .toml file or a folder of "
                          "them) nor the value of a pytest option")
    return [s for s in specs if is_spec_path(s)], out + unknown


def cmd_ablate(args: argparse.Namespace, extra: Sequence[str] = ()) -> int:
    import pytest

    from bertft.outputs import check_output_dir

    check_output_dir(args.results, "--results")  # before hours of trials, not after
    if not args.no_report:
        check_output_dir(args.reports, "--reports")
    code = int(pytest.main(ablate_argv(args, extra)))
    if code in (0, 1) and not args.no_report and Path(args.results).is_dir():
        cmd_report(argparse.Namespace(results=args.results, out=args.reports, format="md"))
    return code


def cmd_report(args: argparse.Namespace) -> int:
    from bertft.outputs import check_output_dir
    from bertft.report import render_all

    check_output_dir(args.out, "--out")
    for path in render_all(Path(args.results), Path(args.out), fmt=args.format):
        print(path)
    return 0


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "predict": cmd_predict,
            "inspect": cmd_inspect, "tasks": cmd_tasks, "ablate": cmd_ablate,
            "report": cmd_report}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "ablate":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "ablate":
            specs, pytest_args = split_pytest_args(argv, args.specs, extra)
            return cmd_ablate(argparse.Namespace(**{**vars(args), "specs": specs}), pytest_args)
        return COMMANDS[args.command](args)
    except BertftError as exc:
        if args.debug:
            raise
        print(f"bertft: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except TrialDiverged as exc:  # a normal outcome of a bad setting, not a crash
        if args.debug:
            raise
        print(f"bertft: diverged: {exc}; no model or metrics were written (try a lower "
              "learning rate, warmup or max_grad_norm)", file=sys.stderr)
        return EXIT_DIVERGED
    except KeyboardInterrupt:
        print("bertft: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `bertft predict ... | head -1`: the reader has all it wanted
        return closed_stdout()


EXIT_SIGPIPE = 141  # 128 + SIGPIPE: what a shell reports for `yes | head -1`'s writer


def closed_stdout() -> int:
    """Quiet end after the reader of stdout went away, as Unix tools end: no traceback, and
    no second BrokenPipeError when Python flushes stdout at exit (it is pointed at devnull)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # a stdout without a file descriptor
        pass
    return EXIT_SIGPIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
