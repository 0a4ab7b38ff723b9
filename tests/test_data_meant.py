"""Data read as the user meant it, or refused with one line (issue 22): labels mapped by name
in every split, names normalised, nulls refused with the row, CoNLL column counts, header
lines, entities cut by max_length, macro averages, classes in every split, label_names."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from bertft.config import Config, DataConfig
from bertft.data import Example, Splits, load_task
from bertft.errors import ConfigError, DataError
from bertft.metrics import classification_metrics, restore_cut_words, truncation_note
from bertft.report.decide import macro_f1_influence

datasets = pytest.importorskip("datasets")


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def _dict(tmp_path: Path, splits: dict[str, dict], features: dict | None = None) -> str:
    """A save_to_disk DatasetDict; `features[split]` gives a split its own features."""
    out = {name: datasets.Dataset.from_dict(rows, features=(features or {}).get(name))
           for name, rows in splits.items()}
    datasets.DatasetDict(out).save_to_disk(str(tmp_path / "ds"))
    return str(tmp_path / "ds")


def _classlabel(*names: str) -> datasets.Features:
    return datasets.Features({"text": datasets.Value("string"),
                              "label": datasets.ClassLabel(names=list(names))})


TRAIN = {"text": [f"t{i}" for i in range(20)], "label": [i % 2 for i in range(20)]}


def _hf(path: str, **settings) -> Splits:
    return load_task(DataConfig(task="hf-dataset", dataset=path, **settings))


# ---- labels mapped by name in every split ------------------------------------------------------
def test_each_split_reads_its_own_classlabel_names(tmp_path: Path) -> None:
    """Train lists (neg, pos), test (pos, neg): test id 0 is 'pos', so it maps to train's 1."""
    path = _dict(tmp_path, {"train": TRAIN, "test": {"text": ["a", "b", "c"], "label": [0, 1, 0]}},
                 {"train": _classlabel("neg", "pos"), "test": _classlabel("pos", "neg")})
    s = _hf(path)
    assert s.label_names == ("neg", "pos")
    assert [e.label for e in s.test] == [1, 0, 1]


def test_string_labels_beside_a_train_classlabel(tmp_path: Path) -> None:
    path = _dict(tmp_path, {"train": TRAIN,
                            "test": {"text": ["a", "b"], "label": ["pos ", "neg"]}},
                 {"train": _classlabel("neg", "pos")})
    assert [e.label for e in _hf(path).test] == [1, 0]


def test_integer_labels_beside_a_named_classlabel_are_refused(tmp_path: Path) -> None:
    path = _dict(tmp_path, {"train": TRAIN, "test": {"text": ["a"], "label": [1]}},
                 {"train": _classlabel("neg", "pos")})
    with pytest.raises(DataError) as e:
        _hf(path)
    assert str(e.value) == (f"dataset '{path}' split 'test' row 1: label '1' does not occur in "
                            "the training data; training labels: neg, pos")


def test_labels_differing_in_whitespace_or_unicode_form_are_one_class(tmp_path: Path) -> None:
    nfd = unicodedata.normalize("NFD", "café")
    labels = ["neg", "neg ", "café", nfd, " pos", "pos"] * 6
    path = _dict(tmp_path, {"train": {"text": [f"t{i}" for i in range(36)], "label": labels}})
    s = _hf(path)
    assert s.label_names == ("café", "neg", "pos")  # no phantom "neg " or NFD "café"
    csv = _write(tmp_path / "d.csv", "text,label\n" + "".join(
        f"t{i},{lab}\n" for i, lab in enumerate(labels)))
    assert load_task(DataConfig(task="text-file", train_file=csv)).label_names == s.label_names


def test_declared_names_that_collapse_are_refused(tmp_path: Path) -> None:
    path = _dict(tmp_path, {"train": TRAIN}, {"train": _classlabel("neg", "neg ")})
    with pytest.raises(DataError) as e:
        _hf(path)
    assert str(e.value) == (
        f"dataset '{path}' split 'train' ClassLabel of column 'label': label names 'neg' and "
        "'neg ' are one name once Unicode-normalised (NFC) and stripped of surrounding "
        "whitespace; give every class a distinct name")


# ---- nulls -------------------------------------------------------------------------------------
def _ner(tmp_path: Path, tokens: list, tags: list) -> str:
    rows = {"tokens": [["John", "lives"]] * 6 + [tokens], "ner_tags": [["B-PER", "O"]] * 6 + [tags]}
    return _dict(tmp_path, {"train": rows})


