"""Freezing, optimizer parameter groups and the LR schedule: small pure functions.

Frozen parameters get no gradient (requires_grad=False), no weight decay and no optimizer state:
they are simply absent from the optimizer until gradual unfreezing adds them.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from bertft.config import ModelConfig, OptimConfig
from bertft.models import parameter_roles


def frozen_parameter_names(model: nn.Module, cfg: ModelConfig) -> set[str]:
    """Names of the parameters the config freezes (embeddings and/or the bottom K layers).

    Freezing every layer ('all') freezes the embeddings too: only the head trains.
    """
    roles = parameter_roles(model)
    n_layers = 1 + max((i for r, i in roles.values() if r == "layer"), default=-1)
    freezing = cfg.freezing(n_layers)
    return {
        name for name, (role, idx) in roles.items()
        if (role == "embeddings" and freezing.embeddings)
        or (role == "layer" and idx is not None and idx < freezing.layers)
    }


def apply_freezing(model: nn.Module, frozen: set[str]) -> None:
    for name, p in model.named_parameters():
        p.requires_grad_(name not in frozen)


def no_decay(name: str, param: torch.Tensor) -> bool:
    """Biases and LayerNorm weights (all 1-D tensors) get no weight decay."""
    return param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name


def param_groups(model: nn.Module, cfg: OptimConfig, names: set[str] | None = None
                 ) -> list[dict[str, Any]]:
    """AdamW groups for the trainable parameters (or the given names), one per (part, decay).

    LRs: head (classifier and pooler) `head_lr`; encoder layer i of N
    `base_lr * layer_lr_decay ** (N - 1 - i)`; embeddings `base_lr * layer_lr_decay ** N`.
    Each group keeps its peak LR under `initial_lr`; the schedule scales it every step.
    """
    roles = parameter_roles(model)
    n_layers = 1 + max((i for r, i in roles.values() if r == "layer"), default=-1)
    buckets: dict[tuple[str, bool], list[torch.Tensor]] = {}
    lrs: dict[str, float] = {}
    for name, p in model.named_parameters():
        if (names is None and not p.requires_grad) or (names is not None and name not in names):
            continue
        role, idx = roles[name]
        if role == "head":
            part, lr = "head", cfg.head_lr
        elif role == "layer":
            part, lr = f"layer{idx}", cfg.base_lr * cfg.layer_lr_decay ** (n_layers - 1 - idx)
        else:
            part, lr = "embeddings", cfg.base_lr * cfg.layer_lr_decay ** n_layers
        lrs[part] = lr
        buckets.setdefault((part, no_decay(name, p)), []).append(p)
    return [
        {"name": f"{part}/{'no_decay' if nd else 'decay'}", "params": params,
         "lr": lrs[part], "initial_lr": lrs[part], "weight_decay": 0.0 if nd else cfg.weight_decay}
        for (part, nd), params in buckets.items()
    ]


def optimizer_impl(cfg: OptimConfig, device: torch.device) -> str:
    """The AdamW implementation a run uses: `optimizer_impl`, with auto resolved to fused on
    CUDA and CPU (one kernel per step on CUDA, the fastest path on CPU too; what the HF Trainer
    uses by default) and foreach elsewhere."""
    if cfg.optimizer_impl != "auto":
        return cfg.optimizer_impl
    return "fused" if device.type in ("cuda", "cpu") else "foreach"


def build_optimizer(model: nn.Module, cfg: OptimConfig, device: torch.device) -> torch.optim.AdamW:
    impl = optimizer_impl(cfg, device)
    return torch.optim.AdamW(param_groups(model, cfg), lr=cfg.base_lr,
                             betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_eps,
                             fused=impl == "fused", foreach=impl == "foreach")


def unfreeze(model: nn.Module, optimizer: torch.optim.Optimizer, cfg: OptimConfig,
             frozen: set[str]) -> None:
    """Gradual unfreezing: make the frozen parameters trainable and add their groups."""
    apply_freezing(model, set())
    for group in param_groups(model, cfg, names=frozen):
        optimizer.add_param_group(group)


def warmup_steps(cfg: OptimConfig, total_steps: int) -> int:
    return cfg.warmup_steps or math.ceil(cfg.warmup_ratio * total_steps)


def lr_factor(step: int, warmup: int, total: int, schedule: str) -> float:
    """Multiplier of the peak LR for optimizer step `step` (0-based): linear warmup, then
    linear decay to 0 at `total` (or constant)."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    return max(0.0, (total - step) / max(1, total - warmup))


def set_lr(optimizer: torch.optim.Optimizer, factor: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] * factor


def steps_per_epoch(n_batches: int, accum: int) -> int:
    return math.ceil(n_batches / accum)


def class_weights(labels: list[int], n_classes: int) -> torch.Tensor:
    """'balanced' weights n_samples / (n_classes * count); unseen classes get weight 0."""
    counts = torch.bincount(torch.tensor(labels, dtype=torch.long), minlength=n_classes).float()
    weights = len(labels) / (n_classes * counts.clamp(min=1))
    return torch.where(counts > 0, weights, torch.zeros_like(weights))
