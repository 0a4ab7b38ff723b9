"""Issue 14: no silent wrong result, no lost training, one clear error for every bad input.

Table-driven like tests/test_errors.py: each case names what is wrong and the exact message.
Sections: numeric ranges, output locations (checked before training), run folders (validated
when loaded), divergence, JSON and file modes, NER alignment, the results store, metrics size,
the report index.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import textwrap
from pathlib import Path

import pytest
import torch

from bertft.ablation.spec import SpecError, load_spec
from bertft.cli import main
from bertft.config import Config
from bertft.errors import BertftError, ConfigError, TrialDiverged

pytest_plugins = ["pytester"]
FIXTURES = Path(__file__).parent / "fixtures" / "report" / "results"


# -- numeric settings: declared finite ranges ----------------------------------------------------
RANGE_CASES = [
    ("lr-inf", {"head_lr": math.inf}, ["head_lr = inf: must be a finite number in (0, 10]"]),
    ("lr-nan", {"base_lr": math.nan}, ["base_lr = nan: must be a finite number in (0, 10]"]),
    ("lr-huge", {"head_lr": 1e3}, ["head_lr = 1000.0: allowed: (0, 10]"]),
    ("data-seed-negative", {"data_seed": -1}, ["data_seed = -1: allowed: [0, 4294967295]"]),
    ("seed-too-big", {"seed": 2**32}, ["seed = 4294967296: allowed: [0, 4294967295]"]),
    ("ratio-nan", {"validation_ratio": math.nan},
     ["validation_ratio = nan: must be a finite number in (0, 1)"]),
    ("warmup-ratio-inf", {"warmup_ratio": math.inf},
     ["warmup_ratio = inf: must be a finite number in [0, 1)"]),
    ("grad-norm-nan", {"max_grad_norm": math.nan},
     ["max_grad_norm = nan: must be a finite number in [0, 1000000] (0: off)"]),
    ("dropout-inf", {"head_dropout": math.inf},
     ["head_dropout = inf: must be a finite number in [0, 1)"]),
    ("batch-huge", {"batch_size": 10**7}, ["batch_size = 10000000: allowed: [1, 65536]"]),
    ("max-length-huge", {"max_length": 10**6}, ["max_length = 1000000: allowed: [8, 131072]"]),
    ("threads-huge", {"num_threads": 10**5},
     ["num_threads = 100000: allowed: [0, 4096] (0: torch's default)"]),
    ("two-at-once", {"adam_eps": math.inf, "weight_decay": -1.0},
     ["adam_eps = inf: must be a finite number in (0, 1]", "weight_decay = -1.0: must be >= 0"]),
]


@pytest.mark.parametrize("values, expected", [c[1:] for c in RANGE_CASES],
                         ids=[c[0] for c in RANGE_CASES])
def test_numeric_range(values: dict, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as exc:
        Config.from_dict(values)
    assert exc.value.problems == expected


SPEC_OK = """
name = "s"
seeds = [0]
[base]
model = "tiny-bert"
task = "bbc-news"
[grid]
head_lr = [1e-3, 1e-2]
"""
SPEC_CASES = [
    ("lr-inf", SPEC_OK.replace("[1e-3, 1e-2]", "[1e-3, inf]"),
     ["[head_lr=inf] head_lr = inf: must be a finite number in (0, 10]"]),
    ("negative-seed", SPEC_OK.replace("seeds = [0]", "seeds = [-1]"),
     ["[head_lr=0.001] seed = -1: allowed: [0, 4294967295]"]),
    ("resources-nan", SPEC_OK + "[resources]\nnum_gpus = nan\n",
     ["resources.num_gpus = nan: expected a finite number"]),
    ("resources-inf", SPEC_OK + "[resources]\nnum_cpus = inf\n",
     ["resources.num_cpus = inf: expected a finite number"]),
    ("max-length-above-positions", SPEC_OK.replace('task = "bbc-news"',
                                                   'task = "bbc-news"\nmax_length = 1024'),
     ["[head_lr=0.001] max_length = 1024: model tiny-bert embeds at most 512 positions; "
      "allowed: 8..512"]),
    ("zip-baseline-no-arm", SPEC_OK.replace('name = "s"', 'name = "s"\nbaseline = '
                                            '{ base_lr = 1e-4, epochs = 2 }')
     + "[[zip]]\nbase_lr = [1e-4, 1e-5]\nepochs = [1, 2]\n",
     ["baseline: base_lr = 0.0001, epochs = 2 matches no arm of zip[0]; its arms: "
      "base_lr=0.0001,epochs=1; base_lr=1e-05,epochs=2"]),
    ("name-too-long", SPEC_OK.replace('name = "s"', f'name = "{"n" * 120}"'),
     ["name = 'nnnnnnnnnnnnnnnnnnnn...': 120 bytes; allowed: at most 100"]),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in SPEC_CASES],
                         ids=[c[0] for c in SPEC_CASES])
def test_spec_range(text: str, expected: list[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    assert exc.value.problems == expected


# -- CLI: one message, exit 2, nothing trained ---------------------------------------------------
@pytest.fixture
def files(tmp_path: Path) -> Path:
    rows = "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(12))
    (tmp_path / "good.csv").write_text("text,label\n" + rows, encoding="utf-8")
    (tmp_path / "dup.csv").write_text("text,label,text\nx,a,y\n", encoding="utf-8")
    (tmp_path / "all_o.conll").write_text("John O\nruns O\n\nMary O\n", encoding="utf-8")
    (tmp_path / "dup.jsonl").write_text('{"text": "x", "label": "a", "label": "b"}\n')
    (tmp_path / "base_str.toml").write_text('base = "x"\n', encoding="utf-8")
    (tmp_path / "stranger").mkdir()
    (tmp_path / "stranger" / "notes.txt").write_text("mine\n")
    (tmp_path / "results").mkdir()
    return tmp_path


GOOD = ["train", "--out", "{d}/out", "--model", "tiny-bert", "--task", "text-file",
        "--train-file", "{d}/good.csv"]
LONG = "x" * 300
CLI_CASES = [
    ("out-is-a-file", [*GOOD[:2], "{d}/good.csv", *GOOD[3:]],
     "--out {d}/good.csv: the path exists and is not a folder; expected a folder (or a new "
     "name)"),
    ("out-under-a-file", [*GOOD[:2], "{d}/good.csv/run", *GOOD[3:]],
     "--out {d}/good.csv/run: {d}/good.csv exists and is not a folder; expected a folder "
     "(or a new name)"),
    ("out-name-too-long", [*GOOD[:2], f"{{d}}/{LONG}", *GOOD[3:]],
     f"--out {{d}}/{LONG}: the name '{'x' * 40}...' is 300 bytes long; the file system "
     "allows 255"),
    ("out-not-empty", [*GOOD[:2], "{d}/stranger", *GOOD[3:]],
     "--out {d}/stranger: the folder is not empty and holds files that are not a bertft "
     "run's (notes.txt); choose a new or empty folder"),
    ("out-not-empty-overwrite", [*GOOD[:2], "{d}/stranger", *GOOD[3:], "--overwrite"],
     "--out {d}/stranger: the folder is not empty and holds files that are not a bertft "
     "run's (notes.txt); choose a new or empty folder"),
    ("max-length-above-positions", [*GOOD, "--max-length", "600"],
     "config: 1 problem:\n  - max_length = 600: model tiny-bert embeds at most 512 positions; "
     "allowed: 8..512"),
    ("config-base-not-a-table", [*GOOD, "--config", "{d}/base_str.toml"],
     "{d}/base_str.toml: 'base' is str; expected a [base] table of settings (or a flat table "
     "of settings without 'base')"),
    ("csv-repeated-column", [*GOOD[:-1], "{d}/dup.csv"],
     "{d}/dup.csv: the header names column 'text' twice; every column needs its own name"),
    ("jsonl-repeated-key", [*GOOD[:-1], "{d}/dup.jsonl"],
     "{d}/dup.jsonl line 1: key 'label' appears twice in the object; every key needs its own "
     "name"),
    ("conll-all-o", ["train", "--out", "{d}/out", "--model", "tiny-bert", "--task",
                     "conll-file", "--train-file", "{d}/all_o.conll"],
     "conll-file: {d}/all_o.conll: every tag is 'O' (no entities); NER needs at least 1 "
     "entity type (B-<type> / I-<type> tags) in train_file"),
    ("report-out-is-a-file", ["report", "{d}/results", "--out", "{d}/good.csv"],
     "--out {d}/good.csv: the path exists and is not a folder; expected a folder (or a new "
     "name)"),
    ("ablate-results-is-a-file", ["ablate", "{d}/x.toml", "--results", "{d}/good.csv"],
     "--results {d}/good.csv: the path exists and is not a folder; expected a folder (or a "
     "new name)"),
    ("ablate-reports-too-long", ["ablate", "{d}/x.toml", "--reports", f"{{d}}/{LONG}"],
     f"--reports {{d}}/{LONG}: the name '{'x' * 40}...' is 300 bytes long; the file system "
     "allows 255"),
    ("predict-device-tpu", ["predict", "{d}/stranger", "hi", "--device", "tpu"],
     "{d}/stranger: not a bertft run directory (no bertft_config.json); create one with "
     "`bertft train ... --out DIR`"),
]


@pytest.mark.parametrize("argv, expected", [c[1:] for c in CLI_CASES],
                         ids=[c[0] for c in CLI_CASES])
def test_cli_refuses_before_training(argv: list[str], expected: str, files: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    rc = main([a.replace("{d}", str(files)) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err == f"bertft: error: {expected.replace('{d}', str(files))}\n"
    assert not (files / "out").exists()
    assert (files / "stranger" / "notes.txt").read_text() == "mine\n"  # never deleted


def test_unwritable_location_is_refused(tmp_path: Path) -> None:
    """/proc refuses new files even to root (a chmod'ed folder does not stop root)."""
    from bertft.outputs import output_problem

    assert output_problem("/proc/self/bertft-run").startswith("cannot write in /proc/self (")
    assert output_problem(tmp_path / "new" / "deeper") is None
    assert not (tmp_path / "new").exists()  # the check creates nothing


# -- run folders -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One saved tiny-bert run (seconds); cases copy it and damage the copy."""
    d = tmp_path_factory.mktemp("run")
    rows = "".join(f"word{i} text,{'ab'[i % 2]}\n" for i in range(24))
    (d / "train.csv").write_text("text,label\n" + rows, encoding="utf-8")
    argv = ["train", "--out", str(d / "run"), "--model", "tiny-bert", "--task", "text-file",
            "--train-file", str(d / "train.csv"), "--epochs", "1", "--batch-size", "8",
            "--max-length", "16", "--progress", "false", "--num-threads", "1"]
    assert main(argv) == 0
    return d / "run"


def _legacy(run: Path) -> None:
    """A run folder written before checksums were recorded."""
    blob = json.loads((run / "bertft_config.json").read_text())
    del blob["files"]
    (run / "bertft_config.json").write_text(json.dumps(blob))


def _edit_json(run: Path, name: str, change) -> None:
    blob = json.loads((run / name).read_text())
    change(blob)
    (run / name).write_text(json.dumps(blob))


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _tiny_vocab(run: Path) -> None:
    _legacy(run)
    for name in ("tokenizer.json", "vocab.txt"):
        (run / name).unlink(missing_ok=True)
    (run / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                                              "a", "b"]) + "\n")


