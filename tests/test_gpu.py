"""The GPU tier (`pytest -m gpu` on a CUDA box; collected and skipped without one): the CUDA
defaults (bucketed widths, fixed batch shapes, bf16, CUDA graphs) train as eager padded
training does, within bf16's tolerance, and a second trial reuses the compiled model."""

from __future__ import annotations

import pytest
import torch

from bertft import auto, graphs
from bertft import frozen as frozen_prefix
from bertft.config import Config
from bertft.data import Example, Splits
from bertft.features import encode_splits
from bertft.models import build_model, load_tokenizer
from bertft.runtime import set_seed
from bertft.state import Running
from bertft.train import accumulate, fit

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

CUDA = torch.device("cuda")
WORDS = ["movie", "plot", "actor", "scene", "music", "story", "ending", "cast", "score"]
NO_DROPOUT = {"model": "tiny-bert", "progress": False, "save_model": False, "max_length": 64,
              "head_dropout": 0.0, "encoder_dropout": 0.0, "device": "cuda",
              "precision": "bf16", "head_lr": 1e-3, "base_lr": 1e-3}
EAGER_PADDED = {"compile": False, "unpad": False, "pad_to_multiple_of": None}
GRAPHED = {"compile": True}  # opt-in on CUDA until these tests and the GPU run back "auto"
BF16 = {"rel": 3e-2, "abs": 2e-2}  # bf16 autocast against bf16 autocast, other kernels


def _splits(n_train: int = 150) -> Splits:
    """Texts of 3 to 50 word pieces: several length buckets; 150 rows: a short last batch."""
    rows = [Example(text=" ".join(WORDS[(i * j) % 9] for j in range(3 + i % 47)),
                    label=int(i % 3 == 0)) for i in range(n_train + 40)]
    return Splits("toy", "classification", ("a", "b"), tuple(rows[:n_train]),
                  tuple(rows[n_train:n_train + 20]), tuple(rows[n_train + 20:]), "generated")


@pytest.fixture(autouse=True)
def _fresh_process_state(monkeypatch):
    monkeypatch.setattr(graphs, "PROCESS", graphs.StepReuse())
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_cuda_defaults_resolve_as_the_table_says():
    r = fit(Config.of(**{**NO_DROPOUT, "precision": "auto"}, max_steps=2), splits=_splits())
    expected = auto.resolve({k: "auto" for k in auto.SETTINGS}, "cuda",
                            torch.cuda.is_bf16_supported())
    assert r.environment["resolved"] == expected and expected["compile"] is False


def test_graphed_bucketed_training_follows_eager_padded_training_for_20_steps():
    common = {**NO_DROPOUT, "max_steps": 20, "eval_steps": 4, "batch_size": 8}
    graphed = fit(Config.of(**common, **GRAPHED), splits=_splits())
    eager = fit(Config.of(**common, **EAGER_PADDED), splits=_splits())
    assert graphed.environment["resolved"]["fixed_batch"] is True
    curve = [r["train_loss"] for r in graphed.history]
    assert len(curve) == 5
    assert curve == pytest.approx([r["train_loss"] for r in eager.history], **BF16)
    assert graphed.validation["loss"] == pytest.approx(eager.validation["loss"], **BF16)


def _step1_grads(compiled: bool) -> dict[str, torch.Tensor]:
    splits = _splits()
    cfg = Config.of(**NO_DROPOUT, **(GRAPHED if compiled else EAGER_PADDED))
    tok = load_tokenizer(cfg.model)
    enc = encode_splits(splits, tok, cfg.tokens)
    set_seed(0)
    model = build_model(cfg.model, "classification", splits.label_names).to(CUDA)
    model.train()
    fwd = frozen_prefix.choose_forward(model, enc, tok, "classification", cfg, CUDA,
                                       torch.bfloat16)
    if compiled:
        fwd.compile(model)
    batch = fwd.loader("train", train=False).collate_fn(enc.train[:5])  # a short batch
    if compiled:
        batch = graphs.fill_rows(batch, 8, tok.cls_token_id, tok.pad_token_id)
    accumulate(model, fwd, [batch], (None, None), torch.amp.GradScaler("cuda", enabled=False),
               CUDA, torch.bfloat16, Running())
    return {n: p.grad.float().clone() for n, p in model.named_parameters() if p.grad is not None}


def test_gradients_at_step_1_match_eager_padded():
    graphed, eager = _step1_grads(True), _step1_grads(False)
    assert graphed.keys() == eager.keys()
    for name, g in eager.items():
        err = float((graphed[name] - g).norm() / g.norm().clamp_min(1e-6))
        assert err < 3e-2, name


def test_accumulation_and_the_short_last_batch_under_graphs():
    """Micro-batches of 4 in windows of 2 under graphs (the last micro-batch short, filled up)
    against eager batches of 8: the same windows, the same validation loss."""
    common = {**NO_DROPOUT, "epochs": 2, "max_grad_norm": 0.0, "sampling": "random"}
    big = fit(Config.of(**common, **EAGER_PADDED, batch_size=8), splits=_splits(150))
    small = fit(Config.of(**common, **GRAPHED, batch_size=4, grad_accum_steps=2),
                splits=_splits(150))
    assert big.timing["optimizer_steps"] == small.timing["optimizer_steps"] == 38
    assert small.timing["train_samples"] == big.timing["train_samples"] == 300  # no fillers
    assert small.validation["loss"] == pytest.approx(big.validation["loss"], **BF16)


def test_frozen_prefix_cache_on_the_gpu():
    common = {**NO_DROPOUT, "epochs": 2, "batch_size": 8, "freeze_embeddings": True,
              "freeze_layers": 1}
    cached = fit(Config.of(**common), splits=_splits())
    full = fit(Config.of(**common, cache_frozen=False), splits=_splits())
    assert (cached.timing["frozen_cache"], full.timing["frozen_cache"]) == (1.0, 0.0)
    assert cached.validation["loss"] == pytest.approx(full.validation["loss"], **BF16)


def test_a_second_trial_reuses_the_compiled_step_without_recompiling():
    from torch._dynamo.utils import counters

    counters.clear()
    common = {**NO_DROPOUT, **GRAPHED, "epochs": 1, "batch_size": 8}
    first = fit(Config.of(**common, seed=0), splits=_splits())
    graphs_first = counters["stats"]["unique_graphs"]
    second = fit(Config.of(**common, seed=1), splits=_splits())
    assert graphs_first >= 1 and counters["stats"]["unique_graphs"] == graphs_first
    assert graphs.PROCESS.compiles == 1 and second.model is first.model
    assert second.timing["compiled_model_reused"] == 1.0
    assert first.timing["compile_seconds"] > 0 and second.timing["compile_seconds"] == 0.0
