"""The training loop, evaluation and the run directory.

`fit(cfg)` is the whole pipeline: load data -> tokenize -> build model -> freeze -> train with
evaluation and early stopping -> restore best -> test -> (save). Classification and NER share it.
Frozen layers run in eval mode (no dropout). When the embeddings and the bottom K layers are
frozen for the whole run, `bertft.frozen` computes their outputs once and batches carry those
states instead of token ids (see its docstring); the loop is the same either way.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from bertft import checkpoint, optim
from bertft import frozen as frozen_prefix
from bertft.config import Config
from bertft.data import Splits, load_task
from bertft.errors import ConfigError, TrialDiverged
from bertft.features import IGNORE_INDEX, Encoded, encode_splits
from bertft.frozen import forward_logits
from bertft.metrics import (
    SCALAR_METRICS, best_metric_name, classification_metrics, improves, metric_problem,
    ner_metrics, worst_value,
)
from bertft.limits import max_length_problems
from bertft.models import build_model, load_tokenizer
from bertft.progress import StepLog
from bertft.runtime import (
    autocast, configure_determinism, configure_threads, environment, peak_memory_mb,
    reset_peak_memory, resolve_device, resolve_precision, set_seed, synchronize,
)


@dataclass
class RunResult:
    """What a run produced; `metrics_json()` is the CLI's metrics.json contract."""

    config: Config
    kind: str
    label_names: tuple[str, ...]
    validation: dict[str, Any]
    test: dict[str, Any]
    history: list[dict[str, Any]]
    best: dict[str, Any]
    timing: dict[str, float]
    environment: dict[str, Any]
    data: dict[str, Any]
    predictions: dict[str, dict[str, list]] = field(default_factory=dict)
    model: nn.Module | None = None
    tokenizer: Any = None

    def metrics_json(self) -> dict[str, Any]:
        return {"validation": self.validation, "test": self.test, "history": self.history,
                "best": self.best, "timing": self.timing, "data": self.data,
                "environment": self.environment, "config": self.config.to_dict()}