RUN_CASES = [
    ("tokenizer-removed", lambda r: [(r / n).unlink(missing_ok=True) for n in
                                     ("tokenizer.json", "vocab.txt")],
     "{r}: no tokenizer files (tokenizer.json or vocab.txt); the run directory is incomplete: "
     "train again"),
    ("weights-removed", lambda r: (r / "model.safetensors").unlink(),
     "{r}: model.safetensors is missing (model weights); the run directory is incomplete: "
     "train again"),
    ("weights-of-another-run", lambda r: _flip_byte(r / "model.safetensors"),
     "{r}/model.safetensors: not the file this run wrote (its SHA-256 differs from the one in "
     "bertft_config.json); the folder mixes files of different runs: train again with "
     "--overwrite"),
    ("config-of-another-run", lambda r: _edit_json(r, "config.json",
                                                   lambda b: b.update(hidden_act="relu")),
     "{r}/config.json: not the file this run wrote (its SHA-256 differs from the one in "
     "bertft_config.json); the folder mixes files of different runs: train again with "
     "--overwrite"),
    ("legacy-labels-differ", lambda r: (_legacy(r), _edit_json(
        r, "config.json", lambda b: b.update(id2label={"0": "x", "1": "y"}))),
     "{r}/config.json: the model's labels ['x', 'y'] differ from the run's ['a', 'b'] "
     "(bertft_config.json); the folder mixes files of different runs"),
    ("legacy-config-corrupt", lambda r: (_legacy(r), (r / "config.json").write_text("{")),
     "{r}/config.json: unreadable (Expecting property name enclosed in double quotes: line 1 "
     "column 2 (char 1)); the run directory is damaged"),
    ("legacy-weights-truncated", lambda r: (_legacy(r), (r / "model.safetensors").write_bytes(
        (r / "model.safetensors").read_bytes()[:100])),
     "{r}: cannot load the saved model"),
    ("legacy-tokenizer-of-another-model", _tiny_vocab,
     "{r}: the tokenizer has 7 tokens (7 with added ones) but the model's vocabulary has "),
]


