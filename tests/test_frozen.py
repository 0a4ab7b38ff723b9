"""Frozen-prefix cache: same logits as the full model, same training, reuse across trials."""

from __future__ import annotations


import pytest
import torch

from bertft import frozen
from bertft.cache import Cache
from bertft.config import Config
from bertft.data import Example, Splits
from bertft.features import encode_splits, make_loader
from bertft.models import build_model, load_tokenizer
from bertft.runtime import set_seed

CPU = torch.device("cpu")
TEXTS = ["a fine film", "dull , slow and far too long for what it has to say about anything",
         "ok", "the best thing i have seen this year , truly", "bad", "not good at all"]
WORDS = [t.split() for t in TEXTS]


def _splits(kind: str) -> Splits:
    if kind == "classification":
        ex = tuple(Example(text=t, label=i % 2) for i, t in enumerate(TEXTS))
        return Splits("toy", kind, ("neg", "pos"), ex, ex[:4], ex[2:], "test")
    ex = tuple(Example(tokens=tuple(w), tags=tuple(j % 3 for j in range(len(w)))) for w in WORDS)
    return Splits("toy-ner", kind, ("O", "B-X", "I-X"), ex, ex[:4], ex[2:], "test")


def _setup(model_name: str, kind: str, freeze_layers, **kw):
    cfg = Config.of(model=model_name, freeze_embeddings=True, freeze_layers=freeze_layers,
                 batch_size=4, eval_batch_size=4, **kw)
    splits = _splits(kind)
    tok = load_tokenizer(cfg.model)
    enc = encode_splits(splits, tok, cfg.tokens)
    set_seed(0)
    model = build_model(cfg.model, kind, splits.label_names).eval()
    return cfg, tok, enc, model


@pytest.mark.parametrize("model_name, freeze_layers", [
    ("tiny-bert", 1), ("tiny-bert", 2), ("tiny-bert", "all"),
    pytest.param("minilm-l6", 2, marks=pytest.mark.integration),
    pytest.param("minilm-l6", "all", marks=pytest.mark.integration),
])
@pytest.mark.parametrize("kind", ["classification", "ner"])
@pytest.mark.parametrize("padding", ["dynamic", "max_length"])
def test_cached_logits_equal_full_model(model_name, freeze_layers, kind, padding):
    cfg, tok, enc, model = _setup(model_name, kind, freeze_layers, padding=padding,
                                  max_length=24)
    fwd = frozen.choose_forward(model, enc, tok, kind, cfg, CPU, torch.float32)
    assert isinstance(fwd, frozen.CachedForward)
    full = make_loader(enc.train, tok, kind, cfg.batch, cfg.tokens.max_length, train=False)
    with torch.no_grad():
        for a, b in zip(full, fwd.loader("train", train=False), strict=True):
            want = frozen.forward_logits(model, a)
            got = fwd.logits(model, b)
            assert int(b["length"].sum()) == int(a["attention_mask"].sum())
            if kind == "ner":  # padded positions are never scored
                real = a["labels"] != -100
                want, got = want[real], got[:, :want.shape[1]][real]
                assert torch.equal(b["labels"][:, :a["labels"].shape[1]], a["labels"])
            else:
                assert torch.equal(b["labels"], a["labels"])
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_cached_depth_follows_the_config():
    d = frozen.cached_depth
    assert d(Config.of(freeze_embeddings=True, freeze_layers=2), 6) == 2
    assert d(Config.of(freeze_layers="all"), 6) == 6  # 'all' freezes the embeddings too
    assert d(Config.of(freeze_layers=2), 6) == 0  # embeddings train: autograd runs through all
    assert d(Config.of(freeze_embeddings=True, freeze_layers=0), 6) == 0
    assert d(Config.of(freeze_embeddings=True, freeze_layers=2, unfreeze_at_epoch=2), 6) == 0
    assert d(Config.of(freeze_embeddings=True, freeze_layers=2, cache_frozen=False), 6) == 0


def test_states_are_reused_only_for_the_same_weights():
    cache = Cache()
    cfg, tok, enc, model = _setup("tiny-bert", "classification", 1)
    first = frozen.choose_forward(model, enc, tok, "classification", cfg, CPU, torch.float32,
                                  cache)
    again = frozen.choose_forward(model, enc, tok, "classification", cfg, CPU, torch.float32,
                                  cache)
    assert (first.hit, again.hit) == (False, True)
    assert again.timing()["frozen_cache"] == 1.0
    alone = frozen.choose_forward(model, enc, tok, "classification", cfg, CPU, torch.float32,
                                  Cache())
    assert alone.hit is False  # another cache shares nothing
    set_seed(1)  # tiny-bert is random: another seed means other frozen weights
    other = build_model(cfg.model, "classification", ("neg", "pos"))
    third = frozen.choose_forward(other, enc, tok, "classification", cfg, CPU, torch.float32,
                                  cache)
    assert third.hit is False
    assert len(cache) == 2


