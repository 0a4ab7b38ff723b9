"""Tests of bertft.data: built-in tasks on their real data, user files, preprocessing, errors."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from bertft.config import Config, DataConfig
from bertft.data import (
    TASKS,
    DataError,
    Example,
    Splits,
    iob1_to_bio,
    load_task,
    task_kind,
)

# /work/main/tests/test_data.py -> /work/shared/data
SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"no {SHARED_DATA}")


@pytest.fixture(autouse=True)
def _no_env_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BERTFT_DATA_DIR", raising=False)


def every_example(s: Splits) -> Counter:
    return Counter(s.train + s.validation + s.test)


def assert_valid_bio(tag_names: list[str]) -> None:
    previous = "O"
    for tag in tag_names:
        if tag.startswith("I-"):
            assert previous[2:] == tag[2:], f"{tag} after {previous}"
        previous = tag


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- registry -----------------------------------------------------------------------------
def test_registry_and_kinds() -> None:
    assert set(TASKS) == {"bbc-news", "wnut16", "sst2", "imdb", "conll2003", "text-file",
                          "conll-file", "hf-dataset", "hf-dataset-ner"}
    assert task_kind("bbc-news") == "classification"
    assert task_kind("conll2003") == "ner"
    assert task_kind("conll-file") == "ner"
    assert all(spec.description for spec in TASKS.values())


def test_unknown_task() -> None:
    with pytest.raises(DataError) as e:
        task_kind("x")
    assert str(e.value) == ("unknown task 'x'; known tasks: bbc-news, conll-file, conll2003, "
                            "hf-dataset, hf-dataset-ner, imdb, sst2, text-file, wnut16")
    with pytest.raises(DataError, match="unknown task 'x'"):
        load_task(DataConfig(task="x"))


# --- bbc-news -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bbc() -> Splits:
    return load_task(DataConfig(task="bbc-news"))


def test_bbc_news_sizes_and_labels(bbc: Splits) -> None:
    assert bbc.kind == "classification"
    assert bbc.label_names == ("business", "entertainment", "politics", "sports", "tech")
    assert sum(bbc.sizes().values()) == 2225
    assert bbc.sizes() == {"train": 1779, "validation": 223, "test": 223}  # ceil(10%) each
    # the one cp1252 file (sports/199.txt) is decoded, pound sign included
    assert any("\u00a315.8m signing from Parma" in ex.text for ex in bbc.train + bbc.test
               + bbc.validation)
    assert all(ex.text and ex.label is not None for ex in bbc.train)


def test_bbc_news_splits_are_a_stratified_partition(bbc: Splits) -> None:
    raw = TASKS["bbc-news"].loader(DataConfig())
    assert every_example(bbc) == Counter(raw.train)  # disjoint, nothing lost or repeated
    overall = Counter(ex.label for ex in raw.train)
    test = Counter(ex.label for ex in bbc.test)
    for label, count in overall.items():
        assert abs(test[label] - count * 223 / 2225) <= 1


def test_bbc_news_splits_deterministic(bbc: Splits) -> None:
    again = load_task(Config.of(task="bbc-news", seed=7).data)  # `seed` does not move the data
    assert again == bbc
    assert again.fingerprint() == bbc.fingerprint()
    other = load_task(DataConfig(task="bbc-news", data_seed=1))
    assert set(other.test) != set(bbc.test)
    assert other.fingerprint() != bbc.fingerprint()
    assert len(bbc.fingerprint()) == 16 and int(bbc.fingerprint(), 16) >= 0


def test_max_train_samples_stratified_exact(bbc: Splits) -> None:
    small = load_task(DataConfig(task="bbc-news", max_train_samples=100))
    assert len(small.train) == 100
    assert set(small.train) <= set(bbc.train)
    assert small.test == bbc.test and small.validation == bbc.validation
    full = Counter(ex.label for ex in bbc.train)
    sub = Counter(ex.label for ex in small.train)
    for label, count in full.items():
        assert abs(sub[label] - count * 100 / len(bbc.train)) <= 1
    assert load_task(DataConfig(task="bbc-news", max_train_samples=10**6)).train == bbc.train


# --- wnut16 -------------------------------------------------------------------------------
def test_wnut16() -> None:
    s = load_task(DataConfig(task="wnut16"))
    assert s.kind == "ner"
    assert sum(s.sizes().values()) == 2394
    assert len(s.label_names) == 21 and s.label_names[0] == "O"
    assert s.label_names[1:3] == ("B-company", "I-company")
    for ex in s.train:
        assert len(ex.tokens) == len(ex.tags) > 0
        assert_valid_bio([s.label_names[t] for t in ex.tags])


# --- conll2003, sst2, imdb (local copies) -------------------------------------------------
def test_iob1_to_bio() -> None:
    assert iob1_to_bio(["I-PER", "I-PER", "O", "I-LOC", "B-LOC"]) == [
        "B-PER", "I-PER", "O", "B-LOC", "B-LOC"]
    assert iob1_to_bio(["I-PER", "I-ORG", "I-ORG"]) == ["B-PER", "B-ORG", "I-ORG"]
    bio = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]
    assert iob1_to_bio(bio) == bio


@needs_shared
def test_conll2003_local() -> None:
    s = load_task(DataConfig(task="conll2003", data_dir=str(SHARED_DATA)))
    assert s.sizes() == {"train": 14041, "validation": 3250, "test": 3453}
    assert s.label_names == ("O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG",
                             "B-PER", "I-PER")
    first = s.train[0]
    assert first.tokens[:3] == ("EU", "rejects", "German")
    assert [s.label_names[t] for t in first.tags[:3]] == ["B-ORG", "O", "B-MISC"]
    for ex in s.train + s.validation + s.test:
        assert_valid_bio([s.label_names[t] for t in ex.tags])  # every entity starts with B-
    # the folder itself works as well as its parent
    direct = load_task(DataConfig(task="conll2003", data_dir=str(SHARED_DATA / "conll2003")))
    assert direct.fingerprint() == s.fingerprint()


@needs_shared
def test_sst2_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTFT_DATA_DIR", str(SHARED_DATA))
    s = load_task(DataConfig(task="sst2"))
    assert s.label_names == ("negative", "positive")
    assert len(s.test) == 872  # GLUE dev serves as test
    assert len(s.train) + len(s.validation) == 67349
    assert len(s.validation) == 6735
    assert s.test[0] == Example(text="it 's a charming and often affecting journey .", label=1)
    assert s.source == os.path.relpath(SHARED_DATA / "sst2")  # never an absolute path


@needs_shared
def test_imdb_local() -> None:
    s = load_task(DataConfig(task="imdb", data_dir=str(SHARED_DATA / "imdb"), strip_html=True))
    assert s.label_names == ("neg", "pos")
    assert len(s.train) + len(s.validation) == 2000 and len(s.test) == 2000
    assert Counter(ex.label for ex in s.test) == {0: 1000, 1: 1000}
    assert not any("<br" in ex.text for ex in s.train + s.validation + s.test)


def test_local_file_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        load_task(DataConfig(task="sst2", data_dir=str(tmp_path)))
    assert str(e.value) == (f"sst2: file not found: {tmp_path / 'train.tsv'} (pass --data-dir "
                            "or set BERTFT_DATA_DIR to a folder with train.tsv and dev.tsv)")
    with pytest.raises(DataError, match=r"conll2003: file not found: .*eng\.train"):
        load_task(DataConfig(task="conll2003", data_dir=str(tmp_path)))


def test_explicit_data_dir_that_does_not_exist_is_an_error(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    monkeypatch.setenv("BERTFT_DATA_DIR", str(tmp_path))  # the explicit setting wins
    missing = tmp_path / "nope"
    with pytest.raises(DataError) as e:
        load_task(DataConfig(task="sst2", data_dir=str(missing)))
    assert str(e.value) == (f"sst2: file not found: {missing / 'train.tsv'} (pass --data-dir "
                            "or set BERTFT_DATA_DIR to a folder with train.tsv and dev.tsv)")


def test_env_data_dir_without_the_task_falls_back_to_the_hub(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    from bertft.data.tasks import local_dir

    cfg = DataConfig(task="sst2")
    monkeypatch.setenv("BERTFT_DATA_DIR", str(tmp_path / "absent"))  # tox sets it, existing or not
    assert local_dir(cfg, "sst2", "train.tsv") is None
    monkeypatch.setenv("BERTFT_DATA_DIR", str(tmp_path))  # exists, holds no sst2 data
    (tmp_path / "imdb").mkdir()
    assert local_dir(cfg, "sst2", "train.tsv") is None
    assert local_dir(cfg, "imdb", "imdb_train_sample.csv") == tmp_path / "imdb"
    (tmp_path / "train.tsv").write_text("sentence\tlabel\n")
    assert local_dir(cfg, "sst2", "train.tsv") == tmp_path


# --- Hub paths (offline: datasets.load_dataset is replaced) -------------------------------
def test_hub_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    def offline(*args: object, **kwargs: object) -> None:
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    for task in ("sst2", "imdb", "conll2003"):
        with pytest.raises(DataError, match=f"{task}: cannot load .* Hugging Face Hub.*"
                           "pass --data-dir or set BERTFT_DATA_DIR"):
            load_task(DataConfig(task=task))


def test_hub_conll2003_and_sst2(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

    hub_tags = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    ner = Features({"tokens": Sequence(Value("string")),
                    "ner_tags": Sequence(ClassLabel(names=hub_tags))})
    sentences = {"tokens": [["John", "Smith", "visits", "Paris"]] * 12,
                 "ner_tags": [[1, 2, 0, 5]] * 12}
    cls = Features({"sentence": Value("string"),
                    "label": ClassLabel(names=["negative", "positive"])})
    rows = {"sentence": [f"text {i} " for i in range(20)], "label": [i % 2 for i in range(20)]}

    def fake(name: str, config: str | None = None) -> DatasetDict:
        if name == "eriktks/conll2003":
            d = Dataset.from_dict(sentences, features=ner)
            return DatasetDict(train=d, validation=d, test=d)
        assert (name, config) == ("nyu-mll/glue", "sst2")
        d = Dataset.from_dict(rows, features=cls)
        return DatasetDict(train=d, validation=d)

    monkeypatch.setattr(datasets, "load_dataset", fake)
    s = load_task(DataConfig(task="conll2003"))
    assert s.source == "hub:eriktks/conll2003" and s.sizes() == {
        "train": 12, "validation": 12, "test": 12}
    assert [s.label_names[t] for t in s.train[0].tags] == ["B-PER", "I-PER", "O", "B-LOC"]
    c = load_task(DataConfig(task="sst2"))
    assert c.sizes() == {"train": 18, "validation": 2, "test": 20}
    assert c.test[0] == Example(text="text 0", label=0)


# --- text-file ----------------------------------------------------------------------------
def test_text_file_csv_string_labels(tmp_path: Path) -> None:
    rows = [("good film, \"really\"", "pos"), ("bad", "neg"), ("fine", "pos"), ("awful", "neg")]
    lines = ["text,label"] + [f'"{t.replace(chr(34), chr(34) * 2)}",{lab}' for t, lab in rows]
    train = write(tmp_path / "train.csv", "\n".join(lines * 1) + "\n")
    val = write(tmp_path / "val.csv", 'label,text\npos,"nice, really"\nneg,meh\n')
    test = write(tmp_path / "test.csv", "text,label\nok,pos\nno,neg\n")
    s = load_task(DataConfig(task="text-file", train_file=train, validation_file=val,
                         test_file=test))
    assert s.label_names == ("neg", "pos")
    assert s.train == tuple(Example(text=t, label=int(lab == "pos")) for t, lab in rows)
    assert s.validation == (Example(text="nice, really", label=1), Example(text="meh", label=0))
    assert s.test == (Example(text="ok", label=1), Example(text="no", label=0))
    assert s.source == ", ".join(os.path.relpath(p) for p in (train, val, test))


def test_text_file_tsv_pairs_and_carving(tmp_path: Path) -> None:
    lines = ["premise\thypothesis\tgold"] + [
        f'p "{i}\th{i}\t{["entail", "contra", "neutral"][i % 3]}' for i in range(30)]
    train = write(tmp_path / "train.tsv", "\n".join(lines) + "\n")
    cfg = Config.of(task="text-file", train_file=train, text_column="premise",
                 text_pair_column="hypothesis", label_column="gold")
    s = load_task(cfg.data)
    assert s.label_names == ("contra", "entail", "neutral")
    assert s.sizes() == {"train": 24, "validation": 3, "test": 3}
    assert Counter(ex.label for ex in s.test) == {0: 1, 1: 1, 2: 1}  # stratified
    everything = sorted(s.train + s.validation + s.test, key=lambda e: int(e.text_pair[1:]))
    assert everything[5] == Example(text='p "5', text_pair="h5", label=2)
    assert load_task(cfg.data) == s


def test_text_file_jsonl_int_labels(tmp_path: Path) -> None:
    records = [{"text": f"t{i}", "label": [2, 10, 1][i % 3]} for i in range(12)]
    train = write(tmp_path / "train.json", "\n".join(json.dumps(r) for r in records) + "\n\n")
    test = write(tmp_path / "test.jsonl", '{"text": "x", "label": "10"}\n')
    s = load_task(DataConfig(task="text-file", train_file=train, test_file=test))
    assert s.label_names == ("1", "2", "10")  # integers sort numerically
    assert s.test == (Example(text="x", label=2),)
    assert s.sizes() == {"train": 10, "validation": 2, "test": 1}


def test_text_file_single_member_class_is_one_error_not_a_crash(tmp_path: Path) -> None:
    """19 'a' and one 'b': carving cannot stratify, so a carved split holds 'a' only (issue
    22: every split carving or a subset made needs two classes)."""
    lines = ["text,label"] + [f"t{i},{'a' if i else 'b'}" for i in range(20)]
    with pytest.raises(DataError, match=r"^text-file: the validation split after carving has "
                       r"only 1 class \('a'\); classification needs at least 2 different "
                       r"labels in every split$"):
        load_task(DataConfig(task="text-file", train_file=write(tmp_path / "d.csv",
                                                             "\n".join(lines))))


def test_text_file_explicit_format_and_encoding(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    more = "".join(f"x{i}\ta\ny{i}\tb\n" for i in range(5))  # carved splits hold both
    path.write_bytes(f"text;x\tlabel\ncaf\u00e9\ta\nthé\tb\n{more}".encode("latin-1"))
    s = load_task(DataConfig(task="text-file", train_file=str(path), file_format="tsv",
                         encoding="latin-1", text_column="text;x"))
    assert "café" in {ex.text for ex in s.train + s.validation + s.test}


# --- preprocessing ------------------------------------------------------------------------
def make_csv(tmp_path: Path, texts: list[str]) -> str:
    lines = ["text,label"] + [f'"{t}",{"ab"[i % 2]}' for i, t in enumerate(texts)]
    return write(tmp_path / "p.csv", "\n".join(lines) + "\n")


def test_preprocessing_text(tmp_path: Path) -> None:
    texts = ["a<br />b", "Hello   World\t!", "  ", "x<i>y</i>", "Hello world !", "A<br />B"]
    train = make_csv(tmp_path, texts)
    test = write(tmp_path / "t.csv", 'text,label\n"Q <b>R</b>",a\n')
    base = dict(task="text-file", train_file=train, validation_file=train, test_file=test,
                drop_empty=True)
    raw = load_task(DataConfig(**base))
    assert [e.text for e in raw.train] == ["a<br />b", "Hello   World\t!", "x<i>y</i>",
                                           "Hello world !", "A<br />B"]
    clean = load_task(DataConfig(**base, strip_html=True, lowercase=True,
                                 normalize_whitespace=True))
    assert [e.text for e in clean.train] == ["a b", "hello world !", "x y", "hello world !",
                                             "a b"]
    assert clean.test == (Example(text="q r", label=0),)
    dedup = load_task(DataConfig(**base, strip_html=True, lowercase=True, normalize_whitespace=True,
                             drop_duplicates=True))
    assert [(e.text, e.label) for e in dedup.train] == [("a b", 0), ("hello world !", 1),
                                                        ("x y", 1)]
    assert len(dedup.validation) == 5  # drop_duplicates: train only
    html_only = load_task(DataConfig(**base, strip_html=True))
    assert html_only.train[0].text == "a b"


def test_preprocessing_ner_lowercase(tmp_path: Path) -> None:
    text = "John B-PER\nLives O\n\nIn O\nParis B-LOC\n"
    path = write(tmp_path / "d.conll", text)
    s = load_task(DataConfig(task="conll-file", train_file=path, validation_file=path,
                         test_file=path, lowercase=True, strip_html=True))
    assert s.train[0].tokens == ("john", "lives")


# --- conll-file ---------------------------------------------------------------------------
def test_conll_file_iob1_columns_and_docstart(tmp_path: Path) -> None:
    text = ("-DOCSTART- -X- O O\n\n"
            "U.N. NNP I-NP I-ORG\nofficial NN I-NP O\nEkeus NNP I-NP I-PER\n \n"
            "Peter NNP I-NP I-PER\nBlair NNP I-NP I-PER\nBob NNP I-NP B-PER\n\t\n"
            "-DOCSTART- -X- O O\n\nhello UH O O\n")
    path = write(tmp_path / "train.conll", text)
    s = load_task(DataConfig(task="conll-file", train_file=path, validation_file=path,
                         test_file=path))
    assert s.label_names == ("O", "B-ORG", "I-ORG", "B-PER", "I-PER")
    assert s.train[0] == Example(tokens=("U.N.", "official", "Ekeus"), tags=(1, 0, 3))
    assert s.train[1].tags == (3, 4, 3)
    assert len(s.train) == 3
    chunks = load_task(DataConfig(task="conll-file", train_file=path, validation_file=path,
                              test_file=path, tag_column=-2))
    assert chunks.label_names == ("O", "B-NP", "I-NP")


def test_conll_file_carving(tmp_path: Path) -> None:
    text = "".join(f"w{i} B-X\nv{i} O\n\n" for i in range(20))
    s = load_task(DataConfig(task="conll-file", train_file=write(tmp_path / "d.txt", text),
                         max_train_samples=5))
    assert s.sizes() == {"train": 5, "validation": 2, "test": 2}
    assert not set(s.train) & set(s.test)


# --- errors -------------------------------------------------------------------------------
BAD_CASES = [
    # (files, settings, expected message substring); {dir} is the tmp folder
    ({"data.csv": "text,label\na,x\n"}, {"text_column": "txt"},
     "data.csv: no column 'txt'; columns are: label, text"),
    ({"data.jsonl": '{"text": "a", "label": 1}\n{"txt": "b", "label": 2}\n'}, {},
     "data.jsonl line 2: no column 'text'; columns are: label, txt"),
    ({"data.csv": b"text,label\ncaf\xe9,a\n"}, {},
     "data.csv: cannot decode as utf-8 at byte 14; set encoding (e.g. encoding=latin-1)"),
    ({"data.csv": "text,label\na,pos\nb,neg\n",
      "val.csv": "text,label\nb,pos\nc,neg\nd,neutral\n"},
     {"validation_file": "val.csv"},
     "val.csv: label 'neutral' (row 3) does not occur in the training data; training labels: "
     "neg, pos"),
    ({"data.csv": "text,label\n<br />,pos\n<p></p>,neg\n"},
     {"strip_html": True, "drop_empty": True},
     "text-file: no training examples left after preprocessing (drop_empty/drop_duplicates)"),
    ({"data.csv": "text,label\na,pos\nb,neg\n", "val.csv": "text,label\n<br />,pos\n"},
     {"validation_file": "val.csv", "strip_html": True, "drop_empty": True},
     "text-file: no validation examples left after preprocessing"),
    ({"data.csv": "text,label\nsame,pos\nsame,neg\n"}, {"drop_duplicates": True},
     "classification needs at least 2 different labels"),
    ({"data.csv": "text,label\na,pos\nb,pos\nc,pos\n"}, {},
     "text-file: the training data has only 1 class ('pos')"),
    ({"data.csv": "text,label\na,pos\n  ,neg\n"}, {},
     "data.csv row 2: column 'text' is empty; fill it in or set drop_empty=true"),
    ({"data.csv": "text,label\na,pos\nb,\n"}, {}, "data.csv row 2: column 'label' is empty"),
    ({"data.csv": "text,label\na,pos,extra\n"}, {},
     "data.csv row 1 (line 2): expected 2 fields like the header, found 3"),
    ({"data.csv": ""}, {}, "data.csv: empty file"),
    ({"data.csv": "text,label\n"}, {}, "data.csv: no examples"),
    ({"data.txt": "text,label\na,b\n"}, {},
     "data.txt: cannot tell the file format from the extension '.txt'; use .csv, .tsv or "
     ".jsonl, or set file_format to csv, tsv or jsonl"),
    ({"data.jsonl": '{"text": "a", "label": 1}\n{"text": "b", label: 2}\n'}, {},
     "data.jsonl line 2: not valid JSON"),
    ({"data.jsonl": '["a", 1]\n'}, {}, "data.jsonl line 1: expected a JSON object, found list"),
    ({"data.jsonl": '{"text": "a", "label": true}\n'}, {},
     "data.jsonl line 1: label True in column 'label' must be a string or an integer"),
    ({"data.jsonl": '{"text": 5, "label": 1}\n'}, {},
     "data.jsonl line 1: column 'text' must be text, found int"),
    ({}, {"train_file": None}, "task text-file needs train_file (a CSV, TSV or JSONL file)"),
    ({}, {"train_file": "{dir}/nope.csv"}, "text-file: file not found: "),
    ({"data.csv": "text,label\na,b\n"}, {"encoding": "klingon"},
     "unknown encoding 'klingon'"),
    ({"data.csv": "text,label\na,b\nc,d\n"}, {"validation_ratio": 0.5, "test_ratio": 0.4},
     "text-file: only 2 training examples, too few to carve"),
    # NER
    ({"bad.conll": "a O\nb B-PER\n\nc O\nd X-PER\n"}, {"task": "conll-file"},
     "bad.conll line 5: tag 'X-PER' is not a valid BIO/IOB tag (allowed: O, B-<type>, "
     "I-<type>)"),
    ({"bad.conll": "a O\nb O\n\nc O\nd B-PER\n\ne O\nf\n"}, {"task": "conll-file"},
     "bad.conll line 8: expected at least 2 columns, found 1"),
    ({"bad.conll": "a x O\nb O\n"}, {"task": "conll-file", "token_column": 1},
     "bad.conll line 2: expected at least 3 columns, found 2"),
    ({"bad.conll": "a O\n"}, {"task": "conll-file", "token_column": 1, "tag_column": 1},
     "token_column and tag_column are both 1"),
    ({"bad.conll": "a B-PER\nb O\n", "val.conll": "c O\nd B-LOC\n"},
     {"task": "conll-file", "validation_file": "val.conll"},
     "val.conll line 2: entity type 'LOC' (tag 'B-LOC') does not occur in the training data; "
     "training types: PER"),
    ({"bad.conll": "\n \n"}, {"task": "conll-file"}, "bad.conll: no sentences found"),
    ({}, {"task": "conll-file", "train_file": None}, "task conll-file needs train_file"),
]


@pytest.mark.parametrize(("files", "settings", "expected"), BAD_CASES)
def test_bad_inputs(tmp_path: Path, files: dict[str, str | bytes], settings: dict,
                    expected: str) -> None:
    for name, content in files.items():
        if isinstance(content, bytes):
            (tmp_path / name).write_bytes(content)
        else:
            write(tmp_path / name, content)
    values = {"task": "text-file"}
    if files:
        values["train_file"] = str(tmp_path / next(iter(files)))
    for key, value in settings.items():
        if isinstance(value, str) and key.endswith("_file"):
            value = value.replace("{dir}", str(tmp_path))
            value = value if "/" in value else str(tmp_path / value)
        values[key] = value
    with pytest.raises(DataError) as e:
        load_task(DataConfig(**values))
    assert expected in str(e.value)
