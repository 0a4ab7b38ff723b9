import pytest
import torch

from bertft import optim
from bertft.config import Config
from bertft.errors import ConfigError
from bertft.models import build_model, encoder_parts
from bertft.runtime import set_seed


def _model(n_labels=2):
    set_seed(0)
    return build_model(Config.of(model="tiny-bert").model, "classification",
                       tuple(f"c{i}" for i in range(n_labels)))


def test_freeze_bottom_layers_and_embeddings():
    model = _model()
    cfg = Config.of(freeze_layers=1, freeze_embeddings=True)
    frozen = optim.frozen_parameter_names(model, cfg.model)
    assert any(n.startswith("bert.embeddings.") for n in frozen)
    assert any(n.startswith("bert.encoder.layer.0.") for n in frozen)
    assert not any(n.startswith("bert.encoder.layer.1.") for n in frozen)
    assert not any(n.startswith(("classifier.", "bert.pooler.")) for n in frozen)


def test_freeze_all_leaves_only_the_head():
    model = _model()
    frozen = optim.frozen_parameter_names(model, Config.of(freeze_layers="all").model)
    trainable = {n for n, _ in model.named_parameters()} - frozen
    assert trainable == {"bert.pooler.dense.weight", "bert.pooler.dense.bias",
                         "classifier.weight", "classifier.bias"}


def test_freeze_more_layers_than_the_model_has_is_an_error():
    cfg = Config.of(model="tiny-bert", freeze_layers=5)
    with pytest.raises(ConfigError, match=r"freeze_layers = 5: model tiny-bert has 2 encoder "
                                          r"layers; allowed: 0\.\.2 or 'all'"):
        optim.frozen_parameter_names(_model(), cfg.model)


def test_groups_hold_head_and_layerwise_base_lrs_and_no_frozen_params():
    model = _model()
    cfg = Config.of(head_lr=1e-3, base_lr=1e-4, layer_lr_decay=0.5, freeze_layers=1,
                 weight_decay=0.1)
    optim.apply_freezing(model, optim.frozen_parameter_names(model, cfg.model))
    groups = {g["name"]: g for g in optim.param_groups(model, cfg.optim)}
    assert groups["head/decay"]["lr"] == 1e-3
    assert groups["layer1/decay"]["lr"] == 1e-4          # top layer: base_lr
    assert "layer0/decay" not in groups and "layer0/no_decay" not in groups
    assert groups["embeddings/decay"]["lr"] == pytest.approx(2.5e-5)  # 2 layers below the top
    frozen_ids = {id(p) for p in model.parameters() if not p.requires_grad}
    assert not frozen_ids & {id(p) for g in groups.values() for p in g["params"]}
    optim.apply_freezing(model, set())
    unfrozen = optim.param_groups(model, Config.of(base_lr=1e-4, layer_lr_decay=0.5).optim)
    lrs = {g["name"]: g["lr"] for g in unfrozen}
    assert lrs["layer0/decay"] == pytest.approx(5e-5)      # one layer down: x0.5
    assert lrs["embeddings/decay"] == pytest.approx(2.5e-5)  # below layer 0: x0.25


def test_no_weight_decay_on_biases_and_layernorm():
    model = _model()
    names = {id(p): n for n, p in model.named_parameters()}
    for g in optim.param_groups(model, Config.of(weight_decay=0.1).optim):
        for p in g["params"]:
            is_nd = names[id(p)].endswith("bias") or "LayerNorm" in names[id(p)]
            assert (g["weight_decay"] == 0.0) == is_nd, names[id(p)]


def test_frozen_parameters_have_no_optimizer_state_after_a_step():
    model = _model()
    cfg = Config.of(freeze_layers=1, freeze_embeddings=True)
    frozen = optim.frozen_parameter_names(model, cfg.model)
    optim.apply_freezing(model, frozen)
    opt = optim.build_optimizer(model, cfg.optim, torch.device("cpu"))
    out = model(input_ids=torch.tensor([[101, 2000, 102]])).logits.sum()
    out.backward()
    opt.step()
    named = dict(model.named_parameters())
    assert all(named[n].grad is None for n in frozen)
    assert all(named[n] not in opt.state for n in frozen)


def test_unfreeze_adds_groups_for_the_frozen_parameters():
    model = _model()
    cfg = Config.of(freeze_layers=2)
    frozen = optim.frozen_parameter_names(model, cfg.model)
    optim.apply_freezing(model, frozen)
    opt = optim.build_optimizer(model, cfg.optim, torch.device("cpu"))
    before = sum(len(g["params"]) for g in opt.param_groups)
    optim.unfreeze(model, opt, cfg.optim, frozen)
    assert sum(len(g["params"]) for g in opt.param_groups) == before + len(frozen)
    assert all(p.requires_grad for p in model.parameters())


def test_lr_schedule_warmup_then_linear_decay():
    f = [optim.lr_factor(s, warmup=2, total=6, schedule="linear") for s in range(6)]
    assert f == pytest.approx([0.5, 1.0, 1.0, 0.75, 0.5, 0.25])
    assert optim.lr_factor(3, 0, 4, "constant") == 1.0
    assert optim.warmup_steps(Config.of(warmup_ratio=0.1).optim, 95) == 10


def test_accumulation_boundaries_include_the_short_last_window():
    from bertft.train import accumulation_windows

    assert list(accumulation_windows(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert optim.steps_per_epoch(7, 3) == 3


def test_balanced_class_weights():
    w = optim.class_weights([0, 0, 0, 1], 3)
    assert w.tolist() == pytest.approx([4 / 9, 4 / 3, 0.0])


def test_encoder_parts_finds_layers():
    assert len(encoder_parts(_model()).layers) == 2
