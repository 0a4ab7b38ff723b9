"""Device-aware defaults (bertft.auto), length buckets, filler rows and compiled-model reuse
(bertft.graphs): everything of issue 23 that runs without a GPU."""

from __future__ import annotations

import pytest
import torch

from bertft import auto, config, graphs
from bertft import frozen as frozen_prefix
from bertft.config import Config
from bertft.data import Example, Splits
from bertft.features import collator, encode_splits
from bertft.models import load_tokenizer
from bertft.runtime import resolve_precision, resolve_settings, resolved_config
from bertft.state import Running
from bertft.train import accumulate, fit
from tests.conftest import NO_DROPOUT, seeded_forward

CPU = torch.device("cpu")
ALL_AUTO = {k: "auto" for k in auto.SETTINGS}
ON_CPU = {"unpad": True, "sampling": "length_buckets", "pad_to_multiple_of": None,
          "precision": "fp32", "compile": False, "compile_mode": "default", "fixed_batch": False}
ON_CUDA = {"unpad": False, "sampling": "length_buckets", "pad_to_multiple_of": 32,
           "precision": "bf16", "compile": False, "compile_mode": "reduce-overhead",
           "fixed_batch": False}  # graphs opt-in on CUDA until the GPU run checks them


@pytest.mark.parametrize("device_type, expected", [
    ("cpu", ON_CPU), ("mps", ON_CPU), ("cuda", ON_CUDA)])
def test_auto_resolves_per_device_type(device_type, expected):
    assert auto.resolve(ALL_AUTO, device_type) == expected


def test_explicit_settings_are_kept_and_bf16_needs_support():
    explicit = {**ALL_AUTO, "unpad": True, "compile": False, "precision": "fp32"}
    got = auto.resolve(explicit, "cuda")
    assert (got["unpad"], got["compile"], got["precision"], got["fixed_batch"]) == (
        True, False, "fp32", False)  # fixed batches only where compiled
    assert auto.resolve(ALL_AUTO, "cuda", bf16_supported=False)["precision"] == "fp32"
    assert auto.resolve({**ALL_AUTO, "precision": "bf16"}, "cuda", False)["precision"] == "bf16"


def test_every_default_resolves_on_cpu_to_the_fixed_default_it_replaced():
    cfg = Config()
    assert {k: getattr(cfg.batch if k in ("sampling", "pad_to_multiple_of") else cfg.runtime, k)
            for k in auto.SETTINGS} == ALL_AUTO
    assert resolve_settings(cfg, CPU) == ON_CPU
    run = resolved_config(cfg, CPU)
    assert (run.runtime.unpad, run.batch.sampling, run.batch.pad_to_multiple_of,
            run.runtime.compile, run.runtime.compile_mode) == (
        True, "length_buckets", None, False, "default")
    assert resolved_config(run, CPU) is run  # resolving twice changes nothing
    assert resolve_precision("auto", CPU) == torch.float32


def test_the_reuse_key_of_cpu_results_is_unchanged(monkeypatch):
    """"auto" is hashed as the fixed default it replaced, so stored results keep their keys
    (the hashes below are those of the code before device-aware defaults, at its training-code
    version 2)."""
    monkeypatch.setattr(config, "TRAINING_CODE_VERSION", 2)
    assert Config().hash() == "5b9d52ae03a95865"
    assert Config.of(unpad=True, sampling="length_buckets", pad_to_multiple_of=None,
                     compile=False, compile_mode="default").hash() == Config().hash()
    assert Config.of(model="tiny-bert", unpad=False, sampling="random").hash() == \
        "594733fd94972c90"
    assert Config.of(compile=True, pad_to_multiple_of=8).hash() == "e6c6b3a5ed9be6c3"
    assert Config.of(unpad=False).hash() != Config().hash()
    # a stored result's stale reason does not name "auto" against the value it stands for
    assert Config.of(unpad=True, seed=1).changes(Config()) == ["seed 1 -> 0"]


@pytest.mark.parametrize("value, message", [
    ("yes", "unpad = 'yes': expected true/false or one of 'auto'"),
    (None, "unpad = None: expected true/false or one of 'auto'"),
])
def test_a_bad_auto_setting_names_what_is_allowed(value, message):
    from bertft.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        Config.of(unpad=value)
    assert message in str(e.value)


