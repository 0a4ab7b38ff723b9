"""Metrics: scikit-learn for classification, seqeval (entity level) for NER."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

from seqeval.metrics import classification_report as seq_report
from seqeval.scheme import IOB2
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from bertft.kinds import kind_of


MAX_CONFUSION_LABELS = 50
"""Up to this many labels, metrics hold the full confusion matrix (labels x labels counts).
Above it they hold `top_confusions` instead: the TOP_CONFUSIONS most frequent (gold, predicted)
pairs with gold != predicted, so a metrics or result file grows with the label count only
through `per_class` (one small entry per label), never quadratically (10,000 labels would
otherwise write 10^8 counts per split)."""
TOP_CONFUSIONS = 50


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int],
                           label_names: Sequence[str]) -> dict[str, object]:
    """Accuracy, macro precision/recall/F1, per-class figures and the confusion matrix (or,
    above MAX_CONFUSION_LABELS labels, the most frequent confusions).

    Macro averages are over the classes present in the split's gold labels or predictions: a
    class absent from both has no F1 to average (it would enter as 0 and drag the mean down);
    its per-class entry stays, all zeros, with support 0."""
    labels = list(range(len(label_names)))
    present = sorted({int(y) for y in y_true} | {int(y) for y in y_pred}) or labels
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    pm, rm, fm, _ = precision_recall_fscore_support(y_true, y_pred, labels=present,
                                                    average="macro", zero_division=0)
    out: dict[str, object] = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_macro": float(fm),
        "precision_macro": float(pm),
        "recall_macro": float(rm),
        "per_class": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                   "support": int(s[i])}
            for i, name in enumerate(label_names)
        },
    }
    if len(labels) <= MAX_CONFUSION_LABELS:
        out["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=labels).tolist()
    else:  # counted from the pairs: no labels x labels array is ever built
        pairs = Counter((int(g), int(q)) for g, q in zip(y_true, y_pred, strict=True) if g != q)
        out["top_confusions"] = [
            {"gold": label_names[g], "pred": label_names[q], "count": n}
            for (g, q), n in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
            [:TOP_CONFUSIONS]]
    return out


def ner_metrics(y_true: list[list[str]], y_pred: list[list[str]], strict: bool = False
                ) -> dict[str, object]:
    """Entity-level micro precision/recall/F1 overall and per type, plus token accuracy.

    Default mode is seqeval's conlleval-compatible one (an I- after O starts an entity);
    `strict` applies the IOB2 scheme, where such malformed spans are not counted as entities.
    """
    kwargs = {"mode": "strict", "scheme": IOB2} if strict else {}
    report = seq_report(y_true, y_pred, output_dict=True, zero_division=0, **kwargs)
    micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
    n_tokens = sum(len(t) for t in y_true)
    correct = sum(a == b for t, q in zip(y_true, y_pred, strict=True)
                  for a, b in zip(t, q, strict=True))
    return {
        "f1": float(micro["f1-score"]),
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "accuracy": correct / n_tokens if n_tokens else 0.0,
        "per_type": {
            k: {"precision": float(v["precision"]), "recall": float(v["recall"]),
                "f1": float(v["f1-score"]), "support": int(v["support"])}
            for k, v in report.items() if not k.endswith(" avg")
        },
    }


def restore_cut_words(preds: list[list[int]], confs: list[list[float]],
                      words: Sequence[tuple[Sequence[int], Sequence[int]]], outside: int,
                      names: Sequence[str]
                      ) -> tuple[list[list[int]], list[list[int]], list[list[float]], int]:
    """Per sentence, predictions on every word: `words` holds each sentence's gold word tags
    and the words the model scored (`features.scored_words`); a word it never saw (cut off by
    max_length, or with no word piece) is predicted `outside` ("O") with confidence 0, so an
    entity there counts as missed (a false negative), not as absent. Returns predictions,
    gold tags, confidences and how many gold entities max_length cut (wholly or partly past
    the last word scored)."""
    from seqeval.metrics.sequence_labeling import get_entities

    cut = 0
    out_p, out_g, out_c = [], [], []
    for p, c, (gold, seen) in zip(preds, confs, words, strict=True):
        assert len(p) == len(seen), "evaluation features do not match the split's examples"
        full_p, full_c = [outside] * len(gold), [0.0] * len(gold)
        for k, w in enumerate(seen):
            full_p[w], full_c[w] = p[k], c[k]
        out_p.append(full_p)
        out_g.append(list(gold))
        out_c.append(full_c)
        last = seen[-1] if seen else -1
        if last < len(gold) - 1:
            cut += sum(end > last for _, _, end in get_entities([names[t] for t in gold]))
    return out_p, out_g, out_c, cut


def ner_evaluation(preds: list[list[int]], golds: list[list[int]], confs: list[list[float]],
                   words: Sequence[tuple[Sequence[int], Sequence[int]]], names: Sequence[str],
                   strict: bool) -> tuple[dict[str, object], list, list, list]:
    """NER metrics of one split from word-level predictions and gold tags (ids), and the
    predictions, gold tags and confidences they were computed on. With the split's `words`
    (`features.scored_words`), words cut off by max_length are scored against their gold tags
    as predicted "O" (an entity cut off is missed) and `truncated_entities` counts those cut;
    without, it is 0 and only the words scored count."""
    cut = 0
    if words:
        preds, golds, confs, cut = restore_cut_words(preds, confs, words, names.index("O"),
                                                     names)
    metrics = ner_metrics([[names[t] for t in s] for s in golds],
                          [[names[t] for t in s] for s in preds], strict=strict)
    metrics["truncated_entities"] = cut
    return metrics, preds, golds, confs


def truncation_note(test_metrics: Iterable[dict]) -> str:
    """The report's words for NER gold test entities cut off by max_length ('' when none)."""
    cut = sorted({int(m.get("truncated_entities") or 0) for m in test_metrics} - {0})
    if not cut:
        return ""
    return (f"; ⚠ {' / '.join(map(str, cut))} test entities cut off by max_length (scored as "
            "missed)")


