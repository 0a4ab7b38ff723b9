"""The results table's columns are declared once (bertft.report.columns): the export's columns,
their values, the markdown headers and their cells all come from that list."""

from __future__ import annotations

from pathlib import Path

import pytest

from bertft.report import table
from bertft.report.columns import Column, View, columns, columns_of, shown
from bertft.report.load import load_results

RESULTS = Path(__file__).resolve().parent / "fixtures" / "report" / "results"


def test_export_columns_follow_the_declaration_and_depend_on_the_kind():
    cls = columns("classification", ("head_lr",))
    assert cls[:4] == ["arm", "head_lr", "baseline", "best"]
    assert cls[4:8] == ["val_f1_macro_mean", "val_f1_macro_ci", "val_accuracy_mean",
                        "val_accuracy_ci"]
    assert "val_f1_mean" in columns("ner", ()) and "val_f1_macro_mean" not in columns("ner", ())
    assert len(cls) == len(set(cls))  # no column declared twice


def test_markdown_headers_and_cells_come_from_the_same_columns():
    view = View({"a": {"head_lr": 0.001}}, expected=3, split="test")
    headers, cols = shown("classification", ("head_lr",), view)
    assert headers == ["head_lr", "Val F1 (macro)", "Val accuracy", "Test F1 (macro)",
                       "Test accuracy", "Seeds", "Best epoch", "Train time (s)", "Samples/s",
                       "Tokens/s", "Peak memory (MB)", "Verdict",
                       "Δ test F1 (macro) (points) [interval]", "Adjusted p", "Seeds needed"]
    assert all(c.cell is not None for c in cols)
    # without axes the arm id is the first shown column
    assert shown("ner", (), view)[0][0] == "arm"
    assert [c.header for c in columns_of("ner", ()) if c.keys == ("arm",)] == ["arm"]


def test_every_row_value_comes_from_its_column_and_a_wrong_count_is_refused(monkeypatch):
    results, _ = load_results(next(p for p in RESULTS.iterdir() if p.is_dir()))
    df = table.aggregate(results)
    spec = results[0].spec
    assert list(df.columns) == columns(results[0].kind, spec.axes)
    assert df["verdict"].tolist().count("baseline") == 1
    broken = [Column(c.keys, (lambda a, f: (0,)) if c.keys == ("verdict", "note") else c.source,
                     c.header, c.cell) for c in columns_of(results[0].kind, spec.axes)]
    monkeypatch.setattr(table, "columns_of", lambda kind, axes: broken)
    with pytest.raises(ValueError, match=r"column \('verdict', 'note'\) gave 1 values for 2 keys"):
        table.aggregate(results)