@pytest.mark.parametrize("damage, expected", [c[1:] for c in RUN_CASES],
                         ids=[c[0] for c in RUN_CASES])
def test_damaged_run_folder(damage, expected: str, trained: Path, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    damage(run)
    assert main(["predict", str(run), "hello"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bertft: error: {expected.replace('{r}', str(run))}"), err
    assert "Traceback" not in err


def test_a_run_folder_is_replaced_whole_never_mixed(trained: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Training into a folder holding another run is refused; with --overwrite and
    save_model = false the old model is gone, so predict cannot answer with it."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    cfg = json.loads((run / "bertft_config.json").read_text())["config"]
    argv = ["train", "--out", str(run), "--model", "tiny-bert", "--task", "text-file",
            "--train-file", cfg["train_file"], "--epochs", "1", "--max-length", "16",
            "--progress", "false", "--num-threads", "1", "--save-model", "false"]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"bertft: error: --out {run}: holds another run (bertft_config.json, config.json, "
        "metrics.json, model.safetensors); pass --overwrite to replace it whole, or choose a "
        "new folder\n")
    assert main([*argv, "--overwrite"]) == 0
    assert sorted(p.name for p in run.iterdir()) == ["bertft_config.json", "metrics.json"]
    capsys.readouterr()
    assert main(["predict", str(run), "hello"]) == 2
    assert "no model files (the run was saved with save_model=false" in capsys.readouterr().err


def test_resuming_the_same_run_is_not_another_run(tmp_path: Path) -> None:
    from bertft import checkpoint
    from bertft.outputs import prepare_run_dir

    cfg = Config.of(model="tiny-bert", checkpoint_every_epoch=True)
    checkpoint.save(tmp_path / "checkpoint", {"config_hash": cfg.hash(), "epoch": 1})
    assert prepare_run_dir(tmp_path, cfg.hash(), True, overwrite=False) == tmp_path
    other = Config.of(model="tiny-bert", checkpoint_every_epoch=True, seed=1).hash()
    with pytest.raises(BertftError, match=r"holds another run \(checkpoint\); pass --overwrite"):
        prepare_run_dir(tmp_path, other, True, overwrite=False)
    assert (tmp_path / "checkpoint" / "checkpoint.pt").is_file()


# -- divergence ----------------------------------------------------------------------------------
def test_diverged_train_exits_3_with_one_message(files: Path, monkeypatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import bertft.train

    def diverging_fit(cfg, out_dir=None, on_log=None, **hooks):
        raise TrialDiverged("training loss became nan by step 4 (epoch 1)")
    monkeypatch.setattr(bertft.train, "fit", diverging_fit)
    assert main([a.replace("{d}", str(files)) for a in GOOD]) == 3
    assert capsys.readouterr().err == (
        "bertft: diverged: training loss became nan by step 4 (epoch 1); no model or metrics "
        "were written (try a lower learning rate, warmup or max_grad_norm)\n")


def test_a_model_with_nan_outputs_is_a_divergence_not_a_score(tiny_model) -> None:
    from bertft.train import evaluate

    model = tiny_model
    saved = model.classifier.weight.detach().clone()
    batch = {"input_ids": torch.tensor([[101, 2000, 102]]),
             "attention_mask": torch.ones(1, 3, dtype=torch.long), "labels": torch.tensor([1])}
    try:
        with torch.no_grad():
            model.classifier.weight.fill_(math.nan)
        with pytest.raises(TrialDiverged, match=r"^evaluation loss became nan: the model's "
                                                r"outputs are not finite numbers$"):
            loader = torch.utils.data.DataLoader([batch], batch_size=None)  # one example
            evaluate(model, loader, "classification", ("neg", "pos"), torch.device("cpu"),
                     torch.float32)
    finally:
        with torch.no_grad():
            model.classifier.weight.copy_(saved)


def test_nan_metrics_are_never_stored_as_passed(monkeypatch) -> None:
    from bertft.ablation import runner
    from bertft.ablation.spec import expand

    spec = load_spec(Path(__file__).parent / "fixtures" / "specs" / "smoke.toml")
    trial = expand(spec)[0]

    class Run:
        validation = {"f1_macro": math.nan, "loss": 0.5}
        test = {"f1_macro": 0.5, "loss": math.inf}
    monkeypatch.setattr(runner, "fit", lambda *a, **k: Run())
    monkeypatch.setattr(runner, "load_splits", lambda *a, **k: None)
    result = runner.run_trial(trial, spec)
    assert result.status == "diverged"
    assert result.error == "non-finite metrics (validation.f1_macro=nan, test.loss=inf)"


# -- JSON and file modes -------------------------------------------------------------------------
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_json_files_are_finite_and_follow_the_umask(umask: int, mode: int,
                                                    tmp_path: Path) -> None:
    from bertft.rundir import write_json_atomic

    old = os.umask(umask)
    try:
        write_json_atomic(tmp_path / "m.json", {"loss": math.nan, "rows": (1.0, math.inf),
                                                "n": torch.tensor(2).item()})
    finally:
        os.umask(old)
    assert (tmp_path / "m.json").read_text() == (
        '{\n  "loss": null,\n  "rows": [\n    1.0,\n    null\n  ],\n  "n": 2\n}\n')
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == mode


# -- NER alignment -------------------------------------------------------------------------------
NAMES = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")


def _probs(pieces: list[int]) -> torch.Tensor:
    """One row per piece, peaked on the given label index."""
    return torch.nn.functional.one_hot(torch.tensor(pieces), len(NAMES)).float()


ALIGN_CASES = [
    # (id, word_ids, predicted label per piece, n_words, expected tags)
    ("middle-word-without-pieces", [None, 0, 2, None], [0, 1, 3, 0], 3,
     ["B-PER", "O", "B-LOC"]),
    ("first-word-without-pieces", [None, 1, 1, 2, None], [0, 3, 2, 1, 0], 3,
     ["O", "B-LOC", "B-PER"]),
    ("truncated-tail", [None, 0, 1, None], [0, 1, 2, 0], 4, ["B-PER", "I-PER", "O", "O"]),
    ("later-pieces-ignored", [None, 0, 0, 1, None], [0, 3, 1, 4, 0], 2, ["B-LOC", "I-LOC"]),
]


@pytest.mark.parametrize("word_ids, pieces, n_words, expected", [c[1:] for c in ALIGN_CASES],
                         ids=[c[0] for c in ALIGN_CASES])
def test_word_tags_never_shift(word_ids, pieces, n_words, expected) -> None:
    from bertft.predict import word_tags

    tags = word_tags(word_ids, _probs(pieces), NAMES, n_words)
    assert [t for t, _ in tags] == expected


ALPHABET = ["a", "b", "Z", "é", "\u0301", "\u200b", "\u200d", "\u00ad", "\x00", "\x07",
            "\x7f", "\ufeff", "日", "😀", " ", " ", "\t", "\n", "\u3000"]


def test_entity_spans_match_the_input_text() -> None:
    """Property test (seeded): on texts mixing zero-width, combining and control characters,
    every entity's text is the input at its offsets, starts and ends on word boundaries, and
    never covers a word the tokenizer gives no piece."""
    from bertft.models import build_model, load_tokenizer
    from bertft.predict import Predictor
    from bertft.runtime import set_seed

    cfg = Config.of(model="tiny-bert", task="conll-file", max_length=24)
    set_seed(0)
    pred = Predictor(build_model(cfg.model, "ner", NAMES).eval(), load_tokenizer(cfg.model), cfg,
                     "ner", NAMES, torch.device("cpu"))
    rng = random.Random(14)
    texts = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40)))
             for _ in range(150)]
    n_entities = 0
    for row in pred.predict(texts):
        text = row["text"]
        starts, ends, empty = set(), set(), []
        pos = 0
        for word in text.split():
            start = text.index(word, pos)
            pos = start + len(word)
            starts.add(start)
            ends.add(pos)
            if not pred.tokenizer([[word]], is_split_into_words=True).word_ids(0)[1:-1]:
                empty.append((start, pos))
        for e in row["entities"]:
            n_entities += 1
            assert text[e["start"]:e["end"]] == e["text"]
            assert e["start"] in starts and e["end"] in ends
            assert not any(e["start"] <= s and t <= e["end"] for s, t in empty)
    assert n_entities > 50  # the random model tags plenty: the property was exercised