@pytest.mark.parametrize("longest, multiple, max_length, width", [
    (5, None, 128, 5), (5, 32, 128, 32), (32, 32, 128, 32), (33, 32, 128, 64),
    (100, 32, 100, 100), (97, 32, 100, 100), (70, 16, 72, 72), (64, 16, 72, 64)])
def test_bucket_length(longest, multiple, max_length, width):
    assert auto.bucket_length(longest, multiple, max_length) == width


def test_bucket_lengths_are_the_shapes_a_run_compiles():
    assert auto.bucket_lengths(32, 128) == (32, 64, 96, 128)
    assert auto.bucket_lengths(32, 100) == (32, 64, 96, 100)
    assert auto.bucket_lengths(16, 40) == (16, 32, 40)


TEXTS = ["a fine film", "dull , slow and far too long for what it has to say about anything",
         "ok", "the best thing i have seen this year , truly", "bad", "not good at all",
         "good", "an utterly forgettable , overlong and joyless sequel", "meh", "loved it"]


def _toy() -> Splits:
    ex = tuple(Example(text=t, label=i % 2) for i, t in enumerate(TEXTS))
    return Splits("toy", "classification", ("neg", "pos"), ex, ex[:6], ex[:4], "test")


def _ner() -> Splits:
    words = ["john", "lives", "in", "paris", "and", "mary", "visited"]
    rows = tuple(Example(tokens=tuple(words[: 1 + i % 7]),
                         tags=tuple((j + i) % 3 for j in range(1 + i % 7))) for i in range(12))
    return Splits("toyner", "ner", ("O", "B-PER", "I-PER"), rows, rows[:4], rows[:4], "test")


def test_bucketed_widths_never_pass_max_length():
    cfg = Config.of(model="tiny-bert", max_length=20, pad_to_multiple_of=16)
    tok = load_tokenizer(cfg.model)
    feats = encode_splits(_toy(), tok, cfg.tokens).train
    collate = collator(tok, "classification", cfg.batch, 20)
    long, short = collate([feats[1]]), collate([feats[2]])
    assert long["input_ids"].shape[1] == 20  # 16 rounds up to 32, capped at max_length
    assert short["input_ids"].shape[1] == 16
    assert short["attention_mask"][0].tolist() == [1] * 3 + [0] * 13
    assert short["input_ids"][0, 3:].tolist() == [tok.pad_token_id] * 13




def _window_grads(splits: Splits, rows: int | None) -> tuple[dict, tuple[int, int], float]:
    """Gradients, counted (samples, tokens) and loss of one batch of the first 3 training
    examples, filled up to `rows` rows (None: as it is)."""
    tok, enc, model, forward = seeded_forward(splits, Config.of(**NO_DROPOUT, unpad=False))
    batch = forward.loader("train", train=False).collate_fn(enc.train[:3])
    if rows is not None:
        batch = graphs.fill_rows(batch, rows, tok.cls_token_id, tok.pad_token_id)
        assert batch["input_ids"].shape[0] == rows and graphs.fillers(batch) == rows - 3
    run = Running()
    counted = accumulate(model, forward, [batch], (None, None),
                         torch.amp.GradScaler("cpu", enabled=False), CPU, torch.float32, run)
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return grads, counted, run.loss()


@pytest.mark.parametrize("splits", [_toy, _ner], ids=["classification", "ner"])
def test_filler_rows_change_neither_loss_nor_gradients(splits):
    """A short last batch filled up to the fixed batch shape trains as the short batch."""
    data = splits()
    short, counted, loss = _window_grads(data, None)
    filled, counted_filled, loss_filled = _window_grads(data, 8)
    assert counted_filled == counted  # samples and real tokens: fillers not counted
    assert loss_filled == pytest.approx(loss, abs=1e-6)
    assert short.keys() == filled.keys() and len(short) > 10
    for name, g in short.items():
        torch.testing.assert_close(filled[name], g, atol=1e-6, rtol=1e-5, msg=name)


def test_a_fixed_batch_loader_gives_every_training_batch_the_same_rows():
    cfg = Config.of(model="tiny-bert", batch_size=4, max_length=32, pad_to_multiple_of=16,
                    unpad=False)
    tok = load_tokenizer(cfg.model)
    enc = encode_splits(_toy(), tok, cfg.tokens)
    fwd = frozen_prefix.FullForward(enc, tok, "classification", cfg, fixed_batch=True)
    batches = list(fwd.loader("train", train=True, seed=0))
    # the longest batch first, then the others; every width a bucket, every batch 4 rows
    assert [tuple(b["input_ids"].shape) for b in batches] == [(4, 32), (4, 16), (4, 16)]
    assert [graphs.fillers(b) for b in batches] == [0, 0, 2]
    assert batches[-1]["labels"][2:].tolist() == [-100, -100]
    assert [len(b["labels"]) for b in fwd.loader("validation", train=False)] == [6]


