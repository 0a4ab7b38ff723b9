"""Fast defaults: length-bucketed training order, length-sorted evaluation, no repeated
evaluation of unchanged weights, trial time shares, usage errors before heavy imports."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
import torch
from torch.utils.data import DataLoader

from bertft import state, train
from bertft.config import Config
from bertft.data import Example, Splits
from bertft.features import (
    collator, encode_splits, eval_order, length_bucket_order, make_loader, train_sampler,
)
from bertft.models import build_model, load_tokenizer
from bertft.runtime import resolve_settings, set_seed
from tests.conftest import ROOT


def _generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def _batches(order: list[int], size: int) -> list[list[int]]:
    return [order[i:i + size] for i in range(0, len(order), size)]


def test_length_buckets_sort_within_batches_and_shuffle_the_batches():
    rng = random.Random(0)
    lengths = [rng.randint(3, 120) for _ in range(1003)]  # 1003 = 31 batches of 32 + 11
    order = length_bucket_order(lengths, 32, _generator(0))
    assert sorted(order) == list(range(1003))  # each example once
    batches = _batches(order, 32)
    assert [len(b) for b in batches] == [32] * 31 + [11]  # the partial batch comes last
    for b in batches:
        assert [lengths[i] for i in b] == sorted((lengths[i] for i in b), reverse=True)
    assert lengths[batches[0][0]] == max(lengths)  # longest batch first
    tops = [lengths[b[0]] for b in batches[1:-1]]
    assert tops != sorted(tops, reverse=True) and tops != sorted(tops)  # batch order shuffled
    # mega-batches of min(50, 1003 // 128) = 7 batches: far less padding than random order
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    shuffled = _batches(torch.randperm(1003, generator=_generator(0)).tolist(), 32)
    random_padded = sum(len(b) * max(lengths[i] for i in b) for b in shuffled)
    assert padded < 0.7 * random_padded


def test_length_buckets_are_seeded_and_change_every_epoch():
    lengths = [i % 37 + 1 for i in range(300)]
    assert length_bucket_order(lengths, 8, _generator(1)) == \
        length_bucket_order(lengths, 8, _generator(1))
    assert length_bucket_order(lengths, 8, _generator(1)) != \
        length_bucket_order(lengths, 8, _generator(2))
    sampler = train_sampler([{"input_ids": [0] * n} for n in lengths],
                            Config.of(batch_size=8).batch, _generator(1))
    assert Config().batch.sampling == "auto"  # length_buckets on every device (bertft.auto)
    assert type(sampler).__name__ == "LengthBucketSampler"  # the default sampling
    assert list(sampler) != list(sampler)  # the generator advances: a new order each epoch
    # fewer rows than four batches: one mega-batch of one batch
    assert length_bucket_order([5, 1, 3], 8, _generator(0)) == [0, 2, 1]


TEXTS = ["a fine film", "dull , slow and far too long for what it has to say about anything",
         "ok", "the best thing i have seen this year , truly", "bad", "not good at all",
         "good", "an utterly forgettable , overlong and joyless sequel", "meh", "loved it"]


def _toy() -> Splits:
    ex = tuple(Example(text=t, label=i % 2) for i, t in enumerate(TEXTS))
    return Splits("toy", "classification", ("neg", "pos"), ex, ex, ex[:4], "test")


def test_evaluation_runs_longest_first_and_returns_data_order():
    cfg = Config.of(model="tiny-bert", eval_batch_size=3, max_length=24)
    tok = load_tokenizer(cfg.model)
    feats = encode_splits(_toy(), tok, cfg.tokens).validation
    lengths = [len(f["input_ids"]) for f in feats]
    assert eval_order(feats) == sorted(range(len(feats)), key=lambda i: -lengths[i])
    set_seed(0)
    model = build_model(cfg.model, "classification", ("neg", "pos"))
    cpu = torch.device("cpu")
    sorted_loader = make_loader(feats, tok, "classification", cfg.batch, 24, train=False)
    in_order = DataLoader(feats, batch_size=3,
                          collate_fn=collator(tok, "classification", cfg.batch, 24))
    got, got_preds = train.evaluate(model, sorted_loader, "classification", ("neg", "pos"), cpu,
                                    torch.float32)
    want, want_preds = train.evaluate(model, in_order, "classification", ("neg", "pos"), cpu,
                                      torch.float32)
    assert got_preds["label"] == [i % 2 for i in range(len(TEXTS))]  # data order
    assert got_preds["pred"] == want_preds["pred"]
    assert got_preds["confidence"] == pytest.approx(want_preds["confidence"], abs=1e-5)
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)  # per example, not per batch
    assert got["accuracy"] == want["accuracy"]


def test_restored_best_weights_are_not_evaluated_again(monkeypatch):
    """The best validation result is kept with the best weights: restoring them costs no
    evaluation, and the run's validation metrics are the best epoch's."""
    calls = []
    real_evaluate = train.evaluate

    def counting(*args, **kwargs):
        calls.append(1)
        return real_evaluate(*args, **kwargs)

    first = iter([True])
    monkeypatch.setattr(train, "evaluate", counting)
    monkeypatch.setattr(state, "improves", lambda *a: next(first, False))  # best: epoch 1
    cfg = Config.of(model="tiny-bert", epochs=3, batch_size=4, progress=False, save_model=False,
                 max_length=24)
    r = train.fit(cfg, splits=_toy())
    assert r.best["epoch"] == 1
    assert len(calls) == 3 + 1  # validation each epoch and the test split; no re-evaluation
    assert r.validation["loss"] == pytest.approx(r.history[0]["val_loss"])
    t = r.timing
    assert t["total_seconds"] == pytest.approx(t["train_seconds"] + t["eval_seconds"]
                                               + t["setup_seconds"])
    assert t["eval_seconds"] == pytest.approx(t["validation_seconds"] + t["test_seconds"])
    assert 0 < t["validation_seconds"] and 0 < t["test_seconds"]
    assert t["eval_seconds"] < t["total_seconds"]
    assert t["non_train_share"] == pytest.approx(1 - t["train_seconds"] / t["total_seconds"])
    assert t["overhead_share"] == pytest.approx(
        (t["validation_seconds"] + t["setup_seconds"]) / t["total_seconds"])


def test_trial_shares():
    assert train.trial_shares(10.0, 6.0, validation=1.0, test=2.0) == {
        "total_seconds": 10.0, "eval_seconds": 3.0, "validation_seconds": 1.0,
        "test_seconds": 2.0, "setup_seconds": pytest.approx(1.0),
        "non_train_share": pytest.approx(0.4), "overhead_share": pytest.approx(0.2)}


@pytest.mark.parametrize("argv, message", [
    (["--task", "nope"], "unknown task 'nope'; known tasks: bbc-news, conll-file"),
    (["--set", "epochs=x"], "epochs = 'x': expected an integer"),
])
def test_usage_errors_are_found_before_torch_is_imported(argv, message, tmp_path):
    code = ("import sys; from bertft.cli import main; rc = main(['train', '--out', sys.argv[1]]"
            " + sys.argv[2:]); print(rc, 'torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run"), *argv], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["2", "False", "False"], out.stderr
    assert message in out.stderr
    assert not (tmp_path / "run").exists()



def test_process_benchmark_runs_bertft_defaults_on_the_trainers_workload():
    """The whole-process benchmark's `bertft train` command line: the workload's settings,
    bertft's own batching and evaluation defaults, the same evaluation work as the Trainer."""
    from benchmarks import process
    from bertft.cli import build_parser, config_from_args

    argv = process.bertft_argv(process.sst2_settings("/data", 256, 64, 100), "/tmp/out")
    assert argv[1:4] == ["-m", "bertft", "train"]
    cfg = config_from_args(build_parser().parse_args(argv[3:]))
    flat = cfg.to_dict()
    assert [flat[k] for k in ("task", "data_dir", "max_train_samples", "max_test_samples",
                              "epochs", "batch_size", "max_length", "eval_batch_size")] == [
        "sst2", "/data", 256, 100, 1, 32, 128, 128]
    every = config_from_args(build_parser().parse_args(
        process.bertft_argv(process.sst2_settings("/data", 256, 64, None), "/tmp/out")[3:]))
    assert every.data.max_test_samples is None  # all 872 GLUE dev rows
    assert round(flat["validation_ratio"] * process.GLUE_SST2_TRAIN) == 64
    assert [flat[k] for k in ("sampling", "unpad", "save_model")] == ["auto", "auto", False]
    on_cpu = resolve_settings(cfg, torch.device("cpu"))
    assert [on_cpu[k] for k in ("sampling", "unpad")] == ["length_buckets", True]