def loss_fn(logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None,
            reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy in fp32 over classes (or tokens, -100 ignored for NER)."""
    return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), labels.view(-1),
                           weight=weight, ignore_index=IGNORE_INDEX, reduction=reduction)


def loss_denominator(labels: torch.Tensor, weight: torch.Tensor | None) -> float:
    """What `F.cross_entropy`'s mean divides by: the labelled examples (word pieces for NER),
    or the sum of their class weights. Read from the host copy of the labels: no device sync."""
    labels = labels[labels != IGNORE_INDEX]
    return float(weight[labels].sum()) if weight is not None else float(labels.numel())


def accumulate(model: nn.Module, forward: frozen_prefix.Forward,
               window: list[dict[str, torch.Tensor]],
               weights: tuple[torch.Tensor | None, torch.Tensor | None],
               scaler: torch.amp.GradScaler, device: torch.device, dtype: torch.dtype,
               run: _Running) -> tuple[int, int]:
    """Backward through one accumulation window; returns its examples and real tokens.

    The window's loss is the mean over all its examples (labelled tokens for NER; class weights
    as `F.cross_entropy`'s weighted mean counts them), as if it were one batch: each micro-batch
    adds its summed loss divided by the window's denominator, so a short window (the end of an
    epoch) or micro-batches with few labelled tokens get the gradient one batch would."""
    host_weight, weight = weights
    total = max(sum(loss_denominator(b["labels"], host_weight) for b in window), 1e-12)
    samples = tokens = 0
    for batch in window:
        samples += batch["labels"].shape[0]
        tokens += forward.tokens(batch)  # counted on the host copy: no device sync
        own = max(loss_denominator(batch["labels"], host_weight), 1e-12)
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        with autocast(device, dtype):
            logits = forward.logits(model, batch)
        loss = loss_fn(logits, batch["labels"], weight, reduction="sum")
        scaler.scale(loss / total).backward()
        run.add(loss / own, logits, batch["labels"])  # the batch's mean, summed on the device
    return samples, tokens


def accumulation_windows(loader: Iterable[dict[str, torch.Tensor]], accum: int
                         ) -> Iterator[list[dict[str, torch.Tensor]]]:
    """The loader's batches grouped into windows of `accum` micro-batches, one optimizer step
    each; the last window of an epoch may be shorter."""
    window: list[dict[str, torch.Tensor]] = []
    for batch in loader:
        window.append(batch)
        if len(window) == accum:
            yield window
            window = []
    if window:
        yield window


@torch.inference_mode()  # no autograd state at all (cheaper than no_grad)
def evaluate(model: nn.Module, loader, kind: str, label_names: tuple[str, ...],
             device: torch.device, dtype: torch.dtype, ner_strict: bool = False,
             logits_fn: Callable[[nn.Module, dict[str, torch.Tensor]], torch.Tensor]
             = forward_logits) -> tuple[dict[str, Any], dict[str, list]]:
    """Metrics and per-example predictions (predicted id, gold id, confidence) on one split.

    The loader may visit examples in any fixed order (`make_loader` goes longest first):
    predictions come back in data order, and the loss is the mean over examples (NER: over
    labelled words), so neither depends on the batching."""
    model.eval()
    total_loss, n_items = 0.0, 0
    rows: list[tuple] = []  # (pred, gold, conf) in loader order
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast(device, dtype):
            logits = logits_fn(model, batch)
        labels = batch["labels"]
        total_loss += float(F.cross_entropy(logits.float().view(-1, logits.shape[-1]),
                                            labels.view(-1), ignore_index=IGNORE_INDEX,
                                            reduction="sum"))
        n_items += int((labels != IGNORE_INDEX).sum())
        conf, pred = logits.float().softmax(-1).max(-1)
        if kind == "classification":
            rows += zip(pred.tolist(), labels.tolist(), conf.tolist(), strict=True)
            continue
        for p, g, c in zip(pred.tolist(), labels.tolist(), conf.tolist(), strict=True):
            keep = [i for i, t in enumerate(g) if t != IGNORE_INDEX]  # word-level positions
            rows.append(([p[i] for i in keep], [g[i] for i in keep],
                         [round(c[i], 4) for i in keep]))
    ordered: list[tuple] = [()] * len(rows)
    for position, index in enumerate(loader.sampler):  # back to data order
        ordered[index] = rows[position]
    preds, golds, confs = (list(col) for col in zip(*ordered, strict=True)) if rows else (
        [], [], [])
    if kind == "classification":
        metrics = classification_metrics(golds, preds, label_names)
    else:
        metrics = ner_metrics([[label_names[t] for t in s] for s in golds],
                              [[label_names[t] for t in s] for s in preds], strict=ner_strict)
    metrics["loss"] = total_loss / max(1, n_items)
    if not math.isfinite(metrics["loss"]):  # NaN weights score like a model: never "passed"
        raise TrialDiverged(f"evaluation loss became {metrics['loss']}: the model's outputs "
                            "are not finite numbers")
    return metrics, {"pred": preds, "label": golds, "confidence": confs}


def _scalars(metrics: dict[str, Any], kind: str) -> dict[str, float]:
    return {k: metrics[k] for k in SCALAR_METRICS[kind] if k in metrics}


def fit(cfg: Config, splits: Splits | None = None, out_dir: str | Path | None = None,
        on_log: Callable[[dict[str, Any]], None] | None = None,
        checkpoint_dir: str | Path | None = None) -> RunResult:
    """Train and evaluate one configuration. Raises TrialDiverged on a NaN/inf loss.

    With `cfg.process.checkpoint_every_epoch`, state is saved to `checkpoint_dir` (default
    `out_dir/checkpoint`) after each epoch and a matching checkpoint found there is resumed.
    """
    started = time.perf_counter()  # the non-training share of the trial is measured from here
    configure_threads(cfg.process.num_threads)
    configure_determinism(cfg.runtime.deterministic)
    device = resolve_device(cfg.runtime.device)
    dtype = resolve_precision(cfg.runtime.precision, device)
    splits = splits if splits is not None else load_task(cfg.data)
    kind, names = splits.kind, splits.label_names
    metric = best_metric_name(cfg.loop.metric_for_best, kind)
    if problem := metric_problem(cfg.loop.metric_for_best, kind):
        raise ConfigError([problem])
    tokenizer = load_tokenizer(cfg.model)
    encoded: Encoded = encode_splits(splits, tokenizer, cfg.tokens)

    set_seed(cfg.loop.seed)  # head init, dropout and data order all follow from here
    model = build_model(cfg.model, kind, names).to(device)
    if too_long := max_length_problems(cfg.tokens.max_length, model.config.to_dict(),
                                       cfg.model.name):
        raise ConfigError(too_long)  # a tensor-size error at the first step otherwise
    frozen = optim.frozen_parameter_names(model, cfg.model)
    optim.apply_freezing(model, frozen)
    optimizer = optim.build_optimizer(model, cfg.optim, device)
    # full model on token ids, or top layers on cached frozen-prefix states (precompute here)
    forward = frozen_prefix.choose_forward(model, encoded, tokenizer, kind, cfg, device, dtype)
    if cfg.runtime.compile:
        forward.compile(model)
    train_loader = forward.loader("train", train=True, seed=cfg.loop.seed)
    val_loader = forward.loader("validation", train=False)
    per_epoch = optim.steps_per_epoch(len(train_loader), cfg.optim.grad_accum_steps)
    total = cfg.loop.max_steps or cfg.loop.epochs * per_epoch
    epochs = math.ceil(total / per_epoch)
    warmup = optim.warmup_steps(cfg.optim, total)
    host_weight = (optim.class_weights([f["labels"] for f in encoded.train], len(names))
                   if cfg.optim.class_weights == "balanced" and kind == "classification" else None)
    weight = host_weight.to(device) if host_weight is not None else None
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    frozen_modules = _frozen_modules(model, frozen)

    history: list[dict[str, Any]] = []
    best = {"metric": metric, "value": worst_value(metric), "epoch": 0, "step": 0}
    best_state: dict[str, torch.Tensor] | None = None
    step, bad_evals, samples, tokens = 0, 0, 0, 0
    train_time = forward.precompute_seconds  # honest throughput: the cache costs train time
    run = _Running()
    show = cfg.process.progress and sys.stderr.isatty()
    steplog = StepLog(total, enabled=not show)  # lines every log_every steps when no bar shows
    reset_peak_memory(device)
    stop = False
    ckpt_dir = checkpoint_dir or (Path(out_dir) / "checkpoint" if out_dir else None)
    ckpt_dir = ckpt_dir if cfg.process.checkpoint_every_epoch else None
    start_epoch = 1
    resumed = checkpoint.load(ckpt_dir, cfg.hash()) if ckpt_dir else None
    if resumed:
        start_epoch = resumed["epoch"] + 1
        if frozen and cfg.model.unfreeze_at_epoch and start_epoch > cfg.model.unfreeze_at_epoch:
            optim.unfreeze(model, optimizer, cfg.optim, frozen)  # groups must match the saved state
            frozen, frozen_modules = set(), []
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        scaler.load_state_dict(resumed["scaler"])
        torch.set_rng_state(resumed["torch_rng"])
        if device.type == "cuda" and resumed.get("cuda_rng"):  # dropout masks on the GPU
            torch.cuda.set_rng_state_all(resumed["cuda_rng"])
        train_loader.sampler.generator.set_state(resumed["sampler_rng"])
        history, best, best_state = resumed["history"], resumed["best"], resumed["best_state"]
        step, bad_evals, samples, tokens, train_time = (
            resumed[k] for k in ("step", "bad_evals", "samples", "tokens", "train_time"))
        steplog.resume(step, samples)

    last_eval: dict[str, Any] = {}  # the latest full validation result and the step it saw
    best_eval: dict[str, Any] = {}  # the validation result of the best weights (restore_best)
    eval_time = [0.0]

    def timed_evaluate(loader) -> tuple[dict[str, Any], dict[str, list]]:
        t = time.perf_counter()
        out = evaluate(model, loader, kind, names, device, dtype, cfg.loop.ner_strict,
                       forward.logits)
        eval_time[0] += time.perf_counter() - t
        return out

    def run_eval(epoch: int) -> bool:
        """Validate, record history, track the best weights; True means stop early."""
        nonlocal best_state, bad_evals, run
        val, preds = timed_evaluate(val_loader)
        last_eval.update(step=step, val=val, preds=preds)
        row = {"epoch": epoch, "step": step, **run.summary(),
               **{f"val_{k}": v for k, v in _scalars(val, kind).items()},
               "train_seconds": train_time, "samples_per_s": samples / max(train_time, 1e-9),
               "tokens_per_s": tokens / max(train_time, 1e-9)}
        history.append(row)
        if on_log:
            on_log(row)
        run = _Running()
        if improves(metric, val[metric], best["value"]):
            best.update(value=val[metric], epoch=epoch, step=step)
            bad_evals = 0
            if cfg.loop.restore_best:  # a copy on the CPU: device memory stays for training
                best_state = {k: v.detach().to("cpu", copy=True)
                              for k, v in model.state_dict().items()}
                best_eval.update(val=val, preds=preds)  # restored later: no re-evaluation
        else:
            bad_evals += 1
        patience = cfg.loop.early_stopping_patience
        return bool(patience) and bad_evals >= patience

    for epoch in range(start_epoch, epochs + 1):
        if cfg.model.unfreeze_at_epoch == epoch and frozen:
            optim.unfreeze(model, optimizer, cfg.optim, frozen)
            frozen, frozen_modules = set(), []
        model.train()
        for m in frozen_modules:  # frozen layers run without dropout (eval mode)
            m.eval()
        bar = tqdm(total=len(train_loader), desc=f"epoch {epoch}", disable=not show, leave=False)
        synchronize(device)
        t0 = time.perf_counter()
        for window in accumulation_windows(train_loader, cfg.optim.grad_accum_steps):
            n, t = accumulate(model, forward, window, (host_weight, weight), scaler, device,
                              dtype, run)
            samples, tokens = samples + n, tokens + t
            bar.update(len(window))
            optim.set_lr(optimizer, optim.lr_factor(step, warmup, total, cfg.optim.lr_schedule))
            if cfg.optim.max_grad_norm:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step % cfg.loop.log_every == 0:
                if not math.isfinite(run.loss()):
                    raise TrialDiverged(f"training loss became {run.loss()} by step {step} "
                                        f"(epoch {epoch})")
                steplog.line(step, run.loss() / max(1, run.batches), samples)
            if cfg.loop.eval_steps and step % cfg.loop.eval_steps == 0:
                synchronize(device)
                train_time += time.perf_counter() - t0
                stop = run_eval(epoch)
                model.train()
                for m in frozen_modules:
                    m.eval()
                t0 = time.perf_counter()
            if stop or step >= total:
                break
        bar.close()
        synchronize(device)
        train_time += time.perf_counter() - t0
        if not math.isfinite(run.loss()):
            raise TrialDiverged(f"training loss became {run.loss()} in epoch {epoch} "
                                f"(step {step})")
        if not stop and (not cfg.loop.eval_steps or step >= total):
            if not history or history[-1]["step"] != step:
                stop = run_eval(epoch)
        if stop or step >= total:
            break
        if ckpt_dir:
            checkpoint.save(ckpt_dir, {
                "config_hash": cfg.hash(), "epoch": epoch, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": (torch.cuda.get_rng_state_all() if device.type == "cuda" else []),
                "sampler_rng": train_loader.sampler.generator.get_state(),
                "history": history, "best": best, "best_state": best_state, "step": step,
                "bad_evals": bad_evals, "samples": samples, "tokens": tokens,
                "train_time": train_time})

    if ckpt_dir:
        checkpoint.remove(ckpt_dir)
    # Unchanged weights are never evaluated twice: the best weights were scored when they were
    # best (a resumed run's best_state predates this process, so it is scored again).
    if best_state is not None and best["step"] != step:
        model.load_state_dict(best_state)
        last_eval = {"step": step, **best_eval} if best_eval else {}
    if last_eval.get("step") == step:
        val, val_preds = last_eval["val"], last_eval["preds"]
    else:
        val, val_preds = timed_evaluate(val_loader)
    test, test_preds = (timed_evaluate(forward.loader("test", train=False)) if encoded.test
                        else ({}, {}))
    total_time = time.perf_counter() - started
    result = RunResult(
        config=cfg, kind=kind, label_names=names, validation=val, test=test, history=history,
        best=best, environment={**environment(device), "dtype": str(dtype).replace("torch.", "")},
        timing={"train_seconds": train_time, "train_samples": samples, "train_tokens": tokens,
                "samples_per_s": samples / max(train_time, 1e-9),
                "tokens_per_s": tokens / max(train_time, 1e-9), "optimizer_steps": step,
                "peak_memory_mb": peak_memory_mb(device), **forward.timing(),
                **trial_shares(total_time, train_time, eval_time[0])},
        data={"task": splits.task, "source": splits.source, "fingerprint": splits.fingerprint(),
              **splits.sizes(),
              "label_names": list(names)},
        predictions={"validation": val_preds, "test": test_preds},
        model=model, tokenizer=tokenizer,
    )
    if out_dir is not None:
        from bertft.rundir import save_run

        save_run(result, out_dir)
    return result


def trial_shares(total: float, train: float, evaluation: float) -> dict[str, float]:
    """Where a trial's time went: training (with any frozen-prefix precompute), evaluation
    (validation and test), and the rest (setup: data, tokenization, model build; saving is
    not included). `non_train_share` is what the loop does not spend training."""
    total = max(total, train + evaluation, 1e-9)
    return {"total_seconds": total, "eval_seconds": evaluation,
            "setup_seconds": total - train - evaluation,
            "non_train_share": 1 - train / total}


class _Running:
    """Train loss and accuracy since the last evaluation, summed on the training device:
    reading them (at log and evaluation points) is the loop's only CPU-GPU sync, so the host
    can queue the next steps while the GPU works."""

    def __init__(self) -> None:
        self.batches = 0
        self.loss_sum: torch.Tensor | None = None
        self.correct: torch.Tensor | None = None
        self.count: torch.Tensor | None = None

    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        mask = labels != IGNORE_INDEX  # examples, or labelled word pieces for NER
        correct = ((logits.detach().argmax(-1) == labels) & mask).sum()
        loss = loss.detach().float()
        if self.loss_sum is None:
            self.loss_sum, self.correct, self.count = loss, correct, mask.sum()
        else:
            self.loss_sum, self.correct, self.count = (
                self.loss_sum + loss, self.correct + correct, self.count + mask.sum())
        self.batches += 1

    def loss(self) -> float:
        """Summed loss so far (NaN/inf checks); a sync point."""
        return 0.0 if self.loss_sum is None else float(self.loss_sum)

    def summary(self) -> dict[str, float]:
        if self.loss_sum is None:
            return {"train_loss": 0.0, "train_accuracy": 0.0}
        return {"train_loss": float(self.loss_sum) / self.batches,
                "train_accuracy": int(self.correct) / max(1, int(self.count))}


def _frozen_modules(model: nn.Module, frozen: set[str]) -> list[nn.Module]:
    """Modules all of whose parameters are frozen (so dropout in them can be switched off)."""
    if not frozen:
        return []
    out: list[nn.Module] = []
    for name, module in model.named_modules():
        params = [n for n, _ in module.named_parameters(prefix=name)]
        if params and all(p in frozen for p in params):
            out.append(module)  # children of a frozen module are included; eval() is idempotent
    return out
