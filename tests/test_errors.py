"""Bad input, clear errors: every case gives one message saying what is wrong, where and what
is allowed. CLI cases exit 2 with `bertft: error:` and no traceback; spec cases raise SpecError;
a bad spec is a pytest collection error and nothing trains.

Each case is (id, kind, argv or spec text, expected substrings). `{d}` in an argument is the
folder of hand-made files (see `files`).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bertft.ablation.spec import SpecError, load_spec
from bertft.cli import main
from bertft.errors import BertftError

pytest_plugins = ["pytester"]

# The valid base of CLI train cases: a small user CSV on the tiny random model.
TRAIN = ["train", "--out", "{d}/out", "--model", "tiny-bert", "--task", "text-file"]
GOOD = [*TRAIN, "--train-file", "{d}/good.csv"]
NER = ["train", "--out", "{d}/out", "--model", "tiny-bert", "--task", "conll-file"]
HF = ["train", "--out", "{d}/out", "--model", "tiny-bert", "--task", "hf-dataset", "--dataset",
      "{d}/hf"]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    d = tmp_path
    rows = "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(12))
    (d / "good.csv").write_text("text,label\n" + rows, encoding="utf-8")
    (d / "val_new_label.csv").write_text("text,label\nx,a\ny,c\n", encoding="utf-8")
    (d / "latin1.csv").write_bytes("text,label\ncaf\xe9,a\nthé,b\n".encode("latin-1"))
    (d / "blank.csv").write_text("text,label\n  ,a\n ,b\n", encoding="utf-8")
    (d / "one_class.csv").write_text("text,label\n" + "x,a\n" * 6, encoding="utf-8")
    (d / "ragged.csv").write_text("text,label\nx,a\ny,b,extra\n", encoding="utf-8")
    (d / "bad.jsonl").write_text('{"text": "x", "label": "a"}\n{"text": oops}\n',
                                 encoding="utf-8")
    (d / "data.txt").write_text("text,label\nx,a\n", encoding="utf-8")
    (d / "train.conll").write_text("John B-PER\nruns O\n\nMary B-PER\n", encoding="utf-8")
    (d / "short.conll").write_text("John B-PER\nruns\n", encoding="utf-8")
    (d / "badtag.conll").write_text("John X-PER\n", encoding="utf-8")
    (d / "val_loc.conll").write_text("Paris B-LOC\n", encoding="utf-8")
    (d / "syntax.toml").write_text("[base]\nhead_lr = = 1\n", encoding="utf-8")
    (d / "unknown.toml").write_text("[base]\nhead_lrr = 1e-3\n", encoding="utf-8")
    (d / "nomodel").mkdir()
    (d / "headerless.csv").write_text("3,Fears for T N pension after talks\n"
                                      "4,The Race is On: Second Private Team Sets Launch\n",
                                      encoding="utf-8")
    import pandas as pd  # parquet datasets for the hf-dataset task

    (d / "hf").mkdir()
    pd.DataFrame({"text": ["a", "b"] * 6, "label": [0, 1] * 6}).to_parquet(
        d / "hf" / "train.parquet")
    (d / "hf_float").mkdir()
    pd.DataFrame({"text": ["a", "b"] * 6, "label": [0.5, 1.5] * 6}).to_parquet(
        d / "hf_float" / "train.parquet")
    return d


CLI_CASES = [
    # -- task and model --------------------------------------------------------------------
    ("unknown-task", ["train", "--out", "{d}/o", "--task", "nope"],
     ["unknown task 'nope'", "known tasks: bbc-news, conll-file, conll2003, hf-dataset, "
      "hf-dataset-ner, imdb, sst2"]),
    ("model-no-such-dir", [*GOOD[:4], "{d}/no/such/dir", *GOOD[5:]],
     ["no/such/dir': no such directory", "built-in models: minilm-l6, tiny-bert"]),
    ("model-dir-no-config", [*GOOD[:4], "{d}/nomodel", *GOOD[5:]],
     ["nomodel': the directory has no config.json"]),
    ("model-unknown-hub-id", [*GOOD[:4], "no-such-model/xyz", *GOOD[5:]],
     ["model 'no-such-model/xyz': cannot load", "built-in offline models: minilm-l6, tiny-bert"]),
    ("model-invalid-hub-id", [*GOOD[:4], "x y z", *GOOD[5:]],
     ["model 'x y z': cannot load", "Repo id must"]),
    ("inspect-unknown-model", ["inspect", "{d}/missing-model"],
     ["missing-model': no such directory"]),
    ("freeze-above-layers", [*GOOD, "--freeze-layers", "5"],
     ["freeze_layers = 5", "2 encoder layers", "allowed: 0..2 or 'all'"]),
    # -- settings ----------------------------------------------------------------------------
    ("set-unknown-key", [*GOOD, "--set", "bogus=1"],
     ["--set: 1 problem", "unknown setting 'bogus'", "bertft train --help"]),
    ("set-typo", [*GOOD, "--set", "head_lrr=1e-3"], ["did you mean head_lr"]),
    ("set-no-equals", [*GOOD, "--set", "head_lr"], ["'head_lr': expected key=value"]),
    ("wrong-type", [*GOOD, "--set", "head_lr=fast"], ["head_lr = 'fast': expected a number"]),
    ("lr-not-positive", [*GOOD, "--head-lr", "0"], ["head_lr = 0.0: must be > 0"]),
    ("lr-negative", [*GOOD, "--base-lr=-1e-5"], ["base_lr = -1e-05: must be > 0"]),
    ("batch-size-zero", [*GOOD, "--batch-size", "0"], ["batch_size = 0: must be >= 1"]),
    ("bad-choice", [*GOOD, "--padding", "left"],
     ["padding = 'left': expected one of 'dynamic', 'max_length'"]),
    ("warmup-both", [*GOOD, "--warmup-steps", "5", "--warmup-ratio", "0.1"],
     ["warmup_steps and warmup_ratio: set at most one"]),
    ("many-problems", [*GOOD, "--batch-size", "0", "--epochs", "0"],
     ["2 problems", "batch_size = 0: must be >= 1", "epochs = 0: must be >= 1"]),
    ("bad-metric", [*GOOD, "--metric-for-best", "bleu"],
     ["metric_for_best = 'bleu': not a classification metric; allowed: auto,"]),
    ("config-toml-syntax", [*GOOD, "--config", "{d}/syntax.toml"],
     ["syntax.toml: TOML syntax error", "line 2"]),
    ("config-unknown-key", [*GOOD, "--config", "{d}/unknown.toml"],
     ["unknown.toml", "unknown setting 'head_lrr' (did you mean head_lr"]),
    ("config-not-utf8", [*GOOD, "--config", "{d}/latin1.csv"],
     ["--config ", "latin1.csv: cannot read ('utf-8' codec can't decode byte 0xe9",
      "expected a UTF-8 TOML file"]),
    ("config-missing", [*GOOD, "--config", "{d}/nope.toml"], ["nope.toml: file not found"]),
    # -- data files ----------------------------------------------------------------------------
    ("no-train-file", TRAIN, ["task text-file needs train_file"]),
    ("missing-file", [*TRAIN, "--train-file", "{d}/absent.csv"],
     ["file not found: ", "absent.csv (train_file)"]),
    ("missing-column", [*GOOD, "--label-column", "category"],
     ["good.csv: no column 'category'; columns are: label, text"]),
    ("bad-encoding", [*TRAIN, "--train-file", "{d}/latin1.csv"],
     ["latin1.csv: cannot decode as utf-8 at byte 14", "encoding=latin-1"]),
    ("unknown-encoding", [*GOOD, "--encoding", "klingon"], ["unknown encoding 'klingon'"]),
    ("label-not-in-train", [*GOOD, "--validation-file", "{d}/val_new_label.csv"],
     ["val_new_label.csv: label 'c' (row 2) does not occur in the training data; "
      "training labels: a, b"]),
    ("empty-after-filter", [*TRAIN, "--train-file", "{d}/blank.csv", "--drop-empty", "true"],
     ["text-file: no training examples left after preprocessing"]),
    ("empty-text", [*TRAIN, "--train-file", "{d}/blank.csv"],
     ["blank.csv row 1: column 'text' is empty", "drop_empty=true"]),
    ("one-class", [*TRAIN, "--train-file", "{d}/one_class.csv"],
     ["only 1 class ('a')", "at least 2 different labels"]),
    ("ragged-csv", [*TRAIN, "--train-file", "{d}/ragged.csv"],
     ["ragged.csv row 2 (line 3): expected 2 fields like the header, found 3"]),
    ("bad-jsonl", [*TRAIN, "--train-file", "{d}/bad.jsonl"], ["bad.jsonl line 2: not valid JSON"]),
    ("unknown-extension", [*TRAIN, "--train-file", "{d}/data.txt"],
     ["data.txt: cannot tell the file format from the extension '.txt'", "csv, tsv or jsonl"]),
    ("ner-column-count", [*NER, "--train-file", "{d}/short.conll"],
     ["short.conll line 2: expected at least 2 columns, found 1"]),
    ("ner-bad-tag", [*NER, "--train-file", "{d}/badtag.conll"],
     ["badtag.conll line 1: tag 'X-PER' is not a valid BIO/IOB tag",
      "allowed: O, B-<type>, I-<type>"]),
    ("ner-type-not-in-train", [*NER, "--train-file", "{d}/train.conll",
                               "--validation-file", "{d}/val_loc.conll"],
     ["val_loc.conll line 1: entity type 'LOC'", "training types: PER"]),
    ("headerless-read-with-header", [*TRAIN, "--train-file", "{d}/headerless.csv"],
     ["headerless.csv: no column 'text'; columns are: 3, Fears for T N pension after talks; "
      "the header line looks like data: if the file has no header line, set header = false "
      "and give 0-based column indices (e.g. text_column = 1, label_column = 0)"]),
    ("header-false-needs-indices", [*GOOD, "--header", "false"],
     ["text_column = 'text': with header = false, give a 0-based column index",
      "label_column = 'label': with header = false"]),
    ("column-index-beyond-row", [*TRAIN, "--train-file", "{d}/headerless.csv", "--header",
                                 "false", "--text-column", "5", "--label-column", "0"],
     ["headerless.csv: no column 5; the rows have 2 columns (indices 0..1)"]),
    ("index-with-header", [*GOOD, "--text-column", "1"],
     ["text_column = 1: a column index needs header = false"]),
    # -- hf-dataset -----------------------------------------------------------------------------
    ("hf-no-dataset", [*HF[:-2]], ["task hf-dataset needs dataset (a Hub id, a folder"]),
    ("hf-unknown-path", [*HF[:-1], "{d}/no/such"],
     ["no/such': no such folder; expected a folder of csv/json/parquet files, a folder "
      "written by save_to_disk, or a Hugging Face Hub id"]),
    ("hf-unknown-hub-id", [*HF[:-1], "no-such-org/no-such-data"],
     ["dataset 'no-such-org/no-such-data': cannot load from the Hugging Face Hub ("]),
    ("hf-missing-split", [*HF, "--test-split", "heldout"],
     ["hf': no split 'heldout' (test_split); splits are: train"]),
    ("hf-missing-column", [*HF, "--text-column", "sentence"],
     ["hf' split 'train': no column 'sentence'; columns are: text, label"]),
    ("hf-float-labels", [*HF[:-1], "{d}/hf_float"],
     ["hf_float' split 'train': label column 'label' holds float64 values; classification "
      "needs a ClassLabel, integer or string column"]),
    # -- trackers -------------------------------------------------------------------------------
    ("unknown-tracker", [*GOOD, "--report-to", "mlflow,comet"],
     ["report_to: unknown tracker 'comet'; known trackers: tensorboard, mlflow, wandb"]),
    # -- run directories -------------------------------------------------------------------------
    ("predict-not-a-run", ["predict", "{d}/nomodel", "hello"],
     ["nomodel: not a bertft run directory (no bertft_config.json)", "bertft train"]),
    ("eval-not-a-run", ["eval", "{d}/nomodel"], ["not a bertft run directory"]),
]


@pytest.fixture
def offline_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without this a Hub id retries the (unreachable) network for about a minute."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.mark.parametrize("argv, expected", [c[1:] for c in CLI_CASES],
                         ids=[c[0] for c in CLI_CASES])
def test_cli_error(argv: list[str], expected: list[str], files: Path, offline_hub: None,
                   capsys: pytest.CaptureFixture[str]) -> None:
    rc = main([a.replace("{d}", str(files)) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("bertft: error: "), err
    assert "Traceback" not in err
    for text in expected:
        assert text in err
    assert not (files / "out").exists()  # nothing trained, nothing written


def test_tracker_not_installed(files: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    """A tracker whose library is missing is refused before any training (the library's
    module name is pointed at one that does not exist: wandb itself is installed here)."""
    import bertft.trackers

    monkeypatch.setitem(bertft.trackers.MODULES, "wandb", "no_such_module_wandb")
    rc = main([a.replace("{d}", str(files)) for a in [*GOOD, "--report-to", "wandb"]])
    err = capsys.readouterr().err
    assert rc == 2
    assert err == ("bertft: error: report_to: wandb not installed; install the extra "
                   "(pip install 'bertft[wandb]') or remove it from report_to (known trackers: "
                   "tensorboard, mlflow, wandb)\n")
    assert not (files / "out").exists()


def test_debug_shows_the_traceback(files: Path) -> None:
    with pytest.raises(BertftError, match="unknown task 'nope'"):
        main(["--debug", "train", "--out", str(files / "o"), "--task", "nope"])


def test_argparse_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--model", "tiny-bert"])  # --out is required
    assert exc.value.code == 2
    assert "the following arguments are required: --out" in capsys.readouterr().err


def test_report_of_a_corrupt_results_file(tmp_path: Path) -> None:
    """A truncated result file does not crash the report: it is listed as unreadable and left
    where it is; once the results store has quarantined it, it is listed as moved aside."""
    from bertft.ablation.store import ResultStore
    from bertft.report import render_all

    store = ResultStore(tmp_path / "results")
    path = store.path("smoke", "head_lr=0.001,seed=0")
    path.parent.mkdir(parents=True)
    path.write_text('{"spec": {')
    written = render_all(tmp_path / "results", tmp_path / "reports")
    assert [p.name for p in written] == ["smoke.md", "README.md"]
    md = (tmp_path / "reports" / "smoke.md").read_text()
    assert md.startswith("# smoke\n\nNo readable results.\n\n## Unreadable results\n")
    assert "| `smoke/head_lr=0.001,seed=0.json` | invalid JSON: Expecting property name " \
           "enclosed in double quotes: line 1 column 11 (char 10) |" in md
    assert path.read_text() == '{"spec": {'  # a report never moves or changes a file

    found = store.lookup("smoke", "head_lr=0.001,seed=0", "0" * 16)
    assert found.state == "corrupt" and found.reason.startswith(f"{path}: unreadable result")
    assert store.quarantine("smoke", "head_lr=0.001,seed=0") == Path(f"{path}.corrupt")
    render_all(tmp_path / "results", tmp_path / "reports")
    md = (tmp_path / "reports" / "smoke.md").read_text()
    assert "| `smoke/head_lr=0.001,seed=0.json.corrupt` | corrupted; moved aside by the results " \
           "store, which runs the trial again |" in md


# -- spec files ---------------------------------------------------------------------------------
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
    ("toml-syntax", 'name = "s"\nseeds = [0\n[base]\n', ["TOML syntax error", "line 3"]),
    ("unknown-top-key", SPEC_OK + "[grdi]\nx = [1]\n",
     ["unknown top-level key 'grdi'; allowed: name, description, seeds"]),
    ("unknown-setting", SPEC_OK.replace('task = "bbc-news"', "head_lrr = 1e-3"),
     ["base.head_lrr: unknown setting 'head_lrr' (did you mean head_lr"]),
    ("wrong-type", SPEC_OK.replace("head_lr = [1e-3, 1e-2]", 'batch_size = [8, "big"]'),
     ["grid.batch_size[1]: batch_size = 'big': expected an integer"]),
    ("axis-not-list", SPEC_OK.replace("[1e-3, 1e-2]", "1e-3"),
     ["grid.head_lr = 0.001: an axis must be a list of values"]),
    ("lr-not-positive", SPEC_OK.replace("[1e-3, 1e-2]", "[1e-3, 0]"),
     ["[head_lr=0] head_lr = 0.0: must be > 0"]),
    ("batch-size-zero", SPEC_OK + "batch_size = [0]\n",
     ["batch_size = 0: must be >= 1"]),
    ("freeze-above-layers", SPEC_OK + "freeze_layers = [1, 9]\n",
     ["freeze_layers = 9: model tiny-bert has 2 encoder layers; allowed: 0..2 or 'all'"]),
    ("seed-as-setting", SPEC_OK.replace('task = "bbc-news"', "seed = 1"),
     ["seed: use the top-level `seeds = [...]` list"]),
    ("bad-seeds", SPEC_OK.replace("seeds = [0]", 'seeds = ["a"]'),
     ["seeds = ['a']: allowed: a list of distinct integers"]),
    ("baseline-not-axis", SPEC_OK.replace('name = "s"', 'name = "s"\nbaseline = { epochs = 1 }'),
     ["baseline.epochs: not an axis of this spec; axes: head_lr"]),
    ("zip-unequal", SPEC_OK + "[[zip]]\nbase_lr = [1e-4, 1e-5]\nepochs = [1]\n",
     ["zip[0]: lists must have equal lengths, got base_lr=2, epochs=1"]),
    ("unknown-task", SPEC_OK.replace('"bbc-news"', '"bbc"'),
     ["[head_lr=0.001] unknown task 'bbc'; known tasks: bbc-news, conll-file, conll2003, "
      "hf-dataset, hf-dataset-ner, imdb, sst2, text-file, wnut16"]),
    ("metric-not-of-the-task", SPEC_OK.replace('"bbc-news"', '"wnut16"\nmetric_for_best = '
                                               '"f1_macro"'),
     ["[head_lr=0.001] metric_for_best = 'f1_macro': not a ner metric; allowed: auto, f1, "
      "precision, recall, accuracy, loss"]),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in SPEC_CASES],
                         ids=[c[0] for c in SPEC_CASES])
def test_spec_error(text: str, expected: list[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    message = str(exc.value)
    assert message.startswith(f"{path}: ")  # names the file
    for text in expected:
        assert text in message


def test_spec_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(SpecError, match=r"not UTF-8 text \(invalid continuation byte at byte"):
        load_spec(path)


def test_spec_missing(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="absent.toml: 1 problem:\n  - file not found"):
        load_spec(tmp_path / "absent.toml")


def test_bad_spec_is_a_collection_error(pytester: pytest.Pytester,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest shows the spec's message as a collection error, and no trial trains."""
    import bertft.ablation.runner as runner

    def no_training(*args, **kwargs):
        raise AssertionError("a trial ran")
    monkeypatch.setattr(runner, "fit", no_training)
    spec = pytester.makefile(".toml", bad=SPEC_OK.replace("[1e-3, 1e-2]", "[1e-3, 0]") +
                             "warmup_steps = [-1]\n")
    result = pytester.runpytest_inprocess(str(spec), "--bertft-results",
                                          str(pytester.path / "results"), "-p",
                                          "no:cacheprovider")
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "[head_lr=0" in out and "head_lr = 0.0: must be > 0" in out
    assert "warmup_steps = -1: must be >= 0" in out
    assert "Traceback" not in out
    assert not (pytester.path / "results").exists()