class _FakeCompile:
    """Counts compilations instead of compiling."""

    def __init__(self) -> None:
        self.targets: list[str] = []

    def __call__(self, mode: str, static: bool):
        def run(module: torch.nn.Module) -> None:
            self.targets.append(f"{type(module).__name__}:{mode}:{static}")
        return run


def test_a_second_trial_reuses_the_compiled_model_and_trains_as_a_fresh_one(monkeypatch):
    fake = _FakeCompile()
    monkeypatch.setattr(graphs, "PROCESS", graphs.StepReuse())
    monkeypatch.setattr(graphs, "compile_fn", fake)
    common = {**NO_DROPOUT, "epochs": 1, "batch_size": 4, "compile": True}
    first = fit(Config.of(**common, seed=0), splits=_toy())
    second = fit(Config.of(**common, seed=1), splits=_toy())
    assert fake.targets == ["BertForSequenceClassification:default:False"]  # compiled once
    assert graphs.PROCESS.compiles == 1
    assert first.model is second.model  # the same parameters: CUDA graphs replay on them
    assert (first.timing["compiled_model_reused"], second.timing["compiled_model_reused"]) == (
        0.0, 1.0)
    assert second.environment["resolved"]["compile"] is True
    alone = fit(Config.of(**{**common, "compile": False}, seed=1), splits=_toy())  # a fresh model
    assert [r["train_loss"] for r in second.history] == pytest.approx(
        [r["train_loss"] for r in alone.history], abs=1e-6)
    assert second.validation["loss"] == pytest.approx(alone.validation["loss"], abs=1e-6)
    frozen = fit(Config.of(**common, freeze_layers=1), splits=_toy())  # another frozen set
    assert frozen.model is not first.model and graphs.PROCESS.compiles == 2


def test_the_cuda_path_trains_as_the_eager_padded_path_on_the_cpu(monkeypatch):
    """The CUDA column's batching (widths bucketed, short batches filled, the compiled model
    kept) through the whole of `fit`, on the CPU: the CPU column is patched to ask for fixed
    batches and compiling is counted, not done. Same losses, samples and metrics as eager
    padded training of the same batches."""
    monkeypatch.setitem(auto.DEVICE_DEFAULTS["fixed_batch"], "cpu", True)
    monkeypatch.setattr(graphs, "PROCESS", graphs.StepReuse())
    monkeypatch.setattr(graphs, "compile_fn", _FakeCompile())
    common = {**NO_DROPOUT, "epochs": 2, "batch_size": 4, "unpad": False,
              "pad_to_multiple_of": 16}  # 10 rows: batches of 4, 4 and 2 (filled up to 4)
    graphed = fit(Config.of(**common, compile=True), splits=_toy())
    eager = fit(Config.of(**common, compile=False), splits=_toy())
    assert graphed.environment["resolved"]["fixed_batch"] is True
    assert graphed.timing["train_samples"] == eager.timing["train_samples"] == 20
    assert graphed.timing["train_tokens"] == eager.timing["train_tokens"]
    assert [r["train_loss"] for r in graphed.history] == pytest.approx(
        [r["train_loss"] for r in eager.history], abs=1e-6)
    assert [r["train_accuracy"] for r in graphed.history] == [
        r["train_accuracy"] for r in eager.history]
    assert graphed.validation["loss"] == pytest.approx(eager.validation["loss"], abs=1e-6)


def test_the_result_records_requested_and_resolved_settings(tmp_path):
    r = fit(Config.of(**NO_DROPOUT, epochs=1, batch_size=4), splits=_toy())
    assert r.environment["resolved"] == ON_CPU
    saved = r.metrics_json()
    assert saved["config"]["unpad"] == "auto" and saved["config"]["sampling"] == "auto"
    assert saved["environment"]["resolved"]["unpad"] is True
    assert "compile_seconds" not in r.timing  # eager runs keep their timing keys


def test_inductor_cache_goes_under_the_cache_folder_unless_set(tmp_path, monkeypatch):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    assert graphs.inductor_cache(tmp_path) == str(tmp_path / "inductor")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/elsewhere")
    assert graphs.inductor_cache(tmp_path) == "/elsewhere"
