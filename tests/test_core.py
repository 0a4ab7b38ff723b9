"""Unit tests of the core on the tiny random BERT: seconds each, no real model."""

import json
import warnings
from pathlib import Path

import pytest
import torch

from bertft.cache import Cache
from bertft.cli import main
from bertft.config import Config
from bertft.data import Example, Splits
from bertft.features import IGNORE_INDEX, align_labels, encode_splits, make_loader
from bertft.models import build_model, load_tokenizer
from bertft.predict import Predictor, bio_spans
from bertft.runtime import resolve_device, resolve_precision, set_seed
from bertft.train import fit

TINY = {"model": "tiny-bert", "progress": False, "max_length": 32}


def toy_splits(n: int = 96) -> Splits:
    """A learnable toy task: the label is whether the text mentions 'good'."""
    words = ["movie", "plot", "actor", "scene", "music", "story", "ending", "cast"]
    rows = []
    for i in range(n):
        label = i % 2
        text = f"the {words[i % 8]} was {'good' if label else 'bad'} and {words[(i * 3) % 8]}"
        rows.append(Example(text=text, label=label))
    return Splits("toy", "classification", ("neg", "pos"), tuple(rows[: n - 32]),
                  tuple(rows[n - 32: n - 16]), tuple(rows[n - 16:]), "generated")


def toy_ner() -> Splits:
    rows = [Example(tokens=("john", "lives", "in", "paris"), tags=(1, 0, 0, 3)),
            Example(tokens=("mary", "visited", "new", "york"), tags=(1, 0, 3, 4))] * 12
    names = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
    return Splits("toyner", "ner", names, tuple(rows[:16]), tuple(rows[16:20]),
                  tuple(rows[20:]), "generated")


