"""The training loop and evaluation.

`fit(cfg)` is the whole pipeline: load data -> tokenize -> build model -> freeze -> train with
evaluation and early stopping -> restore best -> test -> (save). Classification and NER share it.
`setup` builds what stays fixed through a run (`Setup`); `TrainState` (`bertft.state`) is what
changes and what a checkpoint keeps; `train_epoch` runs one epoch of accumulation windows. Frozen
layers run in eval mode (no dropout). When the embeddings and the bottom K layers are frozen for
the whole run, `bertft.frozen` computes their outputs once and batches carry those states instead
of token ids (see its docstring); the loop is the same either way.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from bertft import checkpoint, graphs, master, optim, frozen as frozen_prefix
from bertft.cache import Cache
from bertft.config import TRAINING_CODE_VERSION, Config
from bertft.data import Splits, load_task
from bertft.errors import ConfigError, TrialDiverged
from bertft.features import IGNORE_INDEX, Encoded, cache_dir, encode_splits, scored_words
from bertft.kinds import kind_of
from bertft.metrics import best_metric_name, classification_metrics, metric_problem, ner_evaluation
from bertft.limits import position_problems
from bertft.models import build_model, load_tokenizer, model_files
from bertft.progress import Hook, StepLog, bars_as_ours
from bertft.runtime import (
    autocast, configure_determinism, configure_threads, environment, peak_memory_mb, set_seed,
    reset_peak_memory, resolve_device, resolve_settings, resolved_config, synchronize,
)
from bertft.state import Evaluation, Running, TrainState


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
               run: Running) -> tuple[int, int]:
    """Backward through one accumulation window; returns its examples and real tokens.

    The window's loss is the mean over all its examples (labelled tokens for NER; class weights
    as `F.cross_entropy`'s weighted mean counts them), as if it were one batch: each micro-batch
    adds its summed loss divided by the window's denominator, so a short window (the end of an
    epoch) or micro-batches with few labelled tokens get the gradient one batch would."""
    host_weight, weight = weights
    total = max(sum(loss_denominator(b["labels"], host_weight) for b in window), 1e-12)
    samples = tokens = 0
    for batch in window:
        samples += batch["labels"].shape[0] - graphs.fillers(batch)  # host copy: no sync
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
             = frozen_prefix.forward_logits,
             words: Sequence[tuple[Sequence[int], Sequence[int]]] = ()) -> tuple[dict, dict]:
    """Metrics and per-example predictions (predicted id, gold id, confidence) on one split.

    The loader may visit examples in any fixed order (`make_loader` goes longest first):
    predictions come back in data order, and the loss is the mean over examples (NER: over
    labelled words), so neither depends on the batching. NER: see `metrics.ner_evaluation`."""
    model.eval()
    task = kind_of(kind)
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
        if not task.token_level:
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
    if not task.token_level:
        metrics = classification_metrics(golds, preds, label_names)
    else:
        metrics, preds, golds, confs = ner_evaluation(preds, golds, confs, words, label_names,
                                                      ner_strict)
    metrics["loss"] = total_loss / max(1, n_items)
    if not math.isfinite(metrics["loss"]):  # NaN weights score like a model: never "passed"
        raise TrialDiverged(f"evaluation loss became {metrics['loss']}: the model's outputs "
                            "are not finite numbers")
    return metrics, {"pred": preds, "label": golds, "confidence": confs}


class Setup:
    """A run's parts built once (data, model, optimizer, forward path) and its steps on them."""

    def __init__(self, cfg: Config, splits: Splits, cache: Cache) -> None:
        self.cfg, self.splits, self.kind, self.names = (
            cfg, splits, splits.kind, splits.label_names)
        self.device = resolve_device(cfg.runtime.device)
        # "auto" settings resolved for the device (bertft.auto); cfg stays the requested one
        self.resolved = resolve_settings(cfg, self.device)
        self.run = resolved_config(cfg, self.device)
        self.dtype, self.cast = master.dtypes(self.run, self.device)  # cast: autocast's
        if problem := metric_problem(cfg.loop.metric_for_best, self.kind):
            raise ConfigError([problem])
        self.tokenizer = load_tokenizer(cfg.model)
        self.encoded: Encoded = encode_splits(splits, self.tokenizer, cfg.tokens, cache)
        set_seed(cfg.loop.seed)  # head init, dropout and data order all follow from here
        model = build_model(cfg.model, self.kind, self.names).to(self.device)
        if too_long := position_problems(cfg.tokens.max_length, cfg.batch,
                                         model.config.to_dict(), cfg.model.name):
            raise ConfigError(too_long)  # a tensor-size error at the first step otherwise
        self.frozen = optim.frozen_parameter_names(model, cfg.model)
        optim.apply_freezing(model, self.frozen)
        # compiled: the process's kept model of this architecture, with these weights
        self.model, self.reused = graphs.kept_model(model, self.frozen, self.device, self.dtype,
                                                    self.run.runtime, cache_dir())
        self.frozen_modules = _frozen_modules(self.model, self.frozen)
        self.optimizer, self.master = master.build(self.model, cfg.optim, self.device,
                                                   self.run.runtime.precision)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        # full model on token ids, or top layers on cached frozen-prefix states (precompute here)
        self.forward = frozen_prefix.choose_forward(self.model, self.encoded, self.tokenizer,
                                                    self.kind, self.run, self.device,
                                                    self.cast, cache)
        self.compiled_before = graphs.compile_seconds()  # compiling happens in the first steps
        if self.run.runtime.compile:
            self.forward.compile(self.model)
        self.train_loader = self.forward.loader("train", train=True, seed=cfg.loop.seed)
        self.val_loader = self.forward.loader("validation", train=False)
        per_epoch = optim.steps_per_epoch(len(self.train_loader), cfg.optim.grad_accum_steps)
        self.total = cfg.loop.max_steps or cfg.loop.epochs * per_epoch  # optimizer steps
        self.epochs = math.ceil(self.total / per_epoch)
        self.warmup = optim.warmup_steps(cfg.optim, self.total)
        host = (optim.class_weights([f["labels"] for f in self.encoded.train], len(self.names))
                if cfg.optim.class_weights == "balanced" and kind_of(self.kind).class_weights
                else None)
        self.weights = (host, host.to(self.device) if host is not None else None)
        self.show = cfg.process.progress and sys.stderr.isatty()
        self.eval_seconds = {"validation": 0.0, "test": 0.0}  # for the trial's time shares
        self.words = {s: scored_words(getattr(splits, s), self.tokenizer, cfg.tokens)
                      for s in ("validation", "test")} if kind_of(self.kind).token_level else {}
        self.steplog = StepLog(self.total, enabled=not self.show)  # lines when no bar shows

    def train_mode(self) -> None:
        """Train mode, except the frozen modules: they run without dropout (eval mode)."""
        self.model.train()
        for m in self.frozen_modules:
            m.eval()

    def unfreeze(self) -> None:
        """Gradual unfreezing: the frozen parameters join the optimizer at their groups' LRs."""
        if self.frozen:
            optim.unfreeze(self.model, self.optimizer, self.cfg.optim, self.frozen)
            self.frozen, self.frozen_modules = set(), []

    def optimizer_step(self, step: int) -> None:
        """Schedule the LR, clip, step (through the fp16 scaler when on), clear gradients."""
        o, params = self.cfg.optim, self.master.grads(self.model)  # the fp32 gradients
        optim.set_lr(self.optimizer, optim.lr_factor(step, self.warmup, self.total,
                                                     o.lr_schedule))
        if o.max_grad_norm:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(params, o.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)

    def evaluate(self, split: str, step: int) -> Evaluation:
        t = time.perf_counter()
        loader = self.val_loader if split == "validation" else self.forward.loader(
            split, train=False)
        metrics, preds = evaluate(self.model, loader, self.kind, self.names, self.device,
                                  self.cast, self.cfg.loop.ner_strict, self.forward.logits,
                                  self.words.get(split, ()))
        self.eval_seconds[split] += time.perf_counter() - t
        return Evaluation(step, metrics, preds)

    def checkpoint(self, state: TrainState) -> dict[str, Any]:
        """Everything a resumed run needs: weights, optimizer, scaler, RNG states, the state."""
        cuda = self.device.type == "cuda"  # dropout masks on the GPU
        return {**self.identity(), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if cuda else [],
                "sampler_rng": self.train_loader.sampler.generator.get_state(),
                **state.state_dict()}

    def identity(self) -> dict[str, Any]:
        """What a checkpoint must match to be resumed: settings, data and model files."""
        return checkpoint.identity(self.cfg.hash(), self.splits.fingerprint(),
                                   model_files(self.cfg.model.name))

    def resume(self, saved: dict[str, Any], state: TrainState) -> None:
        state.load_state_dict(saved)
        if self.cfg.model.unfreeze_at_epoch and state.epoch + 1 > self.cfg.model.unfreeze_at_epoch:
            self.unfreeze()  # the optimizer's groups must match the saved state
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scaler.load_state_dict(saved["scaler"])
        torch.set_rng_state(saved["torch_rng"])
        if self.device.type == "cuda" and saved.get("cuda_rng"):
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        self.train_loader.sampler.generator.set_state(saved["sampler_rng"])
        self.steplog.resume(state.step, state.samples)


