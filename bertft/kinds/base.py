"""The task-kind type: the facts that differ between kinds of task (see `bertft.kinds`)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class TaskKind:
    """The facts that differ between task kinds."""

    name: str
    """The kind's name, as stored in results and run directories."""
    head_class: str
    """The BERT head class (`BertFor...`): what the unpadded and frozen-prefix paths reproduce."""
    auto_model_class: str
    """The `transformers` auto class that builds or loads the model with this head."""
    collator: str
    """The `transformers` collator class that pads a batch of this kind's features."""
    token_level: bool
    """Labels per word (examples are token lists; predictions and metrics per word) rather than
    one label per example (examples are texts, optionally paired)."""
    pooled: bool
    """The head reads the pooler's output over [CLS] (only [CLS] states matter at the top)."""
    main_metrics: tuple[str, ...]
    """Metrics shown per arm in a report; the first ranks arms, is tested, and is what
    metric_for_best = 'auto' means."""
    scalar_metrics: tuple[str, ...]
    """Every scalar validation metric: allowed for metric_for_best and kept in the history."""
    per_label: str
    """The validation metrics key holding per-label figures."""
    per_label_names: bool
    """Per-label figures are keyed by label name, shown in label order (NER's are keyed by entity
    type, not by BIO tag, and shown sorted)."""
    label_noun: str
    """What one label is called in the report ('class', 'entity type')."""
    confusion_matrix: bool
    """Whether the report shows a confusion matrix."""
    stratify: bool
    """Whether carved and subsampled splits keep each label's share."""
    class_weights: bool
    """Whether optim.class_weights = 'balanced' applies (one label per example)."""
    predictions: str
    """The form of stored per-example predictions ('labels': pred/label/confidence per example;
    'entity_counts': TP/FP/FN per sentence); the report maps it to an influence function."""
    hf_task: str
    """The built-in task that reads a `datasets` dataset of this kind."""

    @property
    def ranking_metric(self) -> str:
        return self.main_metrics[0]

    def auto_model(self) -> type:
        """The `transformers` auto class for this kind's head."""
        return getattr(importlib.import_module("transformers"), self.auto_model_class)

    def collator_class(self) -> type:
        return getattr(importlib.import_module("transformers"), self.collator)