def _toy_sst2(folder) -> None:
    """An SST-2 folder in GLUE's layout: 40 unique training texts of 3 to 17 words (a trailing
    space, as GLUE's; some hold a quote, which TSV keeps as is) and 10 dev texts."""
    (folder / "sst2").mkdir(parents=True)
    train = [f'w{i} ' + " ".join(['"x"' if i % 3 == 0 else "x"] * (2 + i * 7 % 15)) + " "
             for i in range(40)]
    dev = [f"d{i} y y y " for i in range(10)]
    for name, texts in (("train.tsv", train), ("dev.tsv", dev)):
        rows = [f"{t}\t{i % 2}" for i, t in enumerate(texts)]
        (folder / "sst2" / name).write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")


def test_short_questions_files_hold_what_keep_words_keeps_and_the_sst2_eval_rows(tmp_path):
    """`benchmarks.process --workload short-questions`: the TSV files both systems read hold
    the first rows of 6-14 words of the default workload's training pool (`keep_words`) and
    the default workload's validation and test rows, read back by `text-file` unchanged."""
    from benchmarks import process
    from benchmarks.workload import keep_words
    from bertft.data import load_task

    _toy_sst2(tmp_path / "data")
    (tmp_path / "q").mkdir()
    settings = process.question_settings(str(tmp_path / "data"), 8, 10102, 6, tmp_path / "q")
    assert settings == {"task": "text-file", "text_column": "sentence", "label_column": "label",
                        **{f"{s}_file": str(tmp_path / "q" / f"{s}.tsv")
                           for s in ("train", "validation", "test")}}
    loaded = load_task(Config.of(**settings).data)
    pool = load_task(Config.of(**process.sst2_settings(str(tmp_path / "data"), None, 10102,
                                                       6)).data)
    default = load_task(Config.of(**process.sst2_settings(str(tmp_path / "data"), 8, 10102,
                                                          6)).data)
    assert loaded.train == keep_words(pool, (6, 14), 8).train
    # training rows 1, 3, 5, 7, 8, 9, 10, 12 hold 3 + (7 i mod 15) words: the first 8 of 6-14
    assert [(e.text.split()[0], len(e.text.split())) for e in loaded.train] == [
        ("w1", 10), ("w3", 9), ("w5", 8), ("w7", 7), ("w8", 14), ("w9", 6), ("w10", 13),
        ("w12", 12)]
    assert any('"' in e.text for e in loaded.train)
    assert (loaded.validation, loaded.test) == (default.validation, default.test)
    assert (len(loaded.validation), len(loaded.test), loaded.label_names) == (
        6, 6, ("negative", "positive"))
    first = loaded.train[0]
    assert (tmp_path / "q" / "train.tsv").read_text().splitlines()[:2] == [
        "sentence\tlabel", f"{first.text}\t{loaded.label_names[first.label]}"]


