"""Commands keep their word (issue 22): nothing the user passed is dropped, no finished run is
lost to a typo, settings are checked against the model before training, and trackers log what
they say inside the folder they were given. tiny-bert, tiny files; exact messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from bertft.cli import main
from bertft.config import Config
from bertft.errors import BertftError, ConfigError
from bertft.limits import position_problems
from bertft.predict import Predictor, file_lines, split_words
from bertft.trackers import Trackers

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--model", "tiny-bert", "--epochs", "1", "--batch-size", "8", "--max-length", "16",
        "--progress", "false", "--num-threads", "1"]


def _csv(path: Path, pairs: bool = False, n: int = 24) -> Path:
    header = "text,second,label" if pairs else "text,label"
    rows = [f"word{i} text {i % 7},{f'other {i},' if pairs else ''}c{i % 2}" for i in range(n)]
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A run trained on single texts and one trained on text pairs (seconds each)."""
    d = tmp_path_factory.mktemp("runs")
    out = {}
    for name, extra in (("single", []), ("pairs", ["--text-pair-column", "second"])):
        data = _csv(d / f"{name}.csv", pairs=bool(extra))
        assert main(["train", "--out", str(d / name), "--task", "text-file", "--train-file",
                     str(data), *TINY, *extra]) == 0
        out[name] = d / name
    return out


# -- predict: text pairs ---------------------------------------------------------------------
PAIR_NEEDED = ("bertft: error: predict: this run was trained on text pairs (text_pair_column is "
               "set); give each text its pair: --pair TEXT once per TEXT, or --file with "
               "TEXT<tab>PAIR lines (Python: predict(texts, pairs=...))\n")


def test_a_pair_trained_run_refuses_a_lone_text(runs, capsys) -> None:
    capsys.readouterr()
    assert main(["predict", str(runs["pairs"]), "word1 text 1"]) == 2
    assert capsys.readouterr().err == PAIR_NEEDED
    pred = Predictor.from_run(runs["pairs"], device="cpu")
    with pytest.raises(BertftError, match=r"^predict: this run was trained on text pairs"):
        pred.predict(["word1 text 1"])


