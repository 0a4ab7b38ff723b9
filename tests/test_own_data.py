"""Your own data: `datasets` datasets (parquet, save_to_disk) as tasks, headerless CSV/TSV,
max_eval_samples / max_test_samples, and progress lines when no terminal shows a bar."""

from __future__ import annotations

import io
import re
import os
from pathlib import Path

import pytest

from bertft.config import Config
from bertft.data import load_task
from bertft.errors import DataError
from bertft.progress import StepLog, format_seconds
from bertft.train import fit

datasets = pytest.importorskip("datasets")

QUICK = dict(model="tiny-bert", max_length=16, batch_size=8, epochs=1, progress=False,
             save_model=False)


def _classification(n: int = 40) -> dict[str, list]:
    return {"sentence": [f"{'great' if i % 2 else 'awful'} film number {i}" for i in range(n)],
            "label": [i % 2 for i in range(n)]}


def test_parquet_with_classlabel_trains(tmp_path: Path) -> None:
    """A folder of parquet files (written by datasets, so the ClassLabel survives in the
    schema): split names from the file names, label names from the ClassLabel."""
    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["neg", "pos"])})
    full = datasets.Dataset.from_dict(_classification(), features=features)
    full.select(range(30)).to_parquet(str(tmp_path / "train.parquet"))
    full.select(range(30, 40)).to_parquet(str(tmp_path / "validation.parquet"))
    cfg = Config.of(task="hf-dataset", dataset=str(tmp_path), text_column="sentence", **QUICK)
    splits = load_task(cfg.data)
    assert splits.label_names == ("neg", "pos")
    assert splits.sizes() == {"train": 27, "validation": 10, "test": 3}  # test carved
    assert splits.validation[0].text == "awful film number 30"
    result = fit(cfg, splits=splits)
    assert result.data["source"] == os.path.relpath(tmp_path)  # never an absolute path
    test = result.predictions["test"]  # in data order, scored against the ClassLabel ids
    assert test["label"] == [e.label for e in splits.test] and len(test["label"]) == 3
    assert result.test["accuracy"] == pytest.approx(
        sum(p == g for p, g in zip(test["pred"], test["label"], strict=True)) / 3)


