"""Property-based tests (hypothesis) of the readers and the label mapping (issue 22 item 7):
random rows, orders, label spellings (NFC/NFD, surrounding whitespace), formats and nulls
come back as the same (text, label) pairs, or as one DataError."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bertft.config import DataConfig
from bertft.data import load_task, parse_conll
from bertft.data.labels import declared_names, label_text
from bertft.errors import DataError

datasets = pytest.importorskip("datasets")

FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
NAMES = ["café", "neg", "pos", "Sci/Tech", "ñandú"]
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1,
               max_size=12).filter(lambda t: t.strip() and label_text(t) == t)


def spelled(name: str) -> st.SearchStrategy[str]:
    """One of the ways a user's file may spell a label: NFC or NFD, padded with spaces."""
    return st.tuples(st.sampled_from(["NFC", "NFD"]), st.sampled_from(["", " ", "  "]),
                     st.sampled_from(["", " ", "\t"])).map(
        lambda f: f[1] + unicodedata.normalize(f[0], name) + f[2])


ROWS = st.lists(st.tuples(TEXT, st.sampled_from(NAMES)), min_size=2, max_size=30)


def write(path: Path, fmt: str, rows: list[tuple[str | None, str | None]]) -> None:
    if fmt == "jsonl":
        path.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows),
                        encoding="utf-8")
        return
    out = io.StringIO()
    delimiter = "," if fmt == "csv" else "\t"
    quoting = csv.QUOTE_MINIMAL if fmt == "csv" else csv.QUOTE_NONE
    w = csv.writer(out, delimiter=delimiter, quoting=quoting, escapechar=None,
                   lineterminator="\n")
    w.writerow(["text", "label"])
    w.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


def pairs(splits) -> Counter:
    return Counter((e.text, splits.label_names[e.label])
                   for name in ("train", "validation", "test") for e in getattr(splits, name))


@FAST
@given(rows=ROWS, fmt=st.sampled_from(["csv", "tsv", "jsonl"]), data=st.data())
def test_a_file_reads_back_as_its_pairs_or_one_data_error(tmp_path_factory, rows, fmt,
                                                          data) -> None:
    if fmt == "tsv":
        rows = [(t, lab) for t, lab in rows if "\t" not in t and "\n" not in t
                and "\r" not in t and '"' not in t]
    if len(rows) < 2:
        return
    spellings = [(t, data.draw(spelled(lab))) for t, lab in rows]
    if fmt == "tsv":  # a TSV cell keeps its tab-free spelling only
        spellings = [(t, lab.replace("\t", " ")) for t, lab in spellings]
    path = tmp_path_factory.mktemp("f") / f"d.{fmt}"
    write(path, fmt, spellings)
    try:
        splits = load_task(DataConfig(task="text-file", train_file=str(path),
                                      validation_ratio=0.2, test_ratio=0.2))
    except DataError as e:
        assert "\n" not in str(e)
        return
    assert pairs(splits) == Counter(rows)
    assert splits.label_names == tuple(sorted({lab for _, lab in rows}))


@FAST
@given(rows=ROWS, where=st.integers(0, 29), column=st.sampled_from(["text", "label"]))
def test_a_null_anywhere_is_one_data_error_naming_its_line(tmp_path_factory, rows, where,
                                                           column) -> None:
    where %= len(rows)
    broken = [(None, lab) if i == where and column == "text" else
              (t, None) if i == where else (t, lab) for i, (t, lab) in enumerate(rows)]
    path = tmp_path_factory.mktemp("n") / "d.jsonl"
    write(path, "jsonl", broken)
    with pytest.raises(DataError) as e:
        load_task(DataConfig(task="text-file", train_file=str(path)))
    assert str(e.value).startswith(f"{path} line {where + 1}: column '{column}' is null")


def _split(rows: list[tuple[str, str]], own: list[str] | None) -> datasets.Dataset:
    """A split with its own ClassLabel names (ids through them), or plain string labels."""
    if own is None:
        return datasets.Dataset.from_dict({"text": [t for t, _ in rows],
                                           "label": [lab for _, lab in rows]})
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=own)})
    return datasets.Dataset.from_dict(
        {"text": [t for t, _ in rows], "label": [own.index(label_text(lab)) for _, lab in rows]},
        features=features)


@FAST
@given(train=ROWS, test=ROWS, data=st.data())
def test_every_split_maps_labels_by_name_whatever_its_classlabel_order(train, test,
                                                                       data) -> None:
    from bertft.data.hf import _classification

    names = sorted({lab for _, lab in train})
    test = [(t, lab) for t, lab in test if lab in names] or train[:1]
    kinds = [data.draw(st.sampled_from(["classlabel", "strings"])) for _ in range(2)]
    orders = [data.draw(st.permutations(names)) for _ in range(2)]
    spelled_test = [(t, data.draw(spelled(lab))) for t, lab in test]
    chosen = [_split(train, list(orders[0]) if kinds[0] == "classlabel" else None), None,
              _split(spelled_test, list(orders[1]) if kinds[1] == "classlabel" else None)]
    raw = _classification(chosen, DataConfig(task="hf-dataset", dataset="x"), "d", "d")
    expected = tuple(orders[0]) if kinds[0] == "classlabel" else tuple(sorted(names))
    assert raw.label_names == expected
    assert [(e.text, raw.label_names[e.label]) for e in raw.test] == test
    assert [(e.text, raw.label_names[e.label]) for e in raw.train] == train


@FAST
@given(names=st.lists(st.sampled_from(NAMES).flatmap(spelled), min_size=1, max_size=6))
def test_declared_names_are_normalised_or_refused_when_two_collapse(names) -> None:
    distinct = {label_text(n) for n in names}
    if len(distinct) < len(names):
        with pytest.raises(DataError, match="are one name once Unicode-normalised"):
            declared_names(names, "x")
    else:
        assert declared_names(names, "x") == tuple(label_text(n) for n in names)


TOKEN = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Z")), min_size=1,
                max_size=6).filter(lambda t: t.split() == [t] and t != "-DOCSTART-")
TAG = st.sampled_from(["O", "B-PER", "I-PER", "B-LOC"])
SENTENCES = st.lists(st.lists(st.tuples(TOKEN, TAG), min_size=1, max_size=5), min_size=1,
                     max_size=5)


@FAST
@given(sentences=SENTENCES, sep=st.sampled_from([" ", "\t", "  ", " \t"]), data=st.data())
def test_conll_reads_back_or_refuses_a_line_of_another_width(sentences, sep, data) -> None:
    lines = [[f"{tok}{sep}{tag}" for tok, tag in s] for s in sentences]
    extra = data.draw(st.booleans())
    if extra:
        i = data.draw(st.integers(0, len(lines) - 1))
        j = data.draw(st.integers(0, len(lines[i]) - 1))
        tok, tag = sentences[i][j]
        lines[i][j] = f"{tok}{sep}x{sep}{tag}"
    text = "\n\n".join("\n".join(s) for s in lines) + "\n"
    if extra and sum(len(s) for s in lines) > 1:
        with pytest.raises(DataError, match="columns, but line 1 has"):
            parse_conll(text, Path("t.conll"))
        return
    got = parse_conll(text, Path("t.conll"))
    assert [list(toks) for toks, _ in got] == [[tok for tok, _ in s] for s in sentences]