def test_device_and_precision_resolution_on_cpu(monkeypatch):
    for cuda, mps, want in ((True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")):
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda mps=mps: mps)
        assert resolve_device("auto") == torch.device(want)
    monkeypatch.undo()
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_precision("auto", torch.device("cpu")) == torch.float32
    assert resolve_precision("bf16", torch.device("cpu")) == torch.bfloat16


def test_ner_labels_go_to_the_first_word_piece_only():
    #            [CLS] new  york  -ers  city [SEP]
    word_ids = [None, 0, 1, 1, 2, None]
    assert align_labels(word_ids, (3, 4, 0), all_subtokens=False) == \
        [IGNORE_INDEX, 3, 4, IGNORE_INDEX, 0, IGNORE_INDEX]
    assert align_labels(word_ids, (3, 4, 0), all_subtokens=True) == \
        [IGNORE_INDEX, 3, 4, 4, 0, IGNORE_INDEX]


def test_ner_alignment_with_the_real_tokenizer():
    cfg = Config.of(**TINY)
    tok = load_tokenizer(cfg.model)
    splits = toy_ner()
    enc = encode_splits(splits, tok, cfg.tokens)
    feat = enc.train[1]  # mary visited new york
    pieces = tok.convert_ids_to_tokens(feat["input_ids"])
    labelled = [(p, t) for p, t in zip(pieces, feat["labels"], strict=True) if t != IGNORE_INDEX]
    assert labelled == [("mary", 1), ("visited", 0), ("new", 3), ("york", 4)]


def test_dynamic_padding_pads_to_the_longest_in_the_batch_and_max_length_to_max_length():
    splits = toy_splits()
    tok = load_tokenizer(Config.of(**TINY).model)
    for padding, multiple in (("dynamic", None), ("dynamic", 8), ("max_length", None)):
        cfg = Config.of(**TINY, padding=padding, pad_to_multiple_of=multiple, eval_batch_size=4)
        enc = encode_splits(splits, tok, cfg.tokens)
        batch = next(iter(make_loader(enc.validation, tok, "classification", cfg.batch,
                                      cfg.tokens.max_length, train=False)))
        longest = max(len(f["input_ids"]) for f in enc.validation[:4])
        width = batch["input_ids"].shape[1]
        if padding == "max_length":
            assert width == 32
        elif multiple:
            assert width % 8 == 0 and longest <= width < longest + 8
        else:
            assert width == longest
        assert batch["attention_mask"].sum(1).tolist() == \
            [len(f["input_ids"]) for f in enc.validation[:4]]


def test_training_order_is_seeded():
    splits = toy_splits()
    cfg = Config.of(**TINY, batch_size=8)
    tok = load_tokenizer(cfg.model)
    enc = encode_splits(splits, tok, cfg.tokens)
    first = [next(iter(make_loader(enc.train, tok, "classification", cfg.batch,
                                   cfg.tokens.max_length, train=True, seed=s)))
             ["input_ids"].tolist() for s in (1, 1, 2)]
    assert first[0] == first[1] != first[2]


def test_loss_goes_down_and_the_toy_task_is_learned():
    result = fit(Config.of(**TINY, epochs=6, batch_size=8, head_lr=3e-3, base_lr=3e-3,
                        save_model=False), splits=toy_splits())
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < losses[0] * 0.5
    assert result.validation["accuracy"] == 1.0


def test_frozen_parameters_are_unchanged_after_training():
    cfg = Config.of(**TINY, epochs=2, batch_size=8, freeze_layers=1, freeze_embeddings=True,
                 head_lr=3e-3, base_lr=3e-3)
    set_seed(cfg.loop.seed)
    before = {k: v.clone() for k, v in build_model(cfg.model, "classification", ("neg", "pos"))
              .state_dict().items()}
    after = fit(cfg, splits=toy_splits()).model.state_dict()
    for name, value in after.items():
        frozen = name.startswith(("bert.embeddings.", "bert.encoder.layer.0."))
        if name.endswith("position_ids"):
            continue
        assert torch.equal(before[name], value.cpu()) == frozen, name


def test_gradual_unfreezing_trains_the_frozen_layers_from_its_epoch():
    cfg = Config.of(**TINY, epochs=2, batch_size=8, freeze_layers="all", unfreeze_at_epoch=2,
                 head_lr=3e-3, base_lr=3e-3, restore_best=False)
    set_seed(cfg.loop.seed)
    before = build_model(cfg.model, "classification", ("neg", "pos")).state_dict()
    after = fit(cfg, splits=toy_splits()).model.state_dict()
    name = "bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(before[name], after[name].cpu())


def test_same_seed_same_metrics_and_another_seed_differs():
    cfg = Config.of(**TINY, epochs=1, batch_size=8, save_model=False)
    a, b = fit(cfg, splits=toy_splits()), fit(cfg, splits=toy_splits())
    c = fit(Config.of(**TINY, save_model=False, epochs=1, batch_size=8, seed=1),
            splits=toy_splits())
    assert a.history[0]["train_loss"] == b.history[0]["train_loss"]
    assert a.validation == b.validation
    assert a.history[0]["train_loss"] != c.history[0]["train_loss"]


def scripted_validation(monkeypatch, metric: str, values: list[float]) -> list[dict]:
    """The first len(values) evaluations (validation during training) report `values` for
    `metric`; returns the weights each of them saw. Later evaluations are untouched."""
    from bertft import train

    real = train.evaluate
    seen: list[dict] = []

    def scripted(model, loader, *args, **kwargs):
        metrics, preds = real(model, loader, *args, **kwargs)
        if len(seen) < len(values):
            seen.append({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
            metrics = {**metrics, metric: values[len(seen) - 1]}
        return metrics, preds

    monkeypatch.setattr(train, "evaluate", scripted)
    return seen


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k].cpu()) for k in a)


def test_early_stopping_stops_after_patience_and_restores_the_best_weights(monkeypatch):
    seen = scripted_validation(monkeypatch, "accuracy", [0.5, 0.9, 0.6, 0.4])
    cfg = Config.of(**TINY, epochs=8, batch_size=8, early_stopping_patience=2,
                 metric_for_best="accuracy", save_model=False)
    result = fit(cfg, splits=toy_splits())
    assert [r["val_accuracy"] for r in result.history] == [0.5, 0.9, 0.6, 0.4]  # then stopped
    assert result.best == {"metric": "accuracy", "value": 0.9, "epoch": 2, "step": 16}
    weights = result.model.state_dict()
    assert same_weights(seen[1], weights) and not same_weights(seen[3], weights)