def test_save_to_disk_ner_with_sequence_classlabel_trains(tmp_path: Path) -> None:
    tags = datasets.ClassLabel(names=["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])
    features = datasets.Features({"tokens": datasets.List(datasets.Value("string")),
                                  "ner_tags": datasets.List(tags)})
    rows = {"tokens": [["John", "Smith", "lives", "in", "Paris"]] * 20 + [[]],
            "ner_tags": [[1, 2, 0, 0, 3]] * 20 + [[]]}
    ds = datasets.Dataset.from_dict(rows, features=features)
    datasets.DatasetDict({"train": ds, "test": ds.select(range(4))}).save_to_disk(
        str(tmp_path / "ner"))
    cfg = Config.of(task="hf-dataset-ner", dataset=str(tmp_path / "ner"), **QUICK)
    splits = load_task(cfg.data)
    assert splits.label_names == ("O", "B-LOC", "I-LOC", "B-PER", "I-PER")
    assert splits.sizes() == {"train": 18, "validation": 2, "test": 4}  # empty one dropped
    assert [splits.label_names[t] for t in splits.train[0].tags] == [
        "B-PER", "I-PER", "O", "O", "B-LOC"]
    result = fit(cfg, splits=splits)
    assert result.kind == "ner"  # 4 test sentences, each one PER and one LOC entity
    assert {k: v["support"] for k, v in result.test["per_type"].items()} == {"LOC": 4, "PER": 4}


def test_string_tags_in_iob1_become_bio(tmp_path: Path) -> None:
    rows = {"words": [["Paris", "Hilton"], ["in", "Paris"]] * 10,
            "tags": [["I-PER", "I-PER"], ["O", "I-LOC"]] * 10}
    datasets.Dataset.from_dict(rows).to_parquet(str(tmp_path / "train.parquet"))
    cfg = Config.of(task="hf-dataset-ner", dataset=str(tmp_path), tokens_column="words",
                 tags_column="tags")
    splits = load_task(cfg.data)
    assert splits.label_names == ("O", "B-LOC", "I-LOC", "B-PER", "I-PER")
    names = [[splits.label_names[t] for t in ex.tags] for ex in splits.train[:2]]
    assert sorted(map(tuple, names)) == [("B-PER", "I-PER"), ("O", "B-LOC")]


def test_string_labels_and_a_ner_hint(tmp_path: Path) -> None:
    rows = {"text": ["a b", "c d"] * 10, "label": ["sport", "tech"] * 10,
            "tokens": [["a"], ["b"]] * 10}
    datasets.Dataset.from_dict(rows).to_json(str(tmp_path / "train.jsonl"))
    assert load_task(Config.of(task="hf-dataset", dataset=str(tmp_path)).data).label_names == (
        "sport", "tech")
    with pytest.raises(DataError, match=r"no column 'sentence'; columns are: text, label, "
                                        r"tokens; for NER data use task hf-dataset-ner"):
        load_task(Config.of(task="hf-dataset", dataset=str(tmp_path),
                            text_column="sentence").data)


def test_fingerprint_covers_the_content(tmp_path: Path) -> None:
    """Same rows in csv and parquet: same data fingerprint; one edited row: another one (so
    stored results are superseded and rerun)."""
    rows = _classification(30)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    datasets.Dataset.from_dict(rows).to_csv(str(tmp_path / "a" / "train.csv"), index=False)
    datasets.Dataset.from_dict(rows).to_parquet(str(tmp_path / "b" / "train.parquet"))

    def fingerprint(folder: str) -> str:
        return load_task(Config.of(task="hf-dataset", dataset=str(tmp_path / folder),
                                   text_column="sentence").data).fingerprint()

    assert fingerprint("a") == fingerprint("b")
    rows["sentence"][3] = "an edited sentence"
    datasets.Dataset.from_dict(rows).to_parquet(str(tmp_path / "b" / "train.parquet"))
    assert fingerprint("a") != fingerprint("b")


def _sst2_as_parquet(shared_data: Path, out: Path) -> Path:
    """The SST-2 copy in shared/data as a Hub-layout parquet dataset (train; dev as test,
    since GLUE's test labels are hidden), ClassLabel names as the sst2 task's."""
    import pandas as pd

    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})
    for src, split in (("train.tsv", "train"), ("dev.tsv", "test")):
        frame = pd.read_csv(shared_data / "sst2" / src, sep="\t", quoting=3,
                            keep_default_na=False)
        frame["sentence"] = frame["sentence"].str.strip()
        datasets.Dataset.from_pandas(frame, features=features, preserve_index=False).to_parquet(
            str(out / f"{split}.parquet"))
    return out


SST2_SMALL = dict(max_train_samples=120, max_eval_samples=100, max_test_samples=100)


def test_sst2_as_parquet_trains_as_the_sst2_task(shared_data: Path, tmp_path: Path) -> None:
    folder = _sst2_as_parquet(shared_data, tmp_path)
    a = Config.of(task="sst2", data_dir=str(shared_data), **SST2_SMALL, **QUICK)
    b = a.with_overrides({"task": "hf-dataset", "dataset": str(folder),
                          "text_column": "sentence"})
    sa, sb = load_task(a.data), load_task(b.data)
    assert sa.fingerprint() == sb.fingerprint()
    assert sa.sizes() == sb.sizes() == {"train": 120, "validation": 100, "test": 100}
    ra, rb = fit(a, splits=sa), fit(b, splits=sb)
    assert ra.test == rb.test  # same seed, same numbers
    timing = ("train_seconds", "samples_per_s", "tokens_per_s")
    assert [{k: v for k, v in row.items() if k not in timing} for row in ra.history] == [
        {k: v for k, v in row.items() if k not in timing} for row in rb.history]


@pytest.mark.integration
def test_sst2_as_parquet_minilm(shared_data: Path, tmp_path: Path) -> None:
    """The target: through hf-dataset, the same test accuracy as through sst2 (minilm-l6)."""
    folder = _sst2_as_parquet(shared_data, tmp_path)
    settings = {**QUICK, "model": "minilm-l6", "max_length": 64, "batch_size": 16,
                "head_lr": 1e-4, "base_lr": 1e-4, "max_train_samples": 600,
                "max_eval_samples": 200, "max_test_samples": 400}
    a = Config.of(task="sst2", data_dir=str(shared_data), **settings)
    b = a.with_overrides({"task": "hf-dataset", "dataset": str(folder),
                          "text_column": "sentence"})
    ra, rb = fit(a), fit(b)
    assert ra.test["accuracy"] == rb.test["accuracy"] > 0.6
    assert ra.data["fingerprint"] == rb.data["fingerprint"] and rb.data["test"] == 400