@pytest.mark.parametrize(("tokens", "tags", "expected"), [
    (["Paris", None], ["B-LOC", "O"], "row 7: item 2 of column 'tokens' is null (no value); "
     "every token needs its text and its tag"),
    (["Paris"], None, "row 7: column 'ner_tags' is null (no list); every sentence needs its "
     "tokens and one tag per token"),
    (None, ["O"], "row 7: column 'tokens' is null (no list)"),
    (["Paris"], [None], "row 7: item 1 of column 'ner_tags' is null (no value)"),
])
def test_ner_nulls_are_refused_with_the_row(tmp_path: Path, tokens, tags, expected) -> None:
    path = _ner(tmp_path, tokens, tags)
    with pytest.raises(DataError) as e:
        load_task(DataConfig(task="hf-dataset-ner", dataset=path))
    assert str(e.value).startswith(f"dataset '{path}' split 'train' {expected}")


@pytest.mark.parametrize(("column", "expected"), [
    ("label", "row 3: column 'label' is null (no value); every example needs a label"),
    ("text", "row 3: column 'text' is null (no value); fill it in or set drop_empty=true"),
])
def test_classification_nulls_are_refused_with_the_row(tmp_path: Path, column, expected) -> None:
    rows = {"text": ["a", "b", "c", "d"], "label": ["x", "y", "x", "y"]}
    rows[column][2] = None
    path = _dict(tmp_path, {"train": rows})
    with pytest.raises(DataError) as e:
        _hf(path)
    assert str(e.value).startswith(f"dataset '{path}' split 'train' {expected}")


def test_a_null_second_text_is_refused_in_jsonl(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", '{"a": "x", "b": "y", "label": 1}\n'
                  '{"a": "x", "b": null, "label": 0}\n')
    with pytest.raises(DataError) as e:
        load_task(DataConfig(task="text-file", train_file=path, text_column="a",
                             text_pair_column="b"))
    assert str(e.value) == (f"{path} line 2: column 'b' is null (no value); every example of a "
                            "text-pair task needs its second text (an empty string is allowed)")


# ---- CoNLL columns and header lines ------------------------------------------------------------
def test_a_conll_line_with_another_column_count_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.conll", "John B-PER\nlives O\n\nNew York B-LOC\nis O\n")
    with pytest.raises(DataError) as e:
        load_task(DataConfig(task="conll-file", train_file=path))
    assert str(e.value) == (f"{path} line 4: 3 columns, but line 1 has 2; every word line "
                            "needs the same columns (a token holding a space, or a missing tag?)")


def test_header_false_on_a_file_with_a_header_is_refused(tmp_path: Path) -> None:
    rows = "".join(f"review number {i},{i % 3}\n" for i in range(12))
    path = _write(tmp_path / "d.csv", "text,label\n" + rows)
    with pytest.raises(DataError) as e:
        load_task(DataConfig(task="text-file", train_file=path, header=False, text_column=0,
                             label_column=1))
    assert str(e.value) == (f"{path} row 1: label 'label' occurs in no other row and row 1 "
                            "looks like a header line (text, label); the file has a header: set "
                            "header = true and name the columns")
    headerless = _write(tmp_path / "h.csv", rows)  # the same file without it reads fine
    s = load_task(DataConfig(task="text-file", train_file=headerless, header=False,
                             text_column=0, label_column=1))
    assert s.label_names == ("0", "1", "2")


@pytest.mark.parametrize(("settings", "expected"), [
    ({"task": "hf-dataset", "header": False}, "task hf-dataset does not read header (set to "
     "false): it applies to text-file only; remove the setting"),
    ({"task": "conll-file", "label_names": ("a", "b")}, "task conll-file does not read "
     "label_names (set to ('a', 'b')): it applies to text-file, hf-dataset only; remove the "
     "setting"),
])
def test_settings_a_task_ignores_are_refused(settings: dict, expected: str) -> None:
    if settings.get("header") is False:
        settings = {**settings, "text_column": 0, "label_column": 1}
    with pytest.raises(DataError) as e:
        load_task(DataConfig(**settings))
    assert str(e.value) == expected


# ---- label_names: the file, parquet and datasets paths agree -----------------------------------
AG = ["World", "Sports", "Business", "Sci/Tech"]