def best_metric_name(metric: str, kind: str) -> str:
    """`auto` resolves to the kind's ranking metric: f1_macro (classification), f1 (NER)."""
    if metric != "auto":
        return metric
    return kind_of(kind).ranking_metric


def metric_problem(metric_for_best: str, kind: str) -> str | None:
    """Why `metric_for_best` cannot rank runs of this task kind, or None when it can."""
    allowed = kind_of(kind).scalar_metrics
    if best_metric_name(metric_for_best, kind) in allowed:
        return None
    return (f"metric_for_best = {metric_for_best!r}: not a {kind} metric; "
            f"allowed: auto, {', '.join(allowed)}")


# Lower is better for these; every other metric (TaskKind.scalar_metrics) is higher-is-better.
LOWER_IS_BETTER = frozenset({"loss"})


def improves(metric: str, value: float, best: float) -> bool:
    """Whether `value` of `metric` is strictly better than `best` (lower for a loss)."""
    return value < best if metric in LOWER_IS_BETTER else value > best


def worst_value(metric: str) -> float:
    """The starting "best" value that any finite first evaluation improves on."""
    return math.inf if metric in LOWER_IS_BETTER else -math.inf


def entity_counts(y_true: list[list[str]], y_pred: list[list[str]], strict: bool = False
                  ) -> dict[str, list[int]]:
    """Per sentence, the entity true positives, false positives and false negatives as
    `ner_metrics` scores them (same seqeval mode): summed over sentences they give its micro
    precision, recall and F1, so a report can recompute entity F1 on resampled sentences."""
    from seqeval.metrics.sequence_labeling import get_entities
    from seqeval.scheme import Entities

    def spans(sentences: list[list[str]]) -> list[set[tuple]]:
        if strict:
            found = Entities(sentences, IOB2).entities
            return [{e.to_tuple()[1:] for e in sent} for sent in found]
        return [set(get_entities(s)) for s in sentences]

    gold, pred = spans(y_true), spans(y_pred)
    tp = [len(g & p) for g, p in zip(gold, pred, strict=True)]
    return {"tp": tp, "fp": [len(p) - t for p, t in zip(pred, tp, strict=True)],
            "fn": [len(g) - t for g, t in zip(gold, tp, strict=True)]}