@bars_as_ours  # other libraries' progress bars show only where the loop's own bar does
def fit(cfg: Config, splits: Splits | None = None, out_dir: str | Path | None = None,
        on_log: Hook | None = None, checkpoint_dir: str | Path | None = None,
        cache: Cache | None = None, *, on_step: Hook | None = None,
        on_ready: Callable[[], None] = lambda: None) -> RunResult:
    """Train and evaluate one configuration. Raises TrialDiverged on a NaN/inf loss.

    `cache` shares loaded data, tokenized features and frozen-prefix states between the runs of
    one process (default: a fresh one, shared with nothing). With
    `cfg.process.checkpoint_every_epoch`, state is saved to `checkpoint_dir` (default
    `out_dir/checkpoint`) after each epoch and a matching checkpoint found there is resumed.
    `on_ready()` runs once every input check (data, model, limits, checkpoint) has passed."""
    started = time.perf_counter()  # the non-training share of the trial is measured from here
    configure_threads(cfg.process.num_threads)
    configure_determinism(cfg.runtime.deterministic)
    cache = cache if cache is not None else Cache()
    s = Setup(cfg, splits if splits is not None else load_task(cfg.data), cache)
    s.steplog.on_step = on_step
    state = TrainState(best_metric_name(cfg.loop.metric_for_best, s.kind),
                       train_time=s.forward.precompute_seconds)  # the cache costs train time
    reset_peak_memory(s.device)
    ckpt_dir = None
    if cfg.process.checkpoint_every_epoch:
        ckpt_dir = checkpoint_dir or (Path(out_dir) / "checkpoint" if out_dir else None)
    saved = checkpoint.load(ckpt_dir, s.identity()) if ckpt_dir else None
    if saved is not None:
        s.resume(saved, state)
    on_ready()  # before anything is trained or written: `train --overwrite` clears the old run
    for epoch in range(state.epoch + 1, s.epochs + 1):
        if cfg.model.unfreeze_at_epoch == epoch:
            s.unfreeze()
        if train_epoch(s, state, epoch, on_log):
            break
        state.epoch = epoch
        if ckpt_dir:
            checkpoint.save(ckpt_dir, s.checkpoint(state))
    if ckpt_dir:
        checkpoint.remove(ckpt_dir)
    result = _result(s, state, started)
    if out_dir is not None:
        from bertft.rundir import save_run

        save_run(result, out_dir)
    return result


