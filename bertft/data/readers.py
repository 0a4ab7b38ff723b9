"""File readers: CSV / TSV / JSON Lines tables of labelled texts, and CoNLL columns.

Every problem raises `DataError` naming the file, the row or line, the column and what is
allowed.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bertft.data.labels import INT_LABEL, LabelSpace, label_text
from bertft.data.types import Example
from bertft.errors import DataError

FILE_FORMATS = ("csv", "tsv", "jsonl")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl",
               ".json": "jsonl", ".ndjson": "jsonl"}
_INT_LABEL = INT_LABEL
_BIO_TAG = re.compile(r"O|[BI]-\S+")
_COLUMN_SEP = re.compile(r"[ \t]+")
_DOCSTART = "-DOCSTART-"


# --- files -----------------------------------------------------------------------------------
def read_text(path: Path, encoding: str, missing: str) -> str:
    """The decoded file; `missing` is the DataError message when the file does not exist."""
    if not path.is_file():
        raise DataError(missing)
    data = path.read_bytes()
    try:
        text = data.decode(encoding)
    except LookupError:
        raise DataError(f"{path}: unknown encoding '{encoding}'; use a Python codec name "
                        "such as utf-8, utf-16 or latin-1") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: cannot decode as {encoding} at byte {e.start}; set encoding "
                        "(e.g. encoding=latin-1)") from None
    return text.removeprefix("\ufeff")


def read_user_file(task: str, path: str, role: str, encoding: str) -> str:
    return read_text(Path(path), encoding, f"{task}: file not found: {path} ({role})")


@dataclass(frozen=True)
class _Record:
    """One row of a table: `where` locates it for messages ("row 3" or "line 3")."""

    where: str
    values: dict[str, Any]


def file_format(path: Path, fmt: str) -> str:
    if fmt != "auto":
        if fmt not in FILE_FORMATS:
            raise DataError(f"{path}: unknown file_format '{fmt}'; allowed: auto, "
                            + ", ".join(FILE_FORMATS))
        return fmt
    ext = path.suffix.lower()
    if ext not in _EXTENSIONS:
        raise DataError(f"{path}: cannot tell the file format from the extension "
                        f"'{ext or '(none)'}'; use .csv, .tsv or .jsonl, or set file_format "
                        "to csv, tsv or jsonl")
    return _EXTENSIONS[ext]


def _read_delimited(text: str, path: Path, delimiter: str, header: bool = True
                    ) -> list[_Record]:
    """CSV (RFC 4180 quoting) or TSV (no quoting: texts may hold quotes). Rows count from 1
    after the header; blank lines are skipped. Without a header line (`header=False`) columns
    are keyed by their 0-based index and every row must have as many fields as the first."""
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # long documents are fine
    stream = io.StringIO(text, newline="")
    if delimiter == "\t":
        reader = csv.reader(stream, delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(stream, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
    try:
        names: list[Any] | None = next(reader, None) if header else None
        if header and not names:
            raise DataError(f"{path}: empty file (expected a header line, then one row per "
                            "example)")
        if names and (twice := next((c for i, c in enumerate(names) if c in names[:i]), None)):
            raise DataError(f"{path}: the header names column '{twice}' twice; every column "
                            "needs its own name")
        records: list[_Record] = []
        for row in reader:
            if not row:
                continue
            names = names or list(range(len(row)))
            where = f"row {len(records) + 1}"
            if len(row) != len(names):
                like = "the header" if header else "the first row"
                raise DataError(f"{path} {where} (line {reader.line_num}): expected "
                                f"{len(names)} fields like {like}, found {len(row)}")
            records.append(_Record(where, dict(zip(names, row, strict=True))))
    except csv.Error as e:
        kind = "TSV" if delimiter == "\t" else "CSV"
        raise DataError(f"{path} line {reader.line_num}: malformed {kind} ({e})") from None
    return records


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are distinct (json keeps the last of a repeated key)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _read_jsonl(text: str, path: Path) -> list[_Record]:
    """JSON Lines: one JSON object per line; blank lines are skipped."""
    records = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line, object_pairs_hook=_unique_keys)
        except _DuplicateKey as e:
            raise DataError(f"{path} line {number}: key '{e}' appears twice in the object; "
                            "every key needs its own name") from None
        except json.JSONDecodeError as e:
            raise DataError(f"{path} line {number}: not valid JSON ({e.msg}); expected one JSON "
                            "object per line (JSON Lines)") from None
        if not isinstance(value, dict):
            raise DataError(f"{path} line {number}: expected a JSON object, found "
                            f"{type(value).__name__}")
        records.append(_Record(f"line {number}", value))
    return records


def read_table(path: Path, fmt: str, encoding: str, missing: str, header: bool = True
               ) -> tuple[str, list[_Record]]:
    """Read a CSV, TSV or JSONL file; returns the resolved format and its records."""
    text = read_text(path, encoding, missing)
    fmt = file_format(path, fmt)
    if fmt == "jsonl":
        records = _read_jsonl(text, path)
    else:
        records = _read_delimited(text, path, "," if fmt == "csv" else "\t", header)
    if not records:
        raise DataError(f"{path}: no examples (the file holds no data rows)")
    return fmt, records


# --- classification tables -------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    where: str
    text: str
    text_pair: str | None
    label: str  # label as text; mapped to an id once the label set is known


def _check_columns(path: Path, record: _Record, columns: Sequence[str | int], fmt: str) -> None:
    for column in columns:
        if column in record.values:
            continue
        if isinstance(column, int):
            raise DataError(f"{path}: no column {column}; the rows have {len(record.values)} "
                            f"columns (indices 0..{len(record.values) - 1})")
        where = f" {record.where}" if fmt == "jsonl" else ""
        found = ", ".join(sorted(map(str, record.values)))
        hint = "" if fmt == "jsonl" or not _looks_like_data(record.values) else (
            "; the header line looks like data: if the file has no header line, set "
            "header = false and give 0-based column indices (e.g. text_column = 1, "
            "label_column = 0)")
        raise DataError(f"{path}{where}: no column '{column}'; columns are: {found}{hint}")


def _looks_like_data(header: Iterable[Any]) -> bool:
    """A header cell that is a number or a sentence (4+ words) suggests a headerless file."""
    return any(_INT_LABEL.fullmatch(str(c).strip()) or len(str(c).split()) >= 4
               for c in header)


def text_field(value: Any, where: str, column: Any, allow_empty: bool) -> str:
    """A text cell; `where` locates it for the message. A null (None) is an empty text when
    `allow_empty` (drop_empty drops it), else an error. Shared by the file readers and the
    `datasets` task."""
    if value is None and not allow_empty:
        raise DataError(f"{where}: column '{column}' is null (no value); fill it in or set "
                        "drop_empty=true to skip such rows")
    value = "" if value is None else value
    if not isinstance(value, str):
        raise DataError(f"{where}: column '{column}' must be text, found "
                        f"{type(value).__name__} {value!r}")
    if not value.strip() and not allow_empty:
        raise DataError(f"{where}: column '{column}' is empty; fill it in or set "
                        "drop_empty=true to skip such rows")
    return value


def pair_field(value: Any, where: str, column: Any) -> str:
    """The second text of a pair: may be empty, never null (a missing second text is not an
    empty one)."""
    if value is None:
        raise DataError(f"{where}: column '{column}' is null (no value); every example of a "
                        "text-pair task needs its second text (an empty string is allowed)")
    return text_field(value, where, column, allow_empty=True)


def _label_value(path: Path, record: _Record, column: str) -> str:
    value = record.values[column]
    if value is None:
        raise DataError(f"{path} {record.where}: column '{column}' is null (no value); every "
                        "example needs a label")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DataError(f"{path} {record.where}: label {value!r} in column '{column}' must be a "
                        "string or an integer")
    text = label_text(str(value))
    if not text:
        raise DataError(f"{path} {record.where}: column '{column}' is empty; every example "
                        "needs a label")
    return text


def read_labeled(path: Path, fmt: str, encoding: str, missing: str, text_column: str | int,
                 label_column: str | int, text_pair_column: str | int | None = None,
                 allow_empty: bool = False, header: bool = True) -> list[Row]:
    """Texts (and text pairs) with their labels as strings from a CSV/TSV/JSONL file.

    Empty texts are an error unless `allow_empty` (drop_empty drops them later). Without a
    header line the columns are 0-based indices."""
    fmt, records = read_table(path, fmt, encoding, missing, header)
    columns = [c for c in (text_column, text_pair_column, label_column) if c is not None]
    rows = []
    for i, record in enumerate(records):
        if fmt == "jsonl" or i == 0:
            _check_columns(path, record, columns, fmt)
        text = text_field(record.values[text_column], f"{path} {record.where}", text_column,
                          allow_empty)
        pair = (None if text_pair_column is None
                else pair_field(record.values[text_pair_column], f"{path} {record.where}",
                                text_pair_column))
        rows.append(Row(record.where, text, pair, _label_value(path, record, label_column)))
    if not header:
        _refuse_header_as_data(path, records, rows, text_column)
    return rows


_COLUMN_NAMES = {"label", "labels", "class", "category", "target", "sentiment", "topic",
                 "intent", "y", "tag", "gold"}


def _refuse_header_as_data(path: Path, records: list[_Record], rows: list[Row],
                           text_column: str | int) -> None:
    """With header = false, row 1 read as an example although it looks like a header line:
    its label occurs in no other row, and either the label is a usual column name, or every
    other label is an integer, or every cell of row 1 is one short word (a column name)."""
    first = rows[0].label
    if len(rows) < 2 or any(r.label == first for r in rows[1:]):
        return
    cells = [str(v) for v in records[0].values.values()]
    named = first.lower() in _COLUMN_NAMES or (
        all(_INT_LABEL.fullmatch(r.label) for r in rows[1:]) and not _INT_LABEL.fullmatch(first))
    wordy = all(re.fullmatch(r"[A-Za-z_][\w.-]{0,31}", c) for c in cells)
    if named or wordy:
        raise DataError(f"{path} row 1: label '{first}' occurs in no other row and row 1 looks "
                        f"like a header line ({', '.join(cells)}); the file has a header: set "
                        "header = true and name the columns")


def rows_to_examples(rows: Sequence[Row], space: LabelSpace, path: Path, unknown: str
                     ) -> tuple[Example, ...]:
    """Map labels to ids in `space`; `unknown` completes the message for a label not in it."""
    out = []
    for row in rows:
        label = space.id_of(row.label)
        if label is None:
            raise DataError(f"{path}: label '{row.label}' ({row.where}) {unknown}")
        out.append(Example(text=row.text, text_pair=row.text_pair, label=label))
    return tuple(out)


# --- CoNLL files -----------------------------------------------------------------------------
def iob1_to_bio(tags: Sequence[str]) -> list[str]:
    """Convert IOB1 tags to IOB2/BIO: an `I-X` not following `B-X`/`I-X` becomes `B-X`.

    BIO input comes back unchanged, so it is safe to apply to either scheme."""
    out: list[str] = []
    previous_type: str | None = None
    for tag in tags:
        if tag.startswith("I-") and previous_type != tag[2:]:
            tag = "B-" + tag[2:]
        out.append(tag)
        previous_type = None if tag == "O" else tag[2:]
    return out


def ner_label_names(types: Iterable[str]) -> tuple[str, ...]:
    """"O" first, then B-/I- of every entity type in sorted order."""
    return ("O", *(f"{p}-{t}" for t in sorted(set(types)) for p in ("B", "I")))


def _columns_needed(token_column: int, tag_column: int) -> int:
    """Fewest columns a line needs so that the token and tag columns exist and differ."""
    def need(i: int) -> int:
        return i + 1 if i >= 0 else -i
    if (token_column >= 0) != (tag_column >= 0):
        positive, negative = max(token_column, tag_column), min(token_column, tag_column)
        return max(2, positive + 1 - negative)
    return max(2, need(token_column), need(tag_column))


def parse_conll(text: str, path: Path, token_column: int = 0, tag_column: int = -1,
                allowed_types: tuple[set[str], str] | None = None,
                ) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Sentences as (tokens, BIO tags) from CoNLL-style text.

    Columns are separated by spaces or tabs; a whitespace-only line ends a sentence;
    `-DOCSTART-` lines are skipped. Tags may be IOB1 or BIO (converted to BIO).
    `allowed_types` = (entity types, message tail) rejects other entity types.
    """
    if token_column == tag_column:
        raise DataError(f"{path}: token_column and tag_column are both {token_column}; they "
                        "must name different columns")
    needed = _columns_needed(token_column, tag_column)
    width: tuple[int, int] | None = None  # (columns, line) of the file's first word line
    sentences: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    tokens: list[str] = []
    tags: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            if tokens:
                sentences.append((tuple(tokens), tuple(iob1_to_bio(tags))))
            tokens, tags = [], []
            continue
        columns = _COLUMN_SEP.split(line.strip(" \t\r\n\f\v"))
        if columns[0] == _DOCSTART:
            continue
        if len(columns) < needed:
            raise DataError(f"{path} line {number}: expected at least {needed} columns, "
                            f"found {len(columns)}")
        width = width or (len(columns), number)
        if len(columns) != width[0]:
            raise DataError(f"{path} line {number}: {len(columns)} columns, but line {width[1]} "
                            f"has {width[0]}; every word line needs the same columns (a token "
                            "holding a space, or a missing tag?)")
        tag = columns[tag_column]
        if not _BIO_TAG.fullmatch(tag):
            raise DataError(f"{path} line {number}: tag '{tag}' is not a valid BIO/IOB tag "
                            "(allowed: O, B-<type>, I-<type>)")
        if allowed_types is not None and tag != "O" and tag[2:] not in allowed_types[0]:
            raise DataError(f"{path} line {number}: entity type '{tag[2:]}' (tag '{tag}') "
                            f"{allowed_types[1]}")
        tokens.append(columns[token_column])
        tags.append(tag)
    if tokens:
        sentences.append((tuple(tokens), tuple(iob1_to_bio(tags))))
    if not sentences:
        raise DataError(f"{path}: no sentences found (expected one 'token ... tag' line per "
                        "word and a blank line between sentences)")
    return sentences


def entity_types(sentences: Iterable[tuple[tuple[str, ...], tuple[str, ...]]]) -> set[str]:
    return {tag[2:] for _, tags in sentences for tag in tags if tag != "O"}


def sentences_to_examples(sentences: Iterable[tuple[tuple[str, ...], tuple[str, ...]]],
                          names: Sequence[str]) -> tuple[Example, ...]:
    index = {name: i for i, name in enumerate(names)}
    return tuple(Example(tokens=tokens, tags=tuple(index[t] for t in tags))
                 for tokens, tags in sentences)