def test_the_oldest_states_are_evicted_beyond_the_cache_budget():
    cfg, tok, enc, model = _setup("tiny-bert", "classification", 1)
    one = frozen.choose_forward(model, enc, tok, "classification", cfg, CPU, torch.float32)
    size = sum(t.numel() * t.element_size() for ts in one.states.values() for t in ts)
    cache = Cache({"frozen": size})  # room for one model's states
    frozen.choose_forward(model, enc, tok, "classification", cfg, CPU, torch.float32, cache)
    set_seed(1)
    other = build_model(cfg.model, "classification", ("neg", "pos"))
    frozen.choose_forward(other, enc, tok, "classification", cfg, CPU, torch.float32, cache)
    assert len(cache) == 1 and cache.nbytes("frozen") == size
    again = frozen.choose_forward(model, enc, tok, "classification", cfg, CPU, torch.float32,
                                  cache)
    assert again.hit is False  # evicted for the other model's states


@pytest.mark.parametrize("kind, deeper", [("classification", 2), ("ner", 2),
                                          ("classification", "all")])
def test_a_deeper_prefix_continues_from_a_cached_shallower_one(kind, deeper):
    cfg, tok, enc, model = _setup("tiny-bert", kind, deeper)
    direct = frozen.choose_forward(model, enc, tok, kind, cfg, CPU, torch.float32)
    assert direct.reused_layers == 0
    cache = Cache()
    cfg1 = cfg.replace(freeze_layers=1)
    frozen.choose_forward(model, enc, tok, kind, cfg1, CPU, torch.float32, cache)  # K=1
    continued = frozen.choose_forward(model, enc, tok, kind, cfg, CPU, torch.float32, cache)
    assert (continued.hit, continued.reused_layers) == (False, 1)
    assert continued.timing()["frozen_cache_reused_layers"] == 1.0
    for split in ("train", "validation", "test"):
        for a, b in zip(direct.states[split], continued.states[split], strict=True):
            assert a.shape == b.shape
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    set_seed(1)  # other frozen weights: nothing to continue from
    other = build_model(cfg.model, kind, _splits(kind).label_names).eval()
    assert frozen.choose_forward(other, enc, tok, kind, cfg, CPU, torch.float32, cache
                                 ).reused_layers == 0


def test_unfrozen_configs_use_the_full_model():
    cfg, tok, enc, model = _setup("tiny-bert", "classification", 0)
    fwd = frozen.choose_forward(model, enc, tok, "classification", cfg, CPU, torch.float32)
    assert isinstance(fwd, frozen.FullForward) and fwd.timing()["frozen_cache"] == 0.0
    assert fwd.why == "no frozen prefix"


def test_unsupported_architectures_use_the_full_model_and_say_why():
    from transformers import BertForSequenceClassification

    class MyBertClassifier(BertForSequenceClassification):
        pass

    cfg, tok, enc, model = _setup("tiny-bert", "classification", 1)
    other = MyBertClassifier(model.config)
    no_pooler = build_model(cfg.model, "classification", ("neg", "pos"))
    no_pooler.bert.pooler = None
    for m, why in ((other, "MyBertClassifier is not one of BertForSequenceClassification, "
                           "BertForTokenClassification"),
                   (no_pooler, "the model has no pooler")):
        assert frozen.unsupported_reason(m, "classification") == why
        fwd = frozen.choose_forward(m, enc, tok, "classification", cfg, CPU, torch.float32)
        assert isinstance(fwd, frozen.FullForward) and fwd.why == why
    assert frozen.unsupported_reason(model, "classification") is None


def test_states_larger_than_the_cache_limit_use_the_full_model():
    cfg, tok, enc, model = _setup("tiny-bert", "classification", 1)
    fwd = frozen.choose_forward(model, enc, tok, "classification", cfg, CPU, torch.float32,
                                Cache({"frozen": 1}))
    assert isinstance(fwd, frozen.FullForward)
    assert fwd.why.startswith("states would take ")
    assert fwd.why.endswith(" GiB, over the cache limit of 0.00 GiB on cpu")


def test_the_cache_limit_on_a_gpu_is_a_quarter_of_its_memory(monkeypatch):
    class Props:
        total_memory = 16 * 2**30

    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: Props)
    cache = Cache()
    assert frozen.cache_limit(cache, torch.device("cuda")) == 4 * 2**30
    Props.total_memory = 141 * 2**30  # an H200: the 8 GiB budget applies
    assert frozen.cache_limit(cache, torch.device("cuda")) == 8 * 2**30
    assert frozen.cache_limit(cache, CPU) == 8 * 2**30


@pytest.mark.parametrize("kind, freeze_layers", [("classification", 1), ("ner", 1),
                                                 ("classification", "all")])
def test_fit_with_cache_trains_like_fit_without(kind, freeze_layers):
    """Frozen layers run in eval mode on both paths and batches come in the same order, so the
    two runs differ only by float rounding."""
    from bertft.train import fit

    cfg = Config.of(model="tiny-bert", freeze_embeddings=True, freeze_layers=freeze_layers,
                 epochs=2, batch_size=2, eval_batch_size=4, head_lr=1e-3, base_lr=1e-3,
                 progress=False, save_model=False, device="cpu")
    splits = _splits(kind)
    cached = fit(cfg, splits)
    plain = fit(cfg.replace(cache_frozen=False), splits)
    assert cached.timing["frozen_cache"] == 1.0 and plain.timing["frozen_cache"] == 0.0
    assert cached.timing["frozen_precompute_seconds"] > 0
    assert cached.timing["train_tokens"] == plain.timing["train_tokens"]
    for a, b in zip(cached.history, plain.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
    assert cached.validation["loss"] == pytest.approx(plain.validation["loss"], abs=1e-5)
