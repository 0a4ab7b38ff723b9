"""The `hf-dataset` / `hf-dataset-ner` tasks: any `datasets` dataset as a task.

`cfg.dataset` is a local folder written by `save_to_disk`, a local folder of csv/json/parquet
files (split names from the file names, as `datasets.load_dataset(folder)` infers them), or a
Hugging Face Hub id. The splits named by `train_split`/`validation_split`/`test_split` are read
into `Example`s; a validation or test split the dataset lacks is carved from train by
`load_task` (only when its name is the default; a split named on purpose must exist).

Labels: `label_names` when set, else train's `ClassLabel` names, else the sorted distinct
training labels (as the text-file task). Every split's labels are read as names (a ClassLabel
id through that split's own names) and mapped into that one space (`bertft.data.labels`), so
splits whose ClassLabels list the names in other orders, or that hold strings, agree. Nulls
(a label, a text, a token, a tag list) are refused with the row. NER tags:
`Sequence(ClassLabel)` ids or strings, IOB1 or BIO (converted to BIO); label names as for
CoNLL files.
"""

from __future__ import annotations

import contextlib
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bertft.config import FIELDS, DataConfig
from bertft.data.labels import (
    LabelSpace, declared_names, inferred_space, listed_space, named_space,
)
from bertft.data.readers import (
    _BIO_TAG, entity_types, iob1_to_bio, ner_label_names, pair_field, sentences_to_examples,
    text_field,
)
from bertft.data.types import Example, Kind, RawSplits, portable_sources
from bertft.errors import DataError
from bertft.kinds import kind_of

ROLES = ("train_split", "validation_split", "test_split")


def load_hf_dataset(cfg: DataConfig, kind: Kind) -> RawSplits:
    """Raw splits of `cfg.dataset` for a classification or NER task."""
    task = kind_of(kind).hf_task
    if not cfg.dataset:
        raise DataError(f"task {task} needs dataset (a Hub id, a folder of csv/json/parquet "
                        "files, or a folder written by save_to_disk)")
    splits, source = open_dataset(cfg.dataset, cfg.dataset_config)
    source = portable_sources(source) or source  # never this machine's absolute path
    name = f"dataset '{cfg.dataset}'"
    chosen = _choose_splits(splits, cfg, name)
    if kind_of(kind).token_level:
        return _ner(chosen, cfg, name, source)
    return _classification(chosen, cfg, name, source)


def open_dataset(dataset: str, config_name: str | None) -> tuple[dict[str, Any], str]:
    """{split name: datasets.Dataset} and a source description, or one DataError."""
    with _bars_only_on_a_terminal():
        return _open(dataset, config_name)


@contextlib.contextmanager
def _bars_only_on_a_terminal() -> Iterator[None]:
    """datasets' 'Generating train split' bars, only where a terminal shows them."""
    import datasets

    hide = datasets.is_progress_bar_enabled() and not sys.stderr.isatty()
    if hide:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if hide:
            datasets.enable_progress_bars()


def _open(dataset: str, config_name: str | None) -> tuple[dict[str, Any], str]:
    import datasets

    path = Path(dataset).expanduser()
    if path.is_dir():
        try:
            if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
                loaded = datasets.load_from_disk(str(path))
            else:
                loaded = datasets.load_dataset(str(path), config_name)
        except Exception as e:  # noqa: BLE001 - any reader failure: name the folder
            raise DataError(f"dataset '{dataset}': cannot read the folder ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:300]}); expected csv/json/parquet "
                            "files or a folder written by save_to_disk") from None
        return _as_dict(loaded), str(path)
    if path.exists() or dataset.startswith((".", "/", "~")) or "\\" in dataset:
        what = "is a file, not a folder" if path.exists() else "no such folder"
        raise DataError(f"dataset '{dataset}': {what}; expected a folder of csv/json/parquet "
                        "files, a folder written by save_to_disk, or a Hugging Face Hub id")
    why = hub_problem(dataset)
    if why is not None:
        raise DataError(f"dataset '{dataset}': cannot load from the Hugging Face Hub ({why}); "
                        "give a local folder (csv/json/parquet files or save_to_disk output)")
    try:
        return _as_dict(datasets.load_dataset(dataset, config_name)), f"hub:{dataset}" + (
            f"/{config_name}" if config_name else "")
    except Exception as e:  # noqa: BLE001 - unknown id, gated, missing config: one message
        raise DataError(f"dataset '{dataset}': cannot load from the Hugging Face Hub "
                        f"({type(e).__name__}: {str(e).splitlines()[0][:300]})") from None