def test_predict_answers_for_the_pair(runs, tmp_path, capsys) -> None:
    pred = Predictor.from_run(runs["pairs"], device="cpu")
    enc = pred.tokenizer(["word1 text 1"], ["other 1"], return_tensors="pt")
    with torch.no_grad():
        expected = pred.model(**enc).logits.softmax(-1)[0].tolist()
    capsys.readouterr()
    assert main(["predict", str(runs["pairs"]), "word1 text 1", "--pair", "other 1"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["text"], row["text_pair"]) == ("word1 text 1", "other 1")
    assert [row["probabilities"][n] for n in pred.label_names] == pytest.approx(expected,
                                                                                abs=1e-6)
    lines = tmp_path / "pairs.txt"
    lines.write_text("word1 text 1\tother 1\r\n\nb\tc\n", encoding="utf-8")
    assert main(["predict", str(runs["pairs"]), "--file", str(lines)]) == 0
    rows = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert [(r["text"], r["text_pair"]) for r in rows] == [("word1 text 1", "other 1"),
                                                           ("b", "c")]
    assert rows[0]["probabilities"] == row["probabilities"]


@pytest.mark.parametrize("run, argv, content, message", [
    ("pairs", ["--file", "{f}"], "a\tb\nc\n",
     "--file {f}: line 2 has 0 tabs; a run trained on text pairs takes TEXT<tab>PAIR lines "
     "(one tab)"),
    ("pairs", ["a", "b", "--pair", "c"], None,
     "predict: 2 TEXT arguments but 1 --pair; give --pair once per TEXT, in order"),
    ("single", ["a", "--pair", "b"], None,
     "predict: this run was trained on single texts (no text_pair_column); it takes no pairs"),
])
def test_pairs_that_do_not_match_the_run_are_refused(runs, tmp_path, capsys, run, argv,
                                                     content, message) -> None:
    f = tmp_path / "in.txt"
    if content is not None:
        f.write_text(content, encoding="utf-8")
    capsys.readouterr()
    assert main(["predict", str(runs[run]), *[a.format(f=f) for a in argv]]) == 2
    assert capsys.readouterr().err == f"bertft: error: {message.format(f=f)}\n"


# -- predict --file: lines as users count them; a closed pipe ends quietly ---------------------
def test_file_lines_end_at_newlines_only() -> None:
    text = "one\u2028still one\x0cand\x1cone\r\ntwo\rthree\n"
    assert file_lines(text) == ["one\u2028still one\x0cand\x1cone", "two", "three"]
    assert file_lines("a\n\nb") == ["a", "", "b"]


def test_predict_file_gives_one_prediction_per_line(runs, tmp_path, capsys) -> None:
    f = tmp_path / "t.txt"
    f.write_bytes("caf\u00e9\u2028bar\nform\x0cfeed\r\nlast\x85line\n".encode())
    capsys.readouterr()
    assert main(["predict", str(runs["single"]), "--file", str(f)]) == 0
    rows = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == ["caf\u00e9\u2028bar", "form\x0cfeed", "last\x85line"]


def test_predict_into_a_closed_pipe_ends_quietly(runs, tmp_path) -> None:
    f = tmp_path / "many.txt"
    f.write_text("".join(f"text number {i}\n" for i in range(3000)), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "bertft", "predict", str(runs["single"]),
                             "--file", str(f), "--device", "cpu"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    first = proc.stdout.readline()  # as `head -1` reads, then goes away
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert json.loads(first)["text"] == "text number 0"
    assert proc.wait(timeout=120) == 141 and err == ""


# -- NER predict: words split as CoNLL / WNUT split them ---------------------------------------
def test_raw_text_is_split_into_words_with_punctuation_apart() -> None:
    text = "Taylor Swift's gig in Paris!! (Jo\u0301hn)\u200b\tNY."
    words = [text[a:b] for a, b in split_words(text)]
    assert words == ["Taylor", "Swift", "'", "s", "gig", "in", "Paris", "!", "!", "(",
                     "Jo\u0301hn", ")", "\u200b", "NY", "."]


def test_entities_end_before_punctuation() -> None:
    from bertft.models import build_model, load_tokenizer
    from bertft.runtime import set_seed

    names = ("O", "B-LOC", "I-LOC")
    cfg = Config.of(model="tiny-bert", task="conll-file", max_length=32)
    set_seed(0)
    model = build_model(cfg.model, "ner", names).eval()
    with torch.no_grad():  # every piece says B-LOC: each word is an entity of its own
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 5.0, 0.0]))
    pred = Predictor(model, load_tokenizer(cfg.model), cfg, "ner", names, torch.device("cpu"))
    (row,) = pred.predict(["Off to Paris!!"])
    assert [(e["text"], e["start"], e["end"]) for e in row["entities"]] == [
        ("Off", 0, 3), ("to", 4, 6), ("Paris", 7, 12), ("!", 12, 13), ("!", 13, 14)]


# -- --config: nothing beside [base] dropped ---------------------------------------------------
def test_config_keys_beside_base_are_refused(tmp_path, capsys) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('epochs = 2\nseed = 3\n[base]\nmodel = "tiny-bert"\n', encoding="utf-8")
    assert main(["train", "--out", str(tmp_path / "o"), "--config", str(cfg)]) == 2
    assert capsys.readouterr().err == (
        f"bertft: error: {cfg}: 'epochs', 'seed' beside the [base] table; --config reads "
        "settings only: put them all in [base], or use a flat table of settings without "
        "[base]\n")
    assert not (tmp_path / "o").exists()


