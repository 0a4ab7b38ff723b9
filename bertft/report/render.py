"""`bertft report`: every spec folder of a results directory to a report, plus the index."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

from tabulate import tabulate

from bertft.errors import BertftError
from bertft.report.load import (
    current_trials, load_results, newest_code_version, only_current, result_files,
)
from bertft.report.markdown import render_index, render_report
from bertft.report.missing import Missing, missing_trials, note_missing
from bertft.report.table import aggregate
from bertft.rundir import finite_json

FORMATS = ("md", "csv", "json")


def parse_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise BertftError(f"report format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return fmt


def spec_dirs(results_dir: Path) -> list[Path]:
    """Sub-folders holding at least one result file, sorted by name."""
    if not results_dir.is_dir():
        return []
    return sorted(d for d in results_dir.iterdir()
                  if d.is_dir() and not d.name.startswith(".") and result_files(d))


def render_all(results_dir: Path, out_dir: Path, fmt: str = "md") -> list[Path]:
    """Render one report per spec folder of `results_dir` into `out_dir`; return the files
    written. `md`: `<spec>.md`, its PNGs and `README.md` (the index); `csv` / `json`: the
    aggregated table of each spec (`aggregate`) as `<spec>.csv` / `<spec>.json`. Results that
    match none of the spec's current trials (`only_current`) are left out; a markdown report
    says how many."""
    fmt = parse_format(fmt)
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    dirs = spec_dirs(results_dir)
    if not dirs:
        raise BertftError(f"{results_dir}: no results found; run `tox -e ablations` or "
                          "`bertft ablate` first")
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    entries = []
    missing: dict[str, Missing] = {}  # declared trials not stored, per spec folder
    for spec_dir in dirs:
        results, unreadable = load_results(spec_dir)
        current = current_trials(spec_dir)
        results, skipped = only_current(results, current)
        results, stale = newest_code_version(results)
        name = spec_dir.name
        missing[name] = missing_trials(results, current)
        if stale:
            warnings.warn(f"{spec_dir}: {stale}", stacklevel=2)
        if fmt == "md":
            text, pngs = render_report(results, unreadable, out_dir, name)
            text = note_missing(note_skipped(text, skipped, stale), missing[name])
            path = out_dir / f"{name}.md"
            path.write_text(text, encoding="utf-8")
            written += [path, *pngs]
            entries.append((name, results, unreadable))
            continue
        df = aggregate(results)
        path = out_dir / f"{name}.{fmt}"
        if fmt == "csv":
            df.to_csv(path, index=False, float_format="%.6g")
        else:
            records = finite_json([{k: _plain(v) for k, v in row.items()}
                                   for row in df.to_dict(orient="records")])
            path.write_text(json.dumps(records, indent=2, allow_nan=False) + "\n",
                            encoding="utf-8")
        written.append(path)
    if fmt == "md":
        index = out_dir / "README.md"
        old = index.read_text(encoding="utf-8") if index.is_file() else ""
        keep = {p.stem for p in out_dir.glob("*.md")}  # reports still in the folder
        index.write_text(merge_index(render_index(entries, missing), old, keep), encoding="utf-8")
        written.append(index)
    return written


_ROW = re.compile(r"^\|\s*\[([^\]]+)\]\(")  # an index row: | [spec](spec.md) | ...


def _table_rows(text: str) -> tuple[int, int, list[list[str]]]:
    """Where the index table starts and ends in `text` (line numbers) and its body rows as
    cells, kept as written (already escaped for markdown)."""
    lines = text.split("\n")
    start = next((i for i, ln in enumerate(lines) if ln.startswith("|")), len(lines))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")),
               len(lines))
    rows = [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]]
            for ln in lines[start + 2:end] if _ROW.match(ln)]
    return start, end, rows


def merge_index(fresh: str, old: str, keep: set[str]) -> str:
    """The freshly rendered index plus the rows of the previous index (`old`) for specs not
    rendered now whose report is still in the folder (`keep`): rendering some specs keeps the
    others' entries; the index is never truncated to the specs of one run."""
    start, end, rows = _table_rows(fresh)
    if not old or start == end:
        return fresh
    names = {_ROW.match(f"| {r[0]} |").group(1) for r in rows}
    _, _, old_rows = _table_rows(old)
    width = len(rows[0]) if rows else None
    for row in old_rows:
        name = _ROW.match(f"| {row[0]} |").group(1)
        if name not in names and name in keep and len(row) == (width or len(row)):
            rows.append(row)
            names.add(name)
    lines = fresh.split("\n")
    headers = [c.strip() for c in re.split(r"(?<!\\)\|", lines[start])[1:-1]]
    rows.sort(key=lambda r: _ROW.match(f"| {r[0]} |").group(1))
    table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    return "\n".join([*lines[:start], table, *lines[end:]])


def note_skipped(text: str, skipped: int, stale: str = "") -> str:
    """The report with a line saying how many stored results it leaves out, and one for results
    of older training code (`stale`, from `newest_code_version`), under the header's trial
    counts, else under the title."""
    noun = "result" if skipped == 1 else "results"
    notes = [f"- **Skipped:** {skipped} stored {noun} of trials no longer in the spec or stored "
             "under other settings or seed roles (kept on disk, not in this report)"
             ] if skipped else []
    notes += [f"- **Older training code:** {stale}"] if stale else []
    if not notes:
        return text
    lines = text.split("\n")
    at = next((i + 1 for i, row in enumerate(lines) if row.startswith("- **Trials:**")), None)
    if at is None:
        lines[2:2] = [*notes, ""]
    else:
        lines[at:at] = notes
    return "\n".join(lines)


def _plain(value: object) -> object:
    """numpy scalars to Python ones for json; other objects as text."""
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    if value is None or isinstance(value, str | int | float | list | dict):
        return value
    return str(value)