def test_label_names_name_integer_labels_alike_on_every_path(tmp_path: Path) -> None:
    """AG News numbers its classes 1..4 in a headerless CSV; datasets' copy has a ClassLabel
    with ids 0..3. With label_names (and first_label_id = 1 for the CSV) every path gives the
    same label names and the same examples."""
    texts = [f"story {i} about things" for i in range(24)]
    ids = [i % 4 for i in range(24)]
    csv = _write(tmp_path / "train.csv", "".join(f"{k + 1},{t}\n" for k, t in
                                                  zip(ids, texts, strict=True)))
    common = dict(data_seed=3)
    from_csv = load_task(DataConfig(task="text-file", train_file=csv, header=False,
                                    label_column=0, text_column=1, label_names=tuple(AG),
                                    first_label_id=1, **common))
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=AG)})
    ds = datasets.Dataset.from_dict({"text": texts, "label": ids}, features=features)
    ds.save_to_disk(str(tmp_path / "disk"))
    (tmp_path / "pq").mkdir()
    datasets.Dataset.from_dict({"text": texts, "label": ids}).to_parquet(
        str(tmp_path / "pq" / "train.parquet"))  # plain integers: no ClassLabel
    from_disk = _hf(str(tmp_path / "disk"), **common)
    from_parquet = _hf(str(tmp_path / "pq"), label_names=tuple(AG), **common)
    assert from_csv.label_names == from_disk.label_names == from_parquet.label_names == tuple(AG)
    for name in ("train", "validation", "test"):
        assert getattr(from_csv, name) == getattr(from_disk, name) == getattr(from_parquet, name)
    assert from_csv.train[0] == Example(text="story 0 about things", label=0)


@pytest.mark.parametrize(("labels", "settings", "expected"), [
    ("1,2,5", {"first_label_id": 1}, "label '5' (line 3) is not one of label_names (World, "
     "Sports, Business, Sci/Tech) nor a class id 1..4"),
    ("World,Sports,2", {"label_names": ("World", "2")}, "label_names: '2' is an integer; with "
     "label_names, integer labels are class ids (label 0 is 'World'), so name every class with "
     "a word"),
    ("World,Sports ,Sci/Tech", {}, None),
])
def test_label_names_accept_names_and_ids_only(tmp_path: Path, labels: str, settings: dict,
                                               expected: str | None) -> None:
    path = _write(tmp_path / "d.jsonl", "".join(
        json.dumps({"text": f"t{i}", "label": lab}) + "\n"
        for i, lab in enumerate(labels.split(",") * 4)))
    cfg = DataConfig(**{"task": "text-file", "train_file": path, "label_names": tuple(AG),
                        **settings})
    if expected is None:
        s = load_task(cfg)
        assert s.label_names == tuple(AG)
        assert sorted({e.label for e in s.train + s.validation + s.test}) == [0, 1, 3]
        return
    with pytest.raises(DataError) as e:
        load_task(cfg)
    assert str(e.value).endswith(expected)


def test_label_names_is_one_setting_for_cli_specs_and_api() -> None:
    cfg = Config.from_dict({"label_names": "World, Sports", "first_label_id": 1})
    assert cfg.data.label_names == ("World", "Sports")
    assert cfg.to_dict()["label_names"] == ["World", "Sports"]
    with pytest.raises(ConfigError, match=r"first_label_id = -1: allowed: \[0, "):
        Config.of(first_label_id=-1)
    with pytest.raises(ConfigError) as e:
        Config.of(first_label_id=1)
    assert e.value.problems == ["first_label_id = 1: numbers label_names; set label_names too "
                                "(or leave first_label_id at 0)"]


# ---- classes in every split, and the notes naming the subset -----------------------------------
def test_a_subset_left_with_one_class_is_refused() -> None:
    with pytest.raises(DataError) as e:
        load_task(DataConfig(task="bbc-news", max_eval_samples=1))
    assert str(e.value).startswith("bbc-news: the validation split after carving and "
                                   "max_eval_samples has only 1 class ('")


def test_the_unstratified_note_names_the_subset(tmp_path: Path) -> None:
    train = _write(tmp_path / "t.csv", "text,label\n" + "".join(
        f"t{i},{'abcd'[i % 4]}\n" for i in range(40)))
    val = _write(tmp_path / "v.csv", "text,label\n" + "".join(
        f"v{i},{'abcd'[i % 4]}\n" for i in range(12)))
    s = load_task(DataConfig(task="text-file", train_file=train, validation_file=val,
                             max_eval_samples=3))
    assert len(s.validation) == 3
    assert [n.split(":")[0] for n in s.unstratified] == ["validation subset (max_eval_samples)"]