def test_loss_as_metric_for_best_keeps_the_lowest_validation_loss(monkeypatch):
    losses = [1.0, 0.8, 0.9, 0.7, 0.75, 0.85]
    seen = scripted_validation(monkeypatch, "loss", losses)
    cfg = Config.of(**TINY, epochs=8, batch_size=8, early_stopping_patience=2,
                 metric_for_best="loss", save_model=False)
    result = fit(cfg, splits=toy_splits())
    # 0.9 and 0.75 do not improve; the second miss in a row (0.85) stops the run
    assert [r["val_loss"] for r in result.history] == losses
    assert result.best == {"metric": "loss", "value": 0.7, "epoch": 4, "step": 32}
    assert same_weights(seen[3], result.model.state_dict())


def test_history_records_throughput_and_eval_steps():
    result = fit(Config.of(**TINY, epochs=1, batch_size=8, eval_steps=4, save_model=False),
                 splits=toy_splits())
    assert [r["step"] for r in result.history] == [4, 8]
    row = result.history[-1]
    assert row["samples_per_s"] > 0 and row["tokens_per_s"] > row["samples_per_s"]
    assert result.timing["train_samples"] == 64


def test_gradient_accumulation_takes_fewer_optimizer_steps():
    result = fit(Config.of(**TINY, epochs=1, batch_size=8, grad_accum_steps=3, save_model=False),
                 splits=toy_splits())
    assert result.timing["optimizer_steps"] == 3  # 8 micro-batches: windows of 3, 3, 2


def test_save_and_load_give_identical_predictions(tmp_path):
    cfg = Config.of(**TINY, epochs=1, batch_size=8)
    result = fit(cfg, splits=toy_splits(), out_dir=tmp_path)
    texts = ["the movie was good and plot", "the actor was bad and cast"]
    enc = result.tokenizer(texts, padding=True, return_tensors="pt").to(result.model.device)
    result.model.eval()
    with torch.no_grad():
        expected = result.model(**enc).logits.softmax(-1)
    pred = Predictor.from_run(tmp_path, device="cpu").predict(texts)
    for row, probs in zip(pred, expected, strict=True):
        assert [row["probabilities"][n] for n in ("neg", "pos")] == \
            pytest.approx(probs.tolist(), abs=1e-6)
        assert row["label"] == ("neg", "pos")[int(probs.argmax())]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics) >= {"validation", "test", "history"}
    assert {"accuracy", "f1_macro"} <= set(metrics["validation"])


def test_ner_run_predicts_entity_spans_with_character_offsets(tmp_path):
    cfg = Config.of(**TINY, epochs=12, batch_size=4, head_lr=1e-2, base_lr=1e-2)
    result = fit(cfg, splits=toy_ner(), out_dir=tmp_path)
    assert {"f1", "precision", "recall"} <= set(result.validation)
    out = Predictor.from_run(tmp_path, device="cpu").predict(["john lives in paris"])[0]
    assert out["entities"]
    for ent in out["entities"]:
        assert out["text"][ent["start"]:ent["end"]] == ent["text"]
        assert 0 < ent["score"] <= 1


def test_label_all_subtokens_trains_on_every_piece_but_scores_words():
    rows = [Example(tokens=("johnathanovich", "lives", "in", "parisville"), tags=(1, 0, 0, 3)),
            Example(tokens=("mary", "visited", "new", "york"), tags=(1, 0, 3, 4))] * 12
    splits = Splits("toyner", "ner", ("O", "B-PER", "I-PER", "B-LOC", "I-LOC"),
                    tuple(rows[:16]), tuple(rows[16:20]), tuple(rows[20:]), "generated")
    cfg = Config.of(**TINY, label_all_subtokens=True, epochs=1, batch_size=4, save_model=False)
    enc = encode_splits(splits, load_tokenizer(cfg.model), cfg.tokens)
    labelled = [sum(t != IGNORE_INDEX for t in f["labels"]) for f in (enc.train[0],
                                                                      enc.validation[0])]
    assert labelled == [7, 4]  # john ##athan ##ovich lives in paris ##ville; one per word
    result = fit(cfg, splits=splits)
    assert [len(g) for g in result.predictions["validation"]["label"]] == [4] * 4
    # two entities per sentence, as words; per piece "B-PER B-PER B-PER" would count three
    assert sum(t["support"] for t in result.validation["per_type"].values()) == 2 * 4


