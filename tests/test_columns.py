"""The results table's columns are declared once (bertft.report.columns): the export's columns,
the markdown headers and their cells all come from that list, and `aggregate` refuses a key the
list does not declare instead of letting pandas drop it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bertft.report import table
from bertft.report.columns import View, columns, columns_of, shown
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


def test_aggregate_refuses_a_key_that_no_column_declares(monkeypatch):
    results, _ = load_results(next(p for p in RESULTS.iterdir() if p.is_dir()))
    original = table._comparison_row
    monkeypatch.setattr(table, "_comparison_row",
                        lambda c, is_base: {**original(c, is_base), "undeclared": 1})
    with pytest.raises(ValueError, match=r"not in report.columns: \['undeclared'\]"):
        table.aggregate(results)