# -- --overwrite: the old run stays until every input check passed -----------------------------
def test_overwrite_with_a_mistyped_column_keeps_the_finished_run(runs, tmp_path, capsys) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(runs["single"], run)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    data = _csv(tmp_path / "d.csv")
    capsys.readouterr()
    assert main(["train", "--out", str(run), "--overwrite", "--task", "text-file",
                 "--train-file", str(data), "--label-column", "lable", *TINY]) == 2
    assert "'lable'" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_overwrite_replaces_the_run_once_the_checks_pass(runs, tmp_path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(runs["single"], run)
    (run / "tensorboard").mkdir()
    (run / "tensorboard" / "old-events").write_text("x")
    assert main(["train", "--out", str(run), "--overwrite", "--task", "text-file",
                 "--train-file", str(_csv(tmp_path / "d.csv", n=30)), *TINY]) == 0
    assert sum(json.loads((run / "metrics.json").read_text())["data"][s] for s in (
        "train", "validation", "test")) == 30
    assert not (run / "tensorboard").exists()  # emptied whole, as before


# -- every setting combination against the model's limits, before training --------------------
PADDED = ("max_length = 512 with padding = 'max_length' and pad_to_multiple_of = 100: batches "
          "are padded to 600 positions; model tiny-bert embeds at most 512; allowed: a "
          "max_length that is a multiple of pad_to_multiple_of, or padding = 'dynamic' (never "
          "pads past max_length)")


def test_padding_past_the_position_limit_is_refused_before_training(tmp_path, capsys) -> None:
    assert main(["train", "--out", str(tmp_path / "o"), "--task", "text-file", "--train-file",
                 str(_csv(tmp_path / "d.csv")), *TINY, "--max-length", "512",
                 "--pad-to-multiple-of", "100", "--padding", "max_length", "--unpad",
                 "false"]) == 2
    assert capsys.readouterr().err == f"bertft: error: config: 1 problem:\n  - {PADDED}\n"
    assert not (tmp_path / "o").exists()


def test_position_problems_at_fit_and_in_specs(tmp_path) -> None:
    from bertft.ablation.spec import model_problems
    from bertft.train import fit

    shape = {"max_position_embeddings": 512}

    def batch(multiple, padding="max_length"):
        return Config.of(pad_to_multiple_of=multiple, padding=padding).batch

    assert position_problems(512, batch(100), shape, "tiny-bert") == [PADDED]
    assert position_problems(512, batch(64), shape, "tiny-bert") == []
    assert position_problems(500, batch(100), shape, "tiny-bert") == []
    assert position_problems(512, batch(100, "dynamic"), shape, "tiny-bert") == []
    assert position_problems(500, batch("auto"), {"max_position_embeddings": 510}, "m") == [
        PADDED.replace("512 with", "500 with").replace("= 100", "= 'auto'").replace(
            "600", "512").replace("tiny-bert embeds at most 512", "m embeds at most 510")]
    cfg = Config.of(model="tiny-bert", task="text-file", train_file=str(_csv(tmp_path / "d.csv")),
                    max_length=512, pad_to_multiple_of=100, padding="max_length", unpad=False,
                    progress=False, save_model=False)
    assert model_problems(cfg) == [PADDED]
    with pytest.raises(ConfigError, match="padded to 600 positions"):
        fit(cfg)


# -- trackers ----------------------------------------------------------------------------------
def test_report_to_names_each_tracker_once() -> None:
    with pytest.raises(ConfigError) as err:
        Config.of(report_to="mlflow,tensorboard,mlflow")
    assert err.value.problems == ["report_to: 'mlflow' named more than once; name each tracker "
                                  "once (each opens one run)"]


def test_tensorboard_folders_stay_inside_the_tracking_folder(tmp_path) -> None:
    root = tmp_path / "track"
    trackers = Trackers(("tensorboard",), root, "../spec", "train_file=../../x,seed=0", {})
    trackers.log_row({"step": 1, "val_loss": 0.5})
    trackers.finish({})
    (folder,) = (root / "tensorboard").iterdir()
    assert folder.name == ".._spec"
    assert [p.name for p in folder.iterdir()] == ["train_file=.._.._x,seed=0"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["track"]
    Trackers(("tensorboard",), root, "..", ".", {}).finish({})
    assert (root / "tensorboard" / "__" / "_").is_dir()


def test_a_tracker_warning_keeps_the_backends_hint(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Trackers(("mlflow",), tmp_path, "g", "n", {}).finish({})
    (message,) = [str(w.message) for w in caught if "report_to" in str(w.message)]
    assert message.startswith("report_to: mlflow failed (MlflowException: The filesystem "
                              "tracking backend")
    assert message.endswith("set `MLFLOW_ALLOW_FILE_STORE=true` to opt out of this exception.); "
                            "it logs nothing more for this run, whose result is stored as usual")


def test_a_tracker_that_fails_mid_run_closes_its_run(tmp_path, monkeypatch) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    trackers = Trackers(("mlflow",), tmp_path, "g", "n", {})
    backend = trackers.live["mlflow"]
    monkeypatch.setattr(backend, "log", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.warns(UserWarning, match=r"report_to: mlflow failed \(OSError: disk full\)"):
        trackers.log_row({"step": 1, "val_loss": 0.5})
    client = MlflowClient((tmp_path / "mlruns").resolve().as_uri())
    assert client.get_run(backend.run_id).info.status == "FAILED"


def test_train_logs_loss_every_log_every_steps_and_per_class_metrics(tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--task", "text-file", "--train-file",
                 str(_csv(tmp_path / "d.csv", n=80)), *TINY, "--epochs", "2", "--log-every",
                 "2", "--report-to", "tensorboard", "--save-model", "false"]) == 0
    acc = EventAccumulator(str(out / "tensorboard" / "bertft-train" / "run"))
    acc.Reload()
    metrics = json.loads((out / "metrics.json").read_text())
    steps = metrics["timing"]["optimizer_steps"]
    assert [e.step for e in acc.Scalars("train/loss")] == list(range(2, steps + 1, 2))
    assert all(e.value > 0 for e in acc.Scalars("train/loss"))
    for name in ("c0", "c1"):
        (last,) = acc.Scalars(f"test/per_class/{name}/f1")
        assert last.value == pytest.approx(metrics["test"]["per_class"][name]["f1"])


# -- progress: the loss says what it averages; no other library's bar without a terminal -------
def test_the_loss_line_is_the_mean_of_the_steps_since_the_previous_line() -> None:
    from bertft.state import Running

    run = Running(10)  # the sums start at step 10 (an evaluation, or a resume)
    for step, loss in enumerate((1.0, 3.0, 5.0, 7.0), 11):
        run.add(torch.tensor(loss), torch.zeros(1, 2), torch.zeros(1, dtype=torch.long))
        if step == 12:
            assert run.window(step) == (2.0, 2)
    assert run.window(14) == (6.0, 2)


def test_no_third_party_progress_bar_without_a_terminal(tmp_path) -> None:
    from huggingface_hub.utils import are_progress_bars_disabled
    from transformers.utils import logging as hf_logging

    from bertft.train import fit

    seen = []
    cfg = Config.of(model="tiny-bert", task="text-file", train_file=str(_csv(tmp_path / "d.csv")),
                    max_length=16, epochs=1, progress=True)
    before = (hf_logging.is_progress_bar_enabled(), are_progress_bars_disabled())
    assert not sys.stderr.isatty()
    fit(cfg, out_dir=tmp_path / "o", on_ready=lambda: seen.append(
        (hf_logging.is_progress_bar_enabled(), are_progress_bars_disabled())))
    assert seen == [(False, True)]  # while it trains and saves ("Writing model shards")
    assert (hf_logging.is_progress_bar_enabled(), are_progress_bars_disabled()) == before