def test_bio_spans_groups_words_into_entities():
    text = "Ann met Bob Lee in Rome"
    spans = [(0, 3), (4, 7), (8, 11), (12, 15), (16, 18), (19, 23)]
    tags = [("B-PER", 0.9), ("O", 0.9), ("B-PER", 0.8), ("I-PER", 0.6), ("O", 1.0),
            ("I-LOC", 0.7)]
    assert bio_spans(tags, spans, text) == [
        {"type": "PER", "text": "Ann", "start": 0, "end": 3, "score": 0.9},
        {"type": "PER", "text": "Bob Lee", "start": 8, "end": 15, "score": pytest.approx(0.7)},
        {"type": "LOC", "text": "Rome", "start": 19, "end": 23, "score": 0.7},
    ]


def test_cli_train_writes_metrics_and_predict_reads_the_run(tmp_path, capsys):
    data = tmp_path / "toy.csv"
    rows = ["text,label"] + [f"the film was {'good' if i % 2 else 'bad'} {i},"
                             f"{'pos' if i % 2 else 'neg'}" for i in range(60)]
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    code = main(["train", "--out", str(out), "--model", "tiny-bert", "--task", "text-file",
                 "--train-file", str(data), "--epochs", "1", "--set", "progress=false",
                 "--set", "max_length=16"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["train_file"] == str(data)
    assert metrics["data"]["label_names"] == ["neg", "pos"]
    assert (out / "model.safetensors").is_file()
    capsys.readouterr()
    assert main(["predict", str(out), "the film was good"]) == 0
    row = json.loads(capsys.readouterr().out.strip())
    assert row["label"] in ("neg", "pos") and sum(row["probabilities"].values()) == \
        pytest.approx(1.0)


def test_cli_inspect_counts_frozen_parameters(capsys):
    assert main(["inspect", "tiny-bert", "--freeze-layers", "all"]) == 0
    out = capsys.readouterr().out
    assert "encoder layers: 2" in out and "hidden size: 32" in out
    total = build_model(Config.of(model="tiny-bert").model, "classification", ("a", "b"))
    n = sum(p.numel() for p in total.parameters())
    assert f"total {n:,}" in out
    assert "trainable 1,122 " in out or "trainable 1,122" in out  # pooler 32*32+32 + head 66


def test_cli_usage_errors_exit_2_with_one_message(capsys):
    assert main(["train", "--out", "x", "--set", "bach_size=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bertft: error: --set: 1 problem:")
    assert "did you mean batch_size" in err and "Traceback" not in err


def test_predict_file_that_is_a_folder_or_not_utf8_exits_2_with_one_message(tmp_path, capsys):
    latin1 = tmp_path / "texts.txt"
    latin1.write_bytes(b"caf\xe9\n")
    expected = "a UTF-8 text file, one text per line"
    for path, problem in ((tmp_path, "is a directory"),
                          (latin1, "cannot read ('utf-8' codec can't decode byte 0xe9 in "
                                   "position 3: invalid continuation byte)")):
        assert main(["predict", "RUN", "--file", str(path)]) == 2
        assert capsys.readouterr().err == \
            f"bertft: error: --file {path}: {problem}; expected {expected}\n"


@pytest.mark.parametrize("content, problem", [
    (b"[1, 2]", "expected a JSON object, found list"),
    (b'{"config": [], "kind": "ner", "label_names": ["O"]}',
     "'config' is list; expected an object of settings"),
    (b'{"config": {}, "kind": "ner"}', "missing key label_names"),
    (b'{"config": {}, "kind": "ner", "label_names": "O"}',
     "'label_names' must be a list of strings"),
    (b'{"config": {}, "kind": "\xe9"}',
     "unreadable ('utf-8' codec can't decode byte 0xe9 in position 24: invalid continuation "
     "byte)"),
])
def test_a_damaged_run_config_is_one_clear_error(tmp_path, content, problem):
    from bertft.errors import BertftError
    from bertft.rundir import CONFIG_FILE, read_run_config

    (tmp_path / CONFIG_FILE).write_bytes(content)
    with pytest.raises(BertftError) as e:
        read_run_config(tmp_path)
    assert str(e.value) == f"{tmp_path / CONFIG_FILE}: {problem}; the run directory is damaged"


@pytest.mark.parametrize("argv, specs, pytest_args", [
    (["-n", "2", "ablations/ner.toml"], ["ablations/ner.toml"], ["-n", "2"]),
    (["ablations/ner.toml", "-n", "2", "-x"], ["ablations/ner.toml"], ["-n", "2", "-x"]),
    (["--ray-num-gpus", "2", "-n", "2", "a.toml", "--lf"], ["a.toml"], ["-n", "2", "--lf"]),
    (["-n", "auto"], [], ["-n", "auto"]),
])
def test_ablate_passes_pytest_options_through_before_or_after_the_specs(argv, specs,
                                                                         pytest_args):
    from bertft.cli import ablate_argv, build_parser, split_pytest_args

    argv = ["ablate", *argv]
    args, extra = build_parser().parse_known_args(argv)
    got_specs, got_pytest = split_pytest_args(argv, args.specs, extra)
    assert (got_specs, got_pytest) == (specs, pytest_args)
    if specs:  # specs first, pytest's own arguments last
        args.specs = got_specs
        out = ablate_argv(args, got_pytest)
        assert out[:len(specs) + 1] == [*specs, "--bertft-results"]
        assert out[-len(pytest_args):] == pytest_args


def test_ablate_rejects_a_positional_that_is_neither_a_spec_nor_an_option_value(capsys):
    assert main(["ablate", "--results", "out", "2", "a.toml"]) == 2
    assert capsys.readouterr().err == ("bertft: error: ablate: '2' is not a spec (a .toml file "
                                       "or a folder of them) nor the value of a pytest option\n")


def test_deterministic_setting_does_not_leak_into_later_runs():
    small = toy_splits(40)
    try:
        fit(Config.of(**TINY, epochs=1, batch_size=8, save_model=False, deterministic=True), small)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic
        fit(Config.of(**TINY, epochs=1, batch_size=8, save_model=False), small)
        assert not torch.are_deterministic_algorithms_enabled()
        assert not torch.backends.cudnn.deterministic
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False


def _full_disk(obj, f):
    Path(f).write_bytes(b"partial")  # torch.save had begun writing
    raise RuntimeError("PytorchStreamWriter failed writing file data: No space left on device")


def test_a_failed_tokenization_cache_write_warns_once_and_the_run_goes_on(tmp_path,
                                                                          monkeypatch):

    monkeypatch.setattr(torch, "save", _full_disk)
    monkeypatch.setenv("BERTFT_CACHE_DIR", str(tmp_path))
    cache = Cache()
    cfg = Config.of(**TINY)
    tok = load_tokenizer(cfg.model)
    with pytest.warns(RuntimeWarning, match=r"^tokenization cache: cannot write .*\.pt "
                      r"\(RuntimeError: PytorchStreamWriter .*\); continuing without"):
        enc = encode_splits(toy_splits(), tok, cfg.tokens, cache)
    assert len(enc.train) == 64
    assert list(tmp_path.rglob("*")) == [tmp_path / "tokenized"]  # no partial file left
    assert encode_splits(toy_splits(), tok, cfg.tokens, cache) is enc  # kept in memory
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second failure for the same cache is silent
        encode_splits(toy_splits(48), tok, cfg.tokens, cache)


def test_a_failed_checkpoint_write_raises_and_leaves_no_partial_file(tmp_path, monkeypatch):
    from bertft import checkpoint

    monkeypatch.setattr(torch, "save", _full_disk)
    with pytest.raises(RuntimeError, match="No space left on device"):
        checkpoint.save(tmp_path, {"epoch": 1})
    assert list(tmp_path.iterdir()) == []


def test_a_run_interrupted_after_an_epoch_resumes_from_its_checkpoint(tmp_path):
    cfg = Config.of(**TINY, epochs=3, batch_size=8, checkpoint_every_epoch=True, save_model=False)
    clean = fit(cfg, splits=toy_splits())

    def interrupt(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt  # killed during epoch 2's evaluation
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, splits=toy_splits(), checkpoint_dir=tmp_path, on_log=interrupt)
    assert (tmp_path / "checkpoint.pt").is_file()
    epochs_run = []
    resumed = fit(cfg, splits=toy_splits(), checkpoint_dir=tmp_path,
                  on_log=lambda row: epochs_run.append(row["epoch"]))
    assert epochs_run == [2, 3]  # epoch 1 came from the checkpoint
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in clean.history]
    assert resumed.validation == clean.validation
    assert not (tmp_path / "checkpoint.pt").exists()  # removed once the run completes


def test_running_sums_stay_on_the_device_until_read():
    from bertft.state import Running

    run = Running()
    assert run.summary() == {"train_loss": 0.0, "train_accuracy": 0.0}
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    run.add(torch.tensor(0.5), logits, torch.tensor([0, 0, -100]))  # -100: not counted
    run.add(torch.tensor(1.5), logits[:1], torch.tensor([0]))
    assert isinstance(run.loss_sum, torch.Tensor)  # no float() per step: no GPU sync
    assert run.loss() == 2.0
    assert run.summary() == {"train_loss": 1.0, "train_accuracy": 2 / 3}


def test_final_validation_reuses_the_last_evaluation_of_the_same_weights(monkeypatch):
    from bertft import train

    calls = []
    real = train.evaluate

    def counting(model, loader, *args, **kwargs):
        calls.append(len(loader.dataset))
        return real(model, loader, *args, **kwargs)

    monkeypatch.setattr(train, "evaluate", counting)
    splits = toy_splits()
    cfg = Config.of(**TINY, epochs=2, batch_size=8, restore_best=False)
    result = fit(cfg, splits=splits)
    n_val, n_test = len(splits.validation), len(splits.test)
    assert calls == [n_val, n_val, n_test]  # one per epoch, then the test split only
    assert result.validation["accuracy"] == result.history[-1]["val_accuracy"]


def test_compiled_training_learns_and_compiles_a_few_graphs_not_one_per_batch_width():
    """`compile = true` (inductor on the CPU here): padded widths bucketed by
    pad_to_multiple_of, and after the second width torch.compile switches to dynamic shapes,
    so five or more widths cost at most three graphs; state_dict keys stay
    plain (no `_orig_mod.`)."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    words = ["movie", "plot", "actor", "scene", "music", "story", "ending", "cast"]
    rows = [Example(text=f"the {words[i % 8]} was {'good' if i % 2 else 'bad'} "
                    + " ".join(words[(i * j) % 8] for j in range(i % 53)), label=i % 2)
            for i in range(112)]
    splits = Splits("toy", "classification", ("neg", "pos"), tuple(rows[:96]),
                    tuple(rows[96:104]), tuple(rows[104:]), "generated")
    cfg = Config.of(**{**TINY, "max_length": 64}, epochs=6, batch_size=8, head_lr=3e-3,
                 base_lr=3e-3, save_model=False, compile=True, pad_to_multiple_of=8,
                 sampling="group_by_length")
    tok = load_tokenizer(cfg.model)
    loader = make_loader(encode_splits(splits, tok, cfg.tokens).train, tok, "classification",
                         cfg.batch, cfg.tokens.max_length, train=True, seed=cfg.loop.seed)
    widths = {b["input_ids"].shape[1] for b in loader}
    assert len(widths) >= 5 and all(w % 8 == 0 for w in widths)
    torch._dynamo.reset()
    counters.clear()
    result = fit(cfg, splits=splits)
    assert 1 <= counters["stats"]["unique_graphs"] <= 3
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < losses[0] * 0.5
    assert result.validation["accuracy"] == 1.0
    assert not any("_orig_mod" in k for k in result.model.state_dict())
    torch._dynamo.reset()
