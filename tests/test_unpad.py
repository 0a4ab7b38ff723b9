"""Unpadded BERT: the model's logits and gradients from real tokens only; same training."""

from __future__ import annotations


import pytest
import torch

from bertft import frozen, unpad
from bertft.config import Config
from bertft.data import Example, Splits
from bertft.features import encode_splits
from bertft.models import build_model, load_tokenizer
from bertft.runtime import set_seed
from bertft.train import fit

CPU = torch.device("cpu")
TEXTS = ["a fine film", "dull , slow and far too long for what it has to say about anything",
         "ok", "the best thing i have seen this year , truly", "bad", "not good at all",
         "good", "an utterly forgettable , overlong and joyless sequel"]


def _splits(kind: str) -> Splits:
    if kind == "classification":
        ex = tuple(Example(text=t, label=i % 2) for i, t in enumerate(TEXTS))
    else:
        ex = tuple(Example(tokens=tuple(t.split()), tags=tuple(j % 3 for j in
                                                                 range(len(t.split()))))
                   for t in TEXTS)
    names = ("neg", "pos") if kind == "classification" else ("O", "B-X", "I-X")
    return Splits("toy", kind, names, ex, ex[:4], ex[4:], "test")


def _setup(kind: str, attention: str = "sdpa", **kw):
    cfg = Config.of(model="tiny-bert", batch_size=8, eval_batch_size=8, max_length=24, **kw)
    splits = _splits(kind)
    tok = load_tokenizer(cfg.model)
    enc = encode_splits(splits, tok, cfg.tokens)
    set_seed(0)
    model = build_model(cfg.model, kind, splits.label_names)
    model.config._attn_implementation = attention
    fwd = frozen.choose_forward(model, enc, tok, kind, cfg, CPU, torch.float32)
    batch = next(iter(fwd.loader("train", train=False)))
    return model, fwd, batch


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("kind", ["classification", "ner"])
def test_unpadded_logits_and_gradients_equal_the_padded_model(kind, attention):
    model, fwd, batch = _setup(kind, attention)
    assert fwd.unpadded and fwd.timing()["unpadded"] == 1.0
    mask = batch["attention_mask"]
    assert mask.sum() < mask.numel()  # the batch has padding to skip
    assert batch[unpad.TOKEN_INDEX].tolist() == mask.flatten().nonzero().flatten().tolist()
    model.eval()  # dropout off: both paths compute the same function
    grads = []
    for logits in (frozen.forward_logits, fwd.logits):
        model.zero_grad()
        out = logits(model, batch)
        real = out[mask.bool()] if kind == "ner" else out  # padded positions are not scored
        (real * torch.arange(real.numel()).view_as(real)).sum().backward()
        grads.append((real.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (want, want_grads), (got, got_grads) = grads
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for name, g in want_grads.items():
        torch.testing.assert_close(got_grads[name], g, rtol=1e-4, atol=1e-5, msg=name)


def test_unpadded_training_matches_padded_training_without_dropout():
    """With dropout off the two paths train the same function on the same batches."""
    splits = _splits("classification")
    cfg = Config.of(model="tiny-bert", epochs=3, batch_size=4, head_lr=1e-2, base_lr=1e-2,
                 encoder_dropout=0.0, head_dropout=0.0, progress=False, save_model=False,
                 max_length=24)
    runs = [fit(cfg.replace(unpad=flag), splits=splits) for flag in (True, False)]
    assert [r.timing["unpadded"] for r in runs] == [1.0, 0.0]
    for a, b in zip(runs[0].history, runs[1].history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)
    assert runs[0].history[-1]["train_loss"] < runs[0].history[0]["train_loss"]


def test_unpadded_cached_top_layers_equal_the_padded_ones():
    kind = "ner"  # token logits: every position of every layer is compared
    cfg = Config.of(model="tiny-bert", freeze_embeddings=True, freeze_layers=1, batch_size=8,
                 eval_batch_size=8, max_length=24)
    splits = _splits(kind)
    tok = load_tokenizer(cfg.model)
    enc = encode_splits(splits, tok, cfg.tokens)
    set_seed(0)
    model = build_model(cfg.model, kind, splits.label_names).eval()
    fwds = [frozen.choose_forward(model, enc, tok, kind, cfg.replace(unpad=flag),
                                  CPU, torch.float32) for flag in (True, False)]
    assert [f.timing()["unpadded"] for f in fwds] == [1.0, 0.0]
    packed, padded = (next(iter(f.loader("train", train=False))) for f in fwds)
    assert packed["hidden_states"].shape == (int(padded["length"].sum()), 32)
    mask = padded["attention_mask"].bool()
    with torch.no_grad():
        torch.testing.assert_close(fwds[0].logits(model, packed)[mask],
                                   fwds[1].logits(model, padded)[mask], rtol=1e-5, atol=1e-5)


def test_compile_and_unsupported_models_run_padded_and_say_why():
    model, fwd, _ = _setup("classification", compile=True)
    assert not fwd.unpadded
    model.config.chunk_size_feed_forward = 4
    assert unpad.unsupported_reason(model, "classification") == \
        "chunked feed-forward (chunk_size_feed_forward > 0)"
    model.config.chunk_size_feed_forward = 0
    model.config._attn_implementation = "flex_attention"
    assert unpad.unsupported_reason(model, "classification") == \
        "attention implementation 'flex_attention' (eager or sdpa only)"
    model.config._attn_implementation = "sdpa"
    model.config.is_decoder = True
    assert unpad.unsupported_reason(model, "classification") == \
        "a decoder / cross-attention model"
    model.config.is_decoder = False
    assert unpad.unsupported_reason(model, "ner") == \
        "BertForSequenceClassification is not one of BertForSequenceClassification, " \
        "BertForTokenClassification"
    assert unpad.unsupported_reason(model, "classification") is None


def test_batches_with_little_padding_run_padded():
    mask = torch.ones(4, 10, dtype=torch.long)
    assert not unpad.worth_unpadding(mask, 0.05)  # no padding
    mask[0, -1] = 0
    assert not unpad.worth_unpadding(mask, 0.05)  # 2.5% < unpad_min_padding
    assert unpad.worth_unpadding(mask, 0.0)
    mask[1, -2:] = 0
    mask[2, -1] = 0
    assert unpad.worth_unpadding(mask, 0.05)  # 10%
    assert not unpad.worth_unpadding(mask, 0.2)
    cfg = Config.of(model="tiny-bert", batch_size=4, eval_batch_size=4, max_length=24)
    same = tuple(Example(text="a good film", label=i % 2) for i in range(4))
    splits = Splits("toy", "classification", ("neg", "pos"), same, same, same, "test")
    tok = load_tokenizer(cfg.model)
    enc = encode_splits(splits, tok, cfg.tokens)
    set_seed(0)
    model = build_model(cfg.model, "classification", splits.label_names).eval()
    fwd = frozen.choose_forward(model, enc, tok, "classification", cfg, CPU, torch.float32)
    batch = next(iter(fwd.loader("train", train=False)))
    assert fwd.unpadded and unpad.TOKEN_INDEX not in batch  # nothing to skip: padded path
    with torch.no_grad():
        torch.testing.assert_close(fwd.logits(model, batch), frozen.forward_logits(model, batch))
