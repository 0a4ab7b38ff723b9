"""Gradient accumulation: N micro-batches give the gradient of one batch of the same examples.

The loss of an accumulation window is normalised by the window's real size (examples, labelled
word pieces for NER, or the class weights of the window's labels), so a short last window and
micro-batches with different token counts are weighted as one batch would weight them.
"""

import pytest
import torch
import torch.nn.functional as F

from bertft.config import Config
from bertft.data import Example, Splits
from bertft.optim import class_weights
from bertft.state import Running
from bertft.train import accumulate, fit
from tests.conftest import NO_DROPOUT, seeded_forward

CPU = torch.device("cpu")


def _classification() -> Splits:
    words = ["movie", "plot", "actor", "scene", "music", "story", "ending", "cast"]
    rows = [Example(text=" ".join(words[: 1 + i % 7]) + (" good" if i % 3 else " bad"),
                    label=int(i % 3 == 0)) for i in range(40)]
    return Splits("toy", "classification", ("a", "b"), tuple(rows[:26]), tuple(rows[26:33]),
                  tuple(rows[33:]), "generated")


def _ner() -> Splits:
    """Sentences of 1 to 7 words: micro-batches hold very different numbers of labelled tokens."""
    words = ["john", "lives", "in", "paris", "and", "mary", "visited"]
    rows = [Example(tokens=tuple(words[: 1 + i % 7]), tags=tuple((j + i) % 3 for j in
                                                                   range(1 + i % 7)))
            for i in range(36)]
    return Splits("toyner", "ner", ("O", "B-PER", "I-PER"), tuple(rows[:26]), tuple(rows[26:31]),
                  tuple(rows[31:]), "generated")


def _grads(splits: Splits, cfg: Config, sizes: list[int] | None, weighted: bool, n: int = 0
           ) -> dict:
    """Gradients after one accumulation window over the first sum(sizes) training examples,
    cut into micro-batches of the given sizes; `sizes` None: the reference, a plain
    `F.cross_entropy(...).backward()` on one padded batch of the first `n` examples (the
    model's own forward, torch's mean: over labelled word pieces for NER, weighted by the
    class weights of the labels present)."""
    _, enc, model, forward = seeded_forward(splits, cfg)
    collate = forward.loader("train", train=False).collate_fn
    weight = (class_weights([f["labels"] for f in enc.train], len(splits.label_names))
              if weighted else None)
    if sizes is None:
        batch = collate(enc.train[:n])
        logits = model(**{k: batch[k] for k in ("input_ids", "attention_mask",
                                                "token_type_ids") if k in batch}).logits
        F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["labels"].reshape(-1),
                        weight=weight).backward()
        return {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    window, start = [], 0
    for size in sizes:
        window.append(collate(enc.train[start:start + size]))
        start += size
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    counted = accumulate(model, forward, window, (weight, weight), scaler, CPU, torch.float32,
                         Running())
    assert counted[0] == sum(sizes)
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("splits, weighted", [(_classification, False), (_classification, True),
                                              (_ner, False)],
                         ids=["classification", "class-weights", "ner"])
@pytest.mark.parametrize("unpad", [True, False], ids=["unpadded", "padded"])
@pytest.mark.parametrize("sizes", [[3, 3, 3], [4, 1, 4], [2]], ids=["full", "uneven", "one"])
def test_micro_batches_give_the_gradient_of_one_batch(splits, weighted, unpad, sizes):
    """Against plain cross-entropy on one batch, not against `accumulate` itself: a scale
    shared by every window (a wrong denominator) fails too."""
    data = splits()
    cfg = Config.of(**NO_DROPOUT, unpad=unpad,
                 class_weights="balanced" if weighted else "none")
    one = _grads(data, cfg, None, weighted, n=sum(sizes))
    many = _grads(data, cfg, sizes, weighted)
    assert one.keys() == many.keys() and len(one) > 10
    for name, g in one.items():
        torch.testing.assert_close(many[name], g, atol=1e-6, rtol=1e-5, msg=name)


@pytest.mark.parametrize("splits", [_classification, _ner], ids=["classification", "ner"])
def test_accumulated_training_matches_large_batches(splits):
    """26 training examples: batches of 6 (4 full, 1 of 2) against micro-batches of 2 in
    windows of 3 (the same 5 windows; the last one short). Same data order, same steps:
    random order, whose permutation does not depend on the batch size (length buckets, the
    default, group by the micro-batch size)."""
    data = splits()
    common = {**NO_DROPOUT, "epochs": 2, "max_grad_norm": 0.0, "head_lr": 1e-3,
              "base_lr": 1e-3, "sampling": "random"}
    big = fit(Config.of(**common, batch_size=6), splits=data)
    small = fit(Config.of(**common, batch_size=2, grad_accum_steps=3), splits=data)
    assert big.timing["optimizer_steps"] == small.timing["optimizer_steps"] == 10
    a, b = big.model.state_dict(), small.model.state_dict()
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=2e-5, rtol=1e-4, msg=name)
    assert small.validation["loss"] == pytest.approx(big.validation["loss"], abs=1e-5)
