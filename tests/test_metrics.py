import pytest

from bertft.metrics import (
    best_metric_name, classification_metrics, improves, ner_metrics, worst_value,
)


def test_classification_metrics_on_a_known_example():
    m = classification_metrics([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], ("a", "b", "c"))
    assert m["accuracy"] == pytest.approx(0.6)
    # per class F1: a: p=1/2 r=1/2 -> 0.5; b: p=2/3 r=1 -> 0.8; c: 0
    assert m["per_class"]["a"]["f1"] == pytest.approx(0.5)
    assert m["per_class"]["b"]["f1"] == pytest.approx(0.8)
    assert m["per_class"]["c"]["f1"] == 0.0
    assert m["f1_macro"] == pytest.approx((0.5 + 0.8 + 0) / 3)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_seqeval_entity_level_figures():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    m = ner_metrics(gold, pred)
    # 3 gold entities, 3 predicted, 2 correct
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["per_type"]["PER"]["f1"] == 1.0
    assert m["per_type"]["LOC"]["recall"] == 0.0
    assert m["accuracy"] == pytest.approx(5 / 6)


def test_strict_mode_rejects_an_entity_opened_by_i():
    gold = [["B-PER", "I-PER"]]
    pred = [["I-PER", "I-PER"]]
    assert ner_metrics(gold, pred)["f1"] == 1.0            # conlleval-compatible
    assert ner_metrics(gold, pred, strict=True)["f1"] == 0.0


def test_auto_metric():
    assert best_metric_name("auto", "classification") == "f1_macro"
    assert best_metric_name("auto", "ner") == "f1"
    assert best_metric_name("accuracy", "ner") == "accuracy"


def test_loss_improves_downwards_and_every_other_metric_upwards():
    assert improves("loss", 0.7, 0.8) and not improves("loss", 0.9, 0.8)
    assert improves("f1", 0.9, 0.8) and not improves("accuracy", 0.7, 0.8)
    assert not improves("loss", 0.8, 0.8)  # ties keep the earlier (first) best
    assert improves("loss", 1e9, worst_value("loss"))
    assert improves("f1_macro", 0.0, worst_value("f1_macro"))