def hub_problem(name: str) -> str | None:
    """Why the Hub dataset `name` cannot load here, found in seconds; None when it may."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return None  # datasets reads its cache, or fails at once
    url = f"{constants.ENDPOINT}/api/datasets/{name}"
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=5).close()
    except urllib.error.HTTPError:
        return None  # the Hub answered; datasets names the problem (unknown id, gated)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return (f"the Hub at {constants.ENDPOINT} is unreachable: {reason}; set "
                "HF_HUB_OFFLINE=1 to use a copy in the local datasets cache")
    return None


def _as_dict(loaded: Any) -> dict[str, Any]:
    import datasets

    if isinstance(loaded, datasets.Dataset):
        return {"train": loaded}  # one table: the train split, the rest is carved
    return dict(loaded)


def _choose_splits(splits: dict[str, Any], cfg: DataConfig, name: str) -> list[Any]:
    """[train, validation or None, test or None]: a split missing under its default name is
    carved later; a split named on purpose must exist."""
    out = []
    for role in ROLES:
        split = getattr(cfg, role)
        if split in splits:
            out.append(splits[split])
        elif role == "train_split" or split != FIELDS[role].default:
            raise DataError(f"{name}: no split '{split}' ({role}); splits are: "
                            + ", ".join(sorted(splits)))
        else:
            out.append(None)
    return out


def _columns(ds: Any, wanted: list[str], name: str, split: str, hint: str = "") -> None:
    missing = [c for c in wanted if c not in ds.column_names]
    if missing:
        raise DataError(f"{name} split '{split}': no column '{missing[0]}'; columns are: "
                        + ", ".join(ds.column_names) + hint)


def _classification(chosen: list[Any], cfg: DataConfig, name: str, source: str) -> RawSplits:
    """Every split's labels are read as names (a ClassLabel's ids through that split's own
    names) and mapped into one label space: `label_names`, else train's ClassLabel names,
    else the sorted distinct training labels."""
    text_col, pair_col, label_col = cfg.text_column, cfg.text_pair_column, cfg.label_column
    wanted = [str(c) for c in (text_col, pair_col, label_col) if c is not None]
    hint = "; for NER data use task hf-dataset-ner" if cfg.tokens_column in (
        chosen[0].column_names) else ""
    tables: list[tuple[str, tuple[str, ...] | None, dict[str, list]] | None] = []
    for ds, role in zip(chosen, ROLES, strict=True):
        if ds is None:
            tables.append(None)
            continue
        split = getattr(cfg, role)
        _columns(ds, wanted, name, split, hint)
        feature = ds.features[label_col]
        _check_label_type(feature, name, split, str(label_col))
        own = None if type(feature).__name__ != "ClassLabel" else declared_names(
            feature.names, f"{name} split '{split}' ClassLabel of column '{label_col}'")
        tables.append((split, own, ds.select_columns(wanted).to_dict()))
    labels = [None if t is None else _label_texts(t, name, str(label_col)) for t in tables]
    space = _space(cfg, tables[0][1], labels[0], name)
    examples = [None if t is None else _examples(t, lab, cfg, name, space)
                for t, lab in zip(tables, labels, strict=True)]
    return RawSplits(space.names, examples[0], examples[1], examples[2], source)


def _space(cfg: DataConfig, train_names: tuple[str, ...] | None, train_labels: list[str],
           name: str) -> LabelSpace:
    if cfg.label_names:
        space = named_space(cfg.label_names, cfg.first_label_id)
        if train_names is not None and train_names != space.names:
            raise DataError(f"{name} split '{cfg.train_split}': its ClassLabel names the "
                            f"classes ({', '.join(train_names)}), label_names says "
                            f"({space.listed()}); remove label_names or make them agree")
        return space
    if train_names is not None:
        return listed_space(train_names, name)
    return inferred_space(train_labels)


def _check_label_type(feature: Any, name: str, split: str, column: str) -> None:
    kind = type(feature).__name__
    dtype = getattr(feature, "dtype", "")
    ok = kind == "ClassLabel" or (kind == "Value" and (dtype.startswith(("int", "uint"))
                                                        or dtype in ("string", "large_string")))
    if not ok:
        found = dtype if kind == "Value" else kind
        raise DataError(f"{name} split '{split}': label column '{column}' holds {found} values; "
                        "classification needs a ClassLabel, integer or string column "
                        "(regression is not supported)")


def _label_texts(table: tuple[str, tuple[str, ...] | None, dict[str, list]], name: str,
                 column: str) -> list[str]:
    """Each row's label as a name: a ClassLabel id through the split's own names."""
    split, own, cols = table
    out = []
    for i, label in enumerate(cols[column]):
        where = f"{name} split '{split}' row {i + 1}"
        if label is None:
            raise DataError(f"{where}: column '{column}' is null (no value); every example "
                            "needs a label")
        if own is None:
            out.append(str(label))
        elif 0 <= int(label) < len(own):
            out.append(own[int(label)])
        else:
            raise DataError(f"{where}: label {label!r} is not a class id 0..{len(own) - 1} "
                            f"({', '.join(own)}); hidden (-1) test labels? name another "
                            "split with test_split")
    return out


def _examples(table: tuple[str, tuple[str, ...] | None, dict[str, list]], labels: list[str],
              cfg: DataConfig, name: str, space: LabelSpace
              ) -> tuple[Example, ...]:
    split, _, cols = table
    pair_col = cfg.text_pair_column
    out = []
    for i, label in enumerate(labels):
        where = f"{name} split '{split}' row {i + 1}"
        text = text_field(cols[cfg.text_column][i], where, cfg.text_column, cfg.drop_empty)
        pair = None if pair_col is None else pair_field(cols[pair_col][i], where, pair_col)
        label_id = space.id_of(label)
        if label_id is None:
            known = "label_names" if cfg.label_names else "the training data"
            raise DataError(f"{where}: label {label!r} does not occur in {known}; "
                            f"training labels: {space.listed()}")
        out.append(Example(text=text, text_pair=pair, label=label_id))
    return tuple(out)


def _ner(chosen: list[Any], cfg: DataConfig, name: str, source: str) -> RawSplits:
    tok_col, tag_col = cfg.tokens_column, cfg.tags_column
    sentences: list[list | None] = []
    for ds, role in zip(chosen, ROLES, strict=True):
        if ds is None:
            sentences.append(None)
            continue
        split = getattr(cfg, role)
        _columns(ds, [tok_col, tag_col], name, split)
        inner = getattr(ds.features[tag_col], "feature", None)
        tag_names = inner.names if type(inner).__name__ == "ClassLabel" else None
        cols = ds.select_columns([tok_col, tag_col]).to_dict()
        where = f"{name} split '{split}' row "
        sentences.append([_sentence(toks, tags, tag_names, f"{where}{i + 1}", (tok_col, tag_col))
                          for i, (toks, tags) in enumerate(zip(cols[tok_col], cols[tag_col],
                                                               strict=True))
                          if toks is None or toks])
    types = entity_types(sentences[0])
    for rows, role in zip(sentences[1:], ROLES[1:], strict=True):
        extra = entity_types(rows or []) - types
        if extra:
            raise DataError(f"{name} split '{getattr(cfg, role)}': entity type "
                            f"'{sorted(extra)[0]}' does not occur in the training data; "
                            f"training types: {', '.join(sorted(types)) or '(none)'}")
    names = ner_label_names(types)
    out = [None if s is None else sentences_to_examples(s, names) for s in sentences]
    return RawSplits(names, out[0], out[1], out[2], source)


def _sentence(tokens: list | None, tags: list | None, tag_names: list[str] | None, where: str,
              columns: tuple[str, str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    for values, column in ((tokens, columns[0]), (tags, columns[1])):
        if values is None:
            raise DataError(f"{where}: column '{column}' is null (no list); every sentence "
                            "needs its tokens and one tag per token")
        if (j := next((j for j, v in enumerate(values) if v is None), None)) is not None:
            raise DataError(f"{where}: item {j + 1} of column '{column}' is null (no value); "
                            "every token needs its text and its tag")
    assert tokens is not None and tags is not None
    if len(tokens) != len(tags):
        raise DataError(f"{where}: {len(tokens)} tokens but {len(tags)} tags")
    strings = [tag_names[t] if tag_names is not None else str(t) for t in tags]
    for tag in strings:
        if not _BIO_TAG.fullmatch(tag):
            raise DataError(f"{where}: tag '{tag}' is not a valid BIO/IOB tag (allowed: O, "
                            "B-<type>, I-<type>)")
    return tuple(str(t) for t in tokens), tuple(iob1_to_bio(strings))