def test_an_unreachable_hub_fails_in_seconds_not_after_retries(monkeypatch) -> None:
    import urllib.error

    import huggingface_hub.constants

    from bertft import models

    calls = []

    def unreachable(request, timeout):
        calls.append((request.full_url, timeout))
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(models.urllib.request, "urlopen", unreachable)
    models.hub_problem.cache_clear()
    try:
        with pytest.raises(BertftError) as exc:
            models.resolve_model_path("no-such-org/no-such-model")
        assert calls == [(f"{huggingface_hub.constants.ENDPOINT}/api/models/"
                          "no-such-org/no-such-model", 5)]
        assert str(exc.value) == (
            "model 'no-such-org/no-such-model': cannot load (not cached, and the Hub at "
            f"{huggingface_hub.constants.ENDPOINT} is unreachable: Name or service not known); "
            "built-in offline models: minilm-l6, tiny-bert; or a local model directory")

        def answers(request, timeout):  # any HTTP status means the Hub is there
            raise urllib.error.HTTPError(request.full_url, 404, "Not Found", {}, None)

        monkeypatch.setattr(models.urllib.request, "urlopen", answers)
        models.hub_problem.cache_clear()
        assert models.resolve_model_path("no-such-org/no-such-model") == \
            "no-such-org/no-such-model"
    finally:
        models.hub_problem.cache_clear()