# ---- macro averages over the classes present ---------------------------------------------------
def test_a_class_absent_from_gold_and_predictions_is_not_averaged() -> None:
    m = classification_metrics([0, 0, 1, 1], [0, 1, 1, 1], ("a", "b", "c"))
    # a: p 1 r 1/2 -> 2/3; b: p 2/3 r 1 -> 4/5; c absent from both: not averaged
    assert m["f1_macro"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert m["recall_macro"] == pytest.approx(0.75)
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    value, psi = macro_f1_influence(np.array([0, 1, 1, 1]), np.array([0, 0, 1, 1]), 3)
    assert value == pytest.approx(m["f1_macro"])
    assert psi.mean() == pytest.approx(0.0, abs=1e-12)
    both = classification_metrics([0, 1], [2, 1], ("a", "b", "c"))  # c predicted: it counts
    assert both["f1_macro"] == pytest.approx((0 + 1 + 0) / 3)


# ---- entities cut by max_length ----------------------------------------------------------------
NAMES = ("O", "B-LOC", "I-LOC", "B-PER", "I-PER")


def test_words_cut_off_are_scored_as_missed_and_counted() -> None:
    full = [(3, 4, 0, 1), (1, 0), (0, 3, 4, 0, 1, 2), (1, 0, 3)]
    seen = [[0, 1, 2], [0, 1], [0, 1], [0, 2]]  # 1, 3: cut; 4: word 1 has no word piece
    preds = [[3, 4, 0], [1, 0], [0, 3], [1, 3]]
    confs = [[0.9] * 3, [0.9] * 2, [0.9] * 2, [0.8, 0.7]]
    p, g, c, cut = restore_cut_words(preds, confs, list(zip(full, seen, strict=True)), 0, NAMES)
    assert g == [list(t) for t in full]
    assert p == [[3, 4, 0, 0], [1, 0], [0, 3, 0, 0, 0, 0], [1, 0, 3]]
    assert c[2] == [0.9, 0.9, 0.0, 0.0, 0.0, 0.0] and c[3] == [0.8, 0.0, 0.7]
    assert cut == 3  # the cut B-LOC, the PER cut in half, the LOC past the end
    assert truncation_note([{"truncated_entities": 3}, {"truncated_entities": 0}]) == (
        "; ⚠ 3 test entities cut off by max_length (scored as missed)")


def test_scored_words_skip_cut_words_and_words_without_pieces() -> None:
    from bertft.config import TokenConfig
    from bertft.features import scored_words
    from bertft.models import load_tokenizer

    tok = load_tokenizer(Config.of(model="tiny-bert").model)
    ex = Example(tokens=("john", "\u200b", "lives") + ("in",) * 10, tags=(3,) + (0,) * 12)
    [(tags, seen)] = scored_words((ex,), tok, TokenConfig(max_length=8))
    assert tags == ex.tags
    assert seen == [0, 2, 3, 4, 5, 6]  # [CLS] + 6 first pieces + [SEP]; no piece for U+200B


def test_recall_counts_entities_past_max_length() -> None:
    from bertft.train import fit

    words = ["john", "lives", "in", "paris"] + ["and", "so", "on"] * 6 + ["rome"]
    tags = (3, 0, 0, 1) + (0,) * 18 + (1,)
    rows = tuple(Example(tokens=tuple(words), tags=tags) for _ in range(12))
    splits = Splits("toyner", "ner", NAMES, rows[:8], rows[8:10], rows[10:], "generated")
    result = fit(Config.of(model="tiny-bert", max_length=16, epochs=1, batch_size=4,
                           progress=False, save_model=False, device="cpu"), splits=splits)
    assert result.test["truncated_entities"] == 2  # 'rome' in each of the 2 test sentences
    assert result.test["recall"] <= 2 / 3  # 3 gold entities a sentence, 1 never seen


def test_the_report_header_names_the_entities_cut(tmp_path: Path) -> None:
    import dataclasses

    from bertft.report import load_results, render_markdown

    fixtures = Path(__file__).parent / "fixtures" / "report" / "results" / "ner_freeze"
    results, _ = load_results(fixtures)
    cut = [dataclasses.replace(r, test={**r.test, "truncated_entities": 7}) for r in results]
    sizes = next(line for line in render_markdown(cut, [], tmp_path).splitlines()
                 if line.startswith("- **Data sizes:**"))
    assert sizes.endswith("; ⚠ 7 test entities cut off by max_length (scored as missed)")
    plain = render_markdown(results, [], tmp_path)
    assert "cut off by max_length" not in plain
