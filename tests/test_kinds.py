"""Task kinds: the registry, each kind's declared facts, and no kind compared by name elsewhere."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import bertft
from bertft.errors import BertftError
from bertft.kinds import DEFAULT, KINDS, TaskKind, kind_names, kind_of
from bertft.metrics import best_metric_name, metric_problem
from bertft.unpad import SUPPORTED

PACKAGE = Path(bertft.__file__).parent


def test_registry_lists_both_kinds() -> None:
    assert kind_names() == ("classification", "ner")
    assert all(isinstance(k, TaskKind) and KINDS[k.name] is k for k in KINDS.values())
    assert DEFAULT is KINDS["classification"]


def test_classification_facts() -> None:
    k = kind_of("classification")
    assert k.main_metrics == ("f1_macro", "accuracy")
    assert k.ranking_metric == "f1_macro" == best_metric_name("auto", "classification")
    assert k.head_class == "BertForSequenceClassification"
    assert k.auto_model().__name__ == "AutoModelForSequenceClassification"
    assert k.collator_class().__name__ == "DataCollatorWithPadding"
    assert (k.token_level, k.pooled, k.stratify, k.confusion_matrix, k.class_weights) == (
        False, True, True, True, True)
    assert (k.per_label, k.label_noun, k.predictions) == ("per_class", "class", "labels")


def test_ner_facts() -> None:
    k = kind_of("ner")
    assert k.main_metrics == ("f1",)
    assert k.ranking_metric == "f1" == best_metric_name("auto", "ner")
    assert k.head_class == "BertForTokenClassification"
    assert k.auto_model().__name__ == "AutoModelForTokenClassification"
    assert k.collator_class().__name__ == "DataCollatorForTokenClassification"
    assert (k.token_level, k.pooled, k.stratify, k.confusion_matrix, k.class_weights) == (
        True, False, False, False, False)
    assert (k.per_label, k.label_noun, k.predictions) == ("per_type", "entity type",
                                                         "entity_counts")
    assert metric_problem("f1_macro", "ner") == (
        "metric_for_best = 'f1_macro': not a ner metric; allowed: auto, f1, precision, recall, "
        "accuracy, loss")


def test_derived_tables_follow_the_registry() -> None:
    assert SUPPORTED == ("BertForSequenceClassification", "BertForTokenClassification")


@pytest.mark.parametrize("name", ["regression", "NER", "", None])
def test_unknown_kind_is_one_clear_error(name) -> None:
    with pytest.raises(BertftError) as info:
        kind_of(name)
    assert str(info.value) == f"task kind {name!r} is not known; allowed: classification, ner"


def _kind_name_literals(node: ast.AST) -> list[str]:
    """Kind names written as string literals in `node` (itself, or inside a tuple/list/set)."""
    items = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
    return [i.value for i in items if isinstance(i, ast.Constant) and i.value in KINDS]


def kind_name_comparisons(source: str) -> list[tuple[int, str]]:
    """(line, literal) of every comparison with a kind's name, and of every dict keyed by kind
    names: the facts such code holds belong to the kind (`bertft.kinds`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                found += [(node.lineno, lit) for lit in _kind_name_literals(side)]
        elif isinstance(node, ast.Dict):
            found += [(node.lineno, k.value) for k in node.keys
                      if isinstance(k, ast.Constant) and k.value in KINDS]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "get":
            found += [(node.lineno, lit) for a in node.args[:1] for lit in _kind_name_literals(a)]
    return found


def test_the_scan_sees_kind_comparisons() -> None:
    assert kind_name_comparisons('a = kind == "ner"\nb = "classification" != k\n'
                                 'c = k in ("ner", "x")\nd = {"ner": 1}\ne = m.get("ner")\n'
                                 'f = v == "Value"\n') == [
        (1, "ner"), (2, "classification"), (3, "ner"), (4, "ner"), (5, "ner")]


def test_no_module_compares_a_kind_to_its_name() -> None:
    offenders = [f"{path.relative_to(PACKAGE.parent)}:{line}: {lit!r}"
                 for path in sorted(PACKAGE.rglob("*.py"))
                 if PACKAGE / "kinds" not in path.parents
                 for line, lit in kind_name_comparisons(path.read_text(encoding="utf-8"))]
    assert offenders == [], "ask bertft.kinds.kind_of(name) instead:\n" + "\n".join(offenders)