def test_short_questions_files_that_read_back_otherwise_are_refused(tmp_path, monkeypatch):
    """Label names that `text-file` would order otherwise (it sorts them) would swap every
    label: the benchmark stops instead of timing other data."""
    import dataclasses

    from benchmarks import process, workload

    keep = workload.keep_words
    monkeypatch.setattr(workload, "keep_words", lambda s, w, n: dataclasses.replace(
        keep(s, w, n), label_names=("positive", "negative")))
    _toy_sst2(tmp_path / "data")
    with pytest.raises(SystemExit, match=r"^short-questions: label_names, train, validation, "
                       r"test read back from .+ differ from the rows written there$"):
        process.question_settings(str(tmp_path / "data"), 8, 10102, 6, tmp_path)


def test_process_benchmark_workload_option_and_the_trainer_scripts_data(monkeypatch, capsys):
    from benchmarks import process
    from bertft.cli import build_parser, config_from_args

    seen = []
    monkeypatch.setattr(process, "measure", lambda *a: seen.append(a) or {})
    assert process.main(["--workload", "short-questions", "--rows", "64", "--val-rows", "16",
                         "--test-rows", "32", "--rounds", "1", "--data", "/d"]) == 0
    assert process.main(["--data", "/d"]) == 0
    assert seen == [("/d", 64, 16, 1, 32, "short-questions"), ("/d", 2000, 875, 2, None, "sst2")]
    assert list(process.WORKLOADS) == ["sst2", "short-questions"]
    with pytest.raises(SystemExit) as e:
        process.main(["--workload", "trec"])
    assert e.value.code == 2
    assert "argument --workload: invalid choice: 'trec'" in capsys.readouterr().err
    settings = {"task": "text-file", "train_file": "/q/train.tsv",
                "validation_file": "/q/validation.tsv", "test_file": "/q/test.tsv",
                "text_column": "sentence", "label_column": "label"}
    args = process.parser().parse_args(process.trainer_argv(settings)[3:])
    assert args.trainer_script and args.settings == settings
    flat = config_from_args(build_parser().parse_args(
        process.bertft_argv(settings, "/tmp/out")[3:])).to_dict()
    assert {k: flat[k] for k in settings} == settings
    assert [flat[k] for k in ("max_train_samples", "max_test_samples", "save_model")] == [
        None, None, False]