# -- the results store ---------------------------------------------------------------------------
RECORD = FIXTURES / "ner_freeze" / "freeze_layers=0,seed=1.json"
STORE_CASES = [
    ("seed-as-text", {"seed": "1"}, "seed: expected an integer, found str"),
    ("hash-as-number", {"config_hash": 13}, "config_hash: expected a string, found int"),
    ("status-unknown", {"status": "ok"},
     "status = 'ok': expected one of 'passed', 'failed', 'diverged'"),
    ("history-rows", {"history": [1, {}]}, "history[0]: expected an object, found int"),
    ("labels-not-text", {"label_names": ["O", 1]}, "label_names[1]: expected a string, found int"),
    ("axes-not-text", {"spec": "SPEC_AXES"}, "spec.axes[0]: expected a string, found int"),
    ("validation-list", {"validation": []}, "validation: expected an object, found list"),
    ("passed-with-nan", {"validation": {"f1": None, "loss": 0.3}},
     "passed trial with non-finite validation metrics (f1)"),
]


@pytest.mark.parametrize("change, expected", [c[1:] for c in STORE_CASES],
                         ids=[c[0] for c in STORE_CASES])
def test_store_rejects_a_record_of_the_wrong_types(change: dict, expected: str,
                                                   tmp_path: Path) -> None:
    from bertft.ablation.store import ResultStore

    data = json.loads(RECORD.read_text())
    if change.get("spec") == "SPEC_AXES":
        change = {"spec": {**data["spec"], "axes": [7]}}
    data.update(change)
    store = ResultStore(tmp_path)
    path = store.path("ner_freeze", data["trial_id"] if isinstance(data["trial_id"], str)
                      else "x")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    found = store.lookup("ner_freeze", "freeze_layers=0,seed=1", "n013")
    assert found.state == "corrupt"  # quarantined and run again by the plugin
    assert found.reason == f"{path}: unreadable result ({expected})"


