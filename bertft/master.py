"""bf16 weights with fp32 master weights (`precision = "bf16-master"`): no weight casts per op.

Under bf16 autocast every op that reads a weight casts the fp32 weight to bf16, in every
forward (an H100 profile of a plain loop: `aten::copy_` 1.9 ms of a 24.6 ms step, issue 23).
With `bf16-master` the model's parameters, trainable and frozen, are held in bf16 and run
without autocast; the optimizer steps fp32 copies of the trainable ones (`MasterWeights`):

- gradients: before clipping (`Setup.optimizer_step` asks `grads`), the bf16 gradients that
  autograd accumulated over the window are copied into fp32 gradients of the masters (one
  foreach copy), and clipping and AdamW (its state fp32, as under autocast) see those;
- after each optimizer step the masters are copied into the bf16 parameters (one foreach copy,
  an optimizer step hook): one cast per parameter per step, not per op;
- the model's `state_dict()` holds the masters (fp32) and `load_state_dict` loads them too, so
  best weights (restore_best) and checkpoints keep fp32 values; at the end of `fit` the model
  is put back into fp32 from the masters (`finish`), so saved models are fp32 and `bertft eval`
  and `bertft predict` read them as they read any run's.

Numerics: what the bf16 model does, op by op. Matmuls and attention (SDPA) take bf16 inputs and
accumulate in fp32 inside their kernels, LayerNorm computes its statistics in fp32 inside the
kernel and returns bf16, GELU and dropout run in bf16; the logits are cast to fp32 for the loss
and for evaluation (`train.loss_fn`). Under autocast, LayerNorm and softmax outside SDPA ran in
fp32 on CUDA. Gradients accumulate in bf16 within an accumulation window (autograd sums into
the bf16 parameters' gradients). The frozen-prefix cache (`bertft.frozen`) computes its states
with the bf16 layers too; its key's weights hash reads the bf16 weights, so they are never
mixed up with states of an fp32 or autocast run.

Refused, with a message at setup (`dtypes`, before data or model are loaded): `compile` (a
compiled model is kept for later trials by a key that does not know its weights' dtype:
`bertft.graphs`) and gradual unfreezing (the unfrozen parameters would join the optimizer as
bf16 tensors). Whether `"auto"` should pick this precision on CUDA waits on the prepared GPU run
(`benchmarks.gpu`, long-text table).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from bertft import optim
from bertft.config import Config, OptimConfig
from bertft.errors import ConfigError
from bertft.runtime import resolve_precision
from bertft.sections import MASTER


class Plain:
    """Every precision but bf16-master: the optimizer steps the model's own parameters."""

    @staticmethod
    def grads(model: nn.Module) -> Iterable[torch.Tensor]:
        """The parameters whose gradients are clipped: the model's."""
        return model.parameters()

    @staticmethod
    def finish(model: nn.Module) -> nn.Module:
        return model


