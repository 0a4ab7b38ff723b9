"""Named-entity recognition: one BIO tag per word, scored per entity (seqeval)."""

from __future__ import annotations

from bertft.kinds.base import TaskKind

KIND = TaskKind(
    name="ner",
    head_class="BertForTokenClassification",
    auto_model_class="AutoModelForTokenClassification",
    collator="DataCollatorForTokenClassification",
    token_level=True,
    pooled=False,
    main_metrics=("f1",),
    scalar_metrics=("f1", "precision", "recall", "accuracy", "loss"),
    per_label="per_type",
    per_label_names=False,
    label_noun="entity type",
    confusion_matrix=False,
    stratify=False,
    class_weights=False,
    predictions="entity_counts",
    hf_task="hf-dataset-ner",
)