# --- headerless CSV / TSV ------------------------------------------------------------------------
@pytest.mark.parametrize("name, sep", [("news.csv", ","), ("news.tsv", "\t")])
def test_headerless_files_by_column_index(tmp_path: Path, name: str, sep: str) -> None:
    lines = [f"{1 + i % 2}{sep}Title {i}{sep}{'Stocks fell' if i % 2 else 'Team won'} {i}"
             for i in range(20)]
    (tmp_path / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = Config.of(task="text-file", train_file=str(tmp_path / name), header=False,
                 text_column=2, text_pair_column=1, label_column=0)
    splits = load_task(cfg.data)
    assert splits.label_names == ("1", "2")
    assert sum(splits.sizes().values()) == 20  # the first line is data, not a header
    first = sorted(splits.train + splits.validation + splits.test, key=lambda e: e.text)[0]
    assert (first.text, first.text_pair, splits.label_names[first.label]) == (
        "Stocks fell 1", "Title 1", "2")


def test_header_setting_from_the_cli_and_toml(tmp_path: Path, monkeypatch, capsys) -> None:
    """`bertft train` with header = false and column indices from a TOML file, one more
    index from a flag: the run trains on those columns and saves them."""
    from bertft.cli import main
    from bertft.rundir import read_run_config

    monkeypatch.chdir(tmp_path)
    rows = [f"{1 + i % 2}\tTitle {i}\t{'Stocks fell' if i % 2 else 'Team won'} {i}"
            for i in range(20)]
    Path("news.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    Path("run.toml").write_text('task = "text-file"\ntrain_file = "news.tsv"\n'
                                "header = false\ntext_column = 2\nlabel_column = 0\n"
                                'model = "tiny-bert"\nmax_length = 16\nepochs = 1\n')
    assert main(["train", "--config", "run.toml", "--text-pair-column", "1", "--progress",
                 "false", "--save-model", "false", "--out", "out"]) == 0, capsys.readouterr()
    cfg, kind, labels = read_run_config("out")
    d = cfg.data
    assert (d.header, d.text_column, d.text_pair_column, d.label_column) == (False, 2, 1, 0)
    assert (kind, labels) == ("classification", ("1", "2"))  # column 0, not a header line
    assert Config.of().data.header is True


# --- evaluation sizes --------------------------------------------------------------------------
def test_max_eval_and_test_samples_are_seeded_stratified_subsets() -> None:
    full = load_task(Config.of(task="bbc-news").data)
    cfg = Config.of(task="bbc-news", max_eval_samples=50, max_test_samples=40)
    small = load_task(cfg.data)
    assert small.sizes() == {"train": full.sizes()["train"], "validation": 50, "test": 40}
    assert set(small.validation) <= set(full.validation)
    assert small.validation == load_task(cfg.data).validation  # seeded by data_seed
    assert len({ex.label for ex in small.validation}) == 5  # stratified: every topic kept
    other = load_task(cfg.with_overrides({"data_seed": 1}).data)
    assert other.validation != small.validation


# --- progress lines ----------------------------------------------------------------------------
def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (4.4, 83, 3725)] == ["4s", "1m23s", "1h02m05s"]


def test_step_log_lines() -> None:
    out = io.StringIO()
    log = StepLog(total_steps=10, enabled=True, stream=out)
    line = log.line(4, 0.6931, 32, window=4)
    assert re.fullmatch(r"step 4/10 \| loss 0\.6931 \(mean of the last 4 steps\) \| "
                        r"[\d.]+ samples/s \| ETA \d+s", line)
    assert out.getvalue() == line + "\n"
    assert "(mean of the last step)" in log.line(5, 0.4, 40, window=1)
    assert StepLog(10, enabled=False, stream=out).line(5, 1.0, 8, window=1) is None


def test_fit_prints_a_progress_line_every_log_every_steps(tmp_path: Path, capsys) -> None:
    """stderr is not a terminal under pytest: no bar, a line every log_every steps."""
    csv = tmp_path / "d.csv"
    csv.write_text("text,label\n" + "".join(f"t {i},{'ab'[i % 2]}\n" for i in range(50)))
    cfg = Config.of(task="text-file", train_file=str(csv), log_every=2, **{**QUICK,
                                                                         "progress": True})
    fit(cfg)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("step ")]
    total = cfg.loop.epochs * -(-40 // cfg.batch.batch_size)  # 40 training examples after carving
    assert [ln.split(" | ")[0] for ln in lines] == [f"step {s}/{total}" for s in (2, 4)]