def test_the_fixture_record_itself_is_valid(tmp_path: Path) -> None:
    from bertft.ablation.store import ResultStore

    store = ResultStore(tmp_path)
    shutil.copytree(FIXTURES / "ner_freeze", tmp_path / "ner_freeze")
    assert store.lookup("ner_freeze", "freeze_layers=0,seed=1", "n013").state == "complete"


def test_long_axis_values_get_readable_hashed_file_names(tmp_path: Path) -> None:
    from bertft.ablation.spec import expand
    from bertft.ablation.store import ResultStore

    a, b = "d/" + "x" * 300 + "a.csv", "d/" + "x" * 300 + "b.csv"
    spec_file = tmp_path / "long.toml"
    spec_file.write_text(SPEC_OK.replace("head_lr = [1e-3, 1e-2]",
                                         f'train_file = ["{a}", "{b}"]'))
    trials = expand(load_spec(spec_file))
    paths = [ResultStore(tmp_path).path("s", t.trial_id) for t in trials]
    assert len({p.name for p in paths}) == 2
    assert all(len(p.name) == 165 and p.name.startswith("train_file=d_xxxx") for p in paths)
    for p in paths:  # the name fits the file system, suffixes included
        p.parent.mkdir(exist_ok=True)
        p.with_name(p.name + ".corrupt").write_text("{}")


