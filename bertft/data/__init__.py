"""Datasets: file readers, a registry of tasks and their loaders, preprocessing and splits.

- `bertft.data.types`: `Example`, `Splits` (a task's final splits), `RawSplits` (a loader's).
- `bertft.data.readers`: CSV / TSV / JSON Lines tables and CoNLL columns.
- `bertft.data.labels`: label names (NFC, stripped) and the one label space of a task.
- `bertft.data.tasks`: `TASKS` (name -> kind, description, loader) and the loaders.
- `bertft.data.splits`: preprocessing, carving the missing splits, subsets, and `load_task`.

`load_task(cfg.data)` is the one entry point: it looks the task up in `TASKS`, runs its loader
(raw splits as the source ships them), preprocesses every split, carves the splits the source
lacks out of train, and finally subsets train (`max_train_samples`). Every random choice is
seeded by `data_seed` only, so all `seed`s of an ablation see identical data. Every problem with
the data raises `DataError` naming what is wrong, where (file, row or line, column) and what is
allowed.
"""

from bertft.data.labels import label_names_from, label_text
from bertft.data.readers import (
    FILE_FORMATS, entity_types, iob1_to_bio, ner_label_names, parse_conll,
    read_labeled, read_table, rows_to_examples, sentences_to_examples,
)
from bertft.data.splits import carve, clean_text, load_task, preprocess, subset
from bertft.data.tasks import (
    CONLL2003_LABELS, CONLL2003_TYPES, DATA_DIR_ENV, IMDB_LABELS, SST2_LABELS, TASKS, TaskSpec,
    load_bbc_news, load_conll2003, load_conll_file, load_imdb, load_sst2, load_text_file,
    load_wnut16, task_kind, task_spec,
)
from bertft.data.types import (
    SPLIT_NAMES, Example, Kind, RawSplits, Splits, portable_source, portable_sources,
    splits_nbytes,
)
from bertft.errors import DataError

__all__ = [
    "CONLL2003_LABELS", "CONLL2003_TYPES", "DATA_DIR_ENV", "FILE_FORMATS", "IMDB_LABELS",
    "SPLIT_NAMES", "SST2_LABELS", "TASKS", "DataError", "Example", "Kind", "RawSplits", "Splits",
    "TaskSpec", "carve", "clean_text", "entity_types", "iob1_to_bio", "label_names_from",
    "label_text", "load_bbc_news", "load_conll2003", "load_conll_file", "load_imdb", "load_sst2",
    "load_task", "load_text_file", "load_wnut16", "ner_label_names", "parse_conll",
    "portable_source", "portable_sources", "preprocess", "read_labeled", "read_table",
    "rows_to_examples", "sentences_to_examples", "splits_nbytes", "subset", "task_kind",
    "task_spec",
]