def train_epoch(s: Setup, state: TrainState, epoch: int,
                on_log: Callable[[dict[str, Any]], None] | None) -> bool:
    """One pass over the training data, one optimizer step per accumulation window, with the
    evaluations that fall in it; True when training is over (early stopping or step budget)."""
    loop = s.cfg.loop
    s.train_mode()
    bar = tqdm(total=len(s.train_loader), desc=f"epoch {epoch}", disable=not s.show,
               leave=False)
    t0 = _now(s.device)
    stop = False
    for window in accumulation_windows(s.train_loader, s.cfg.optim.grad_accum_steps):
        n, t = accumulate(s.model, s.forward, window, s.weights, s.scaler, s.device, s.cast,
                          state.running)
        state.samples, state.tokens = state.samples + n, state.tokens + t
        bar.update(len(window))
        s.optimizer_step(state.step)
        state.step += 1
        if state.step % loop.log_every == 0:
            if not state.running.finite():
                raise TrialDiverged(f"training loss became {state.running.loss()} by step "
                                    f"{state.step} (epoch {epoch})")
            loss, steps = state.running.window(state.step)
            s.steplog.line(state.step, loss, state.samples, window=steps)
        if loop.eval_steps and state.step % loop.eval_steps == 0:
            state.train_time += _now(s.device) - t0  # evaluation is not training time
            stop = validate(s, state, epoch, on_log)
            s.train_mode()
            t0 = _now(s.device)
        if stop or state.step >= s.total:
            break
    bar.close()
    state.train_time += _now(s.device) - t0
    if not state.running.finite():
        raise TrialDiverged(f"training loss became {state.running.loss()} in epoch {epoch} "
                            f"(step {state.step})")
    at_end = not loop.eval_steps or state.step >= s.total
    if not stop and at_end and (not state.history or state.history[-1]["step"] != state.step):
        stop = validate(s, state, epoch, on_log)
    return stop or state.step >= s.total