def test_a_foreign_created_date_does_not_break_rerun() -> None:
    from bertft.ablation.plugin import Options, _written_since
    from bertft.results import TrialResult

    result = TrialResult.from_json({**json.loads(RECORD.read_text()), "created": "yesterday"})
    opts = Options(overrides={}, results=Path("r"), rerun=True, executor="local", started=0.0)
    assert _written_since(result, opts) is False


def test_duplicate_spec_names_are_a_collection_error(pytester: pytest.Pytester) -> None:
    first = pytester.makefile(".toml", first=SPEC_OK)
    second = pytester.makefile(".toml", second=SPEC_OK)
    result = pytester.runpytest_inprocess(str(first), str(second), "--collect-only", "-q",
                                          "--bertft-results", str(pytester.path / "r"),
                                          "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*{second}: 1 problem:*", f"*name = 's': also the name of "
                                 f"{first}; results are stored by spec name, so each "
                                 "collected spec needs its own*"])


def test_unusable_results_folder_stops_before_any_trial(pytester: pytest.Pytester) -> None:
    spec = pytester.makefile(".toml", first=SPEC_OK)
    blocker = pytester.path / "blocker"
    blocker.write_text("a file")
    result = pytester.runpytest_inprocess(str(spec), "--bertft-results", str(blocker / "r"),
                                          "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines([f"*--bertft-results {blocker}/r: {blocker} exists and is not a "
                                 "folder; expected a folder (or a new name)*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("option, value, expected", [
    ("--bertft-ray-num-cpus", "inf", "--bertft-ray-num-cpus = inf: expected a finite number"),
    ("--bertft-ray-num-gpus", "nan", "--bertft-ray-num-gpus = nan: expected a finite number"),
])
def test_ray_resource_options_are_checked_whatever_the_executor(
        option: str, value: str, expected: str, pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess(option, value, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{expected}*"])


# -- metrics stay small --------------------------------------------------------------------------
def test_confusion_matrix_is_bounded_by_the_label_count() -> None:
    from bertft.metrics import MAX_CONFUSION_LABELS, classification_metrics

    small = classification_metrics([0, 1, 2, 2], [0, 2, 2, 1], ["a", "b", "c"])
    assert small["confusion_matrix"] == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    n = 10_000
    names = [f"label{i}" for i in range(n)]
    gold = list(range(n)) * 2
    pred = list(gold)
    gold, pred = gold + [5, 5, 5, 9, 9, 3], pred + [7, 7, 7, 1, 1, 4]  # 6 wrong, 3 pairs
    big = classification_metrics(gold, pred, names)
    assert "confusion_matrix" not in big and n > MAX_CONFUSION_LABELS
    assert big["top_confusions"] == [{"gold": "label5", "pred": "label7", "count": 3},
                                     {"gold": "label9", "pred": "label1", "count": 2},
                                     {"gold": "label3", "pred": "label4", "count": 1}]
    assert len(json.dumps(big)) < 120 * n  # linear in the labels (per_class), not quadratic


# -- the report index ----------------------------------------------------------------------------
def test_the_report_index_keeps_the_entries_of_other_specs(tmp_path: Path) -> None:
    from bertft.report import render_all

    for name in ("lr_batch", "ner_freeze"):
        shutil.copytree(FIXTURES / name, tmp_path / f"results_{name}" / name)
    out = tmp_path / "reports"
    render_all(tmp_path / "results_lr_batch", out)
    render_all(tmp_path / "results_ner_freeze", out)
    index = (out / "README.md").read_text()
    both = tmp_path / "both"
    for name in ("lr_batch", "ner_freeze"):
        shutil.copytree(FIXTURES / name, both / name)
    render_all(both, tmp_path / "together")
    assert index == (tmp_path / "together" / "README.md").read_text()  # as if rendered at once
    (out / "lr_batch.md").unlink()  # a report removed from the folder leaves the index
    render_all(tmp_path / "results_ner_freeze", out)
    assert "[lr_batch]" not in (out / "README.md").read_text()