class MasterWeights:
    """fp32 masters of a model's parameters, which it casts to bf16, and of its optimizer's
    parameters, which it replaces by their masters (before any step: no state to move)."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        named = dict(model.named_parameters(remove_duplicate=False))
        self.masters = {n: p.detach().to(torch.float32, copy=True).requires_grad_(p.requires_grad)
                        for n, p in named.items()}
        by_id = {id(p): self.masters[n] for n, p in named.items()}
        for group in optimizer.param_groups:
            group["params"] = [by_id[id(p)] for p in group["params"]]
        stepped = {id(m) for g in optimizer.param_groups for m in g["params"]}
        pairs = [(p, self.masters[n]) for n, p in named.items() if id(self.masters[n]) in stepped]
        self.params, self.fp32 = [p for p, _ in pairs], [m for _, m in pairs]
        self.buffers = [torch.empty_like(m) for m in self.fp32]  # the masters' gradients
        model.to(torch.bfloat16)  # parameters keep their identity (the optimizer's hooks below)
        # public from torch 2.5, the private forms (same hook arguments) before; torch marks
        # a hook with an attribute, which a bound method cannot take: lambdas
        post = getattr(model, "register_state_dict_post_hook", model._register_state_dict_hook)
        pre = getattr(model, "register_load_state_dict_pre_hook", None) or functools.partial(
            model._register_load_state_dict_pre_hook, with_module=True)
        self.hooks = [post(lambda *a: self._state_dict(*a)),
                      pre(lambda *a: self._load_state_dict(*a)),
                      optimizer.register_step_post_hook(lambda *a: self._copy_back())]

    @torch.no_grad()
    def grads(self, model: nn.Module) -> list[torch.Tensor]:
        """Move the bf16 gradients into the masters' fp32 ones; returns the masters."""
        have = [i for i, p in enumerate(self.params) if p.grad is not None]
        torch._foreach_copy_([self.buffers[i] for i in have], [self.params[i].grad for i in have])
        for i in have:
            self.fp32[i].grad, self.params[i].grad = self.buffers[i], None
        return self.fp32

    @torch.no_grad()
    def _copy_back(self) -> None:
        torch._foreach_copy_(self.params, self.fp32)  # the one cast per step

    def _state_dict(self, module: nn.Module, state: dict[str, Any], prefix: str, *_: Any) -> None:
        for name, master in self.masters.items():
            state[prefix + name] = master.detach()

    @torch.no_grad()
    def _load_state_dict(self, module: nn.Module, state: dict[str, Any], prefix: str,
                         *_: Any) -> None:
        for name, master in self.masters.items():
            if prefix + name in state:
                master.copy_(state[prefix + name])

    def finish(self, model: nn.Module) -> nn.Module:
        """The model in fp32, holding the masters (the hooks removed): what is saved."""
        for hook in self.hooks:
            hook.remove()
        for name, p in model.named_parameters(remove_duplicate=False):
            p.data = self.masters[name].detach()
        return model.to(torch.float32)  # float buffers too


def problems(run: Config) -> list[str]:
    """What bf16-master cannot be combined with in `run` (the resolved config)."""
    out = []
    if run.runtime.compile:
        out.append(f"precision = '{MASTER}' with compile = true: a compiled model is kept for "
                   "later trials by a key that does not know its weights' dtype; use compile "
                   "= false, or precision = 'bf16'")
    if run.model.unfreeze_at_epoch:
        out.append(f"precision = '{MASTER}' with unfreeze_at_epoch = "
                   f"{run.model.unfreeze_at_epoch}: the unfrozen weights would join the "
                   "optimizer in bf16; use unfreeze_at_epoch = 0, or precision = 'bf16'")
    return out


def dtypes(run: Config, device: torch.device) -> tuple[torch.dtype, torch.dtype]:
    """(the dtype the math runs in, the dtype `runtime.autocast` gets) for a training run of
    `run` (the resolved config): the same one, except for bf16-master, whose bf16 weights run
    without autocast (fp32: no autocast). Refused combinations raise ConfigError here, before
    anything is loaded or built."""
    dtype = resolve_precision(run.runtime.precision, device)
    if run.runtime.precision != MASTER:
        return dtype, dtype
    if wrong := problems(run):
        raise ConfigError(wrong)
    return dtype, torch.float32


def build(model: nn.Module, cfg: OptimConfig, device: torch.device, precision: str
          ) -> tuple[torch.optim.Optimizer, Plain | MasterWeights]:
    """The run's AdamW (`optim.build_optimizer`) and the weights it steps: the model's own
    (`Plain`), or for `precision` bf16-master fp32 masters of the model's parameters, which
    become bf16 (`dtypes` has refused what this cannot be combined with)."""
    optimizer = optim.build_optimizer(model, cfg, device)
    if precision != MASTER:
        return optimizer, Plain()
    return optimizer, MasterWeights(model, optimizer)
