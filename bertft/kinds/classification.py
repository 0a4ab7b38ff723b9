"""Sequence classification: one label per text (or text pair)."""

from __future__ import annotations

from bertft.kinds.base import TaskKind

KIND = TaskKind(
    name="classification",
    head_class="BertForSequenceClassification",
    auto_model_class="AutoModelForSequenceClassification",
    collator="DataCollatorWithPadding",
    token_level=False,
    pooled=True,
    main_metrics=("f1_macro", "accuracy"),
    scalar_metrics=("accuracy", "f1_macro", "precision_macro", "recall_macro", "loss"),
    per_label="per_class",
    per_label_names=True,
    label_noun="class",
    confusion_matrix=True,
    stratify=True,
    class_weights=True,
    predictions="labels",
    hf_task="hf-dataset",
)