def validate(s: Setup, state: TrainState, epoch: int,
             on_log: Callable[[dict[str, Any]], None] | None) -> bool:
    """Evaluate on validation and book it; True when early stopping's patience is spent."""
    row = state.record(s.evaluate("validation", state.step), epoch, s.kind, s.cfg.loop,
                       s.model)
    if on_log:
        on_log(row)
    return state.patience_spent(s.cfg.loop)


def _result(s: Setup, state: TrainState, started: float) -> RunResult:
    """Final validation, test, facts. Unchanged weights are never evaluated twice: the best
    weights were scored when they were best (a resumed run's best weights predate this
    process, so they are scored again)."""
    if state.best_state is not None and state.best["step"] != state.step:
        s.model.load_state_dict(state.best_state)
        state.last_eval = state.best_eval
    if state.last_eval is not None and state.last_eval.step in (state.step, -1):
        val = state.last_eval
    else:
        val = s.evaluate("validation", state.step)
    test = s.evaluate("test", state.step) if s.encoded.test else Evaluation(state.step, {}, {})
    total = time.perf_counter() - started
    speed = max(state.train_time, 1e-9)
    return RunResult(
        config=s.cfg, kind=s.kind, label_names=s.names, validation=val.metrics,
        test=test.metrics, history=state.history, best=state.best,
        environment={**environment(s.device), "dtype": str(s.dtype).replace("torch.", ""),
                     "optimizer_impl": optim.optimizer_impl(s.cfg.optim, s.device),
                     "resolved": s.resolved,
                     "training_code_version": TRAINING_CODE_VERSION,
                     "model_files": model_files(s.cfg.model.name)},
        timing={"train_seconds": state.train_time, "train_samples": state.samples,
                "train_tokens": state.tokens, "samples_per_s": state.samples / speed,
                "tokens_per_s": state.tokens / speed, "optimizer_steps": state.step,
                "peak_memory_mb": peak_memory_mb(s.device), **s.forward.timing(),
                **graphs.facts(s.run.runtime.compile, s.reused, s.compiled_before),
                **trial_shares(total, state.train_time, **s.eval_seconds)},
        data={"task": s.splits.task, "source": s.splits.source,
              "fingerprint": s.splits.fingerprint(), **s.splits.sizes(),
              "label_names": list(s.names), "unstratified": list(s.splits.unstratified)},
        predictions={"validation": val.predictions, "test": test.predictions},
        model=s.master.finish(s.model), tokenizer=s.tokenizer,
    )


def trial_shares(total: float, train: float, validation: float, test: float
                 ) -> dict[str, float]:
    """Where a trial's time went: training (with any frozen-prefix precompute), validation
    (choosing the epoch), test (the split verdicts are decided on), and the rest (setup: data,
    tokenization, model build; saving is not included). `non_train_share` is what the loop does
    not spend training; `overhead_share` leaves the test split out of it as well: the time
    spent on neither training nor the measurement the trial exists for."""
    total = max(total, train + validation + test, 1e-9)
    setup = total - train - validation - test
    return {"total_seconds": total, "eval_seconds": validation + test,
            "validation_seconds": validation, "test_seconds": test, "setup_seconds": setup,
            "non_train_share": 1 - train / total, "overhead_share": (validation + setup) / total}


def _now(device: torch.device) -> float:
    """Wall clock after the device's queued work is done (a sync point on a GPU)."""
    synchronize(device)
    return time.perf_counter()


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
