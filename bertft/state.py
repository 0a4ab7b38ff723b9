"""What a training run carries from step to step: counters, history, the best weights so far.

`TrainState` is plain data with `state_dict` / `load_state_dict` (a checkpoint holds it beside
the model, optimizer and RNG states); `record` books one evaluation into it. `Running` sums the
training loss and accuracy on the device between evaluations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from bertft.config import LoopConfig
from bertft.features import IGNORE_INDEX
from bertft.kinds import kind_of
from bertft.metrics import improves, worst_value


@dataclass
class Evaluation:
    """One validation pass: the step it saw, its metrics and per-example predictions."""

    step: int
    metrics: dict[str, Any]
    predictions: dict[str, list]


class Running:
    """Train loss and accuracy since the last evaluation, summed on the training device:
    reading them (at log and evaluation points) is the loop's only CPU-GPU sync, so the host
    can queue the next steps while the GPU works."""

    def __init__(self, step: int = 0) -> None:
        self.batches = 0
        self.marked = (0.0, 0, step)  # loss sum, batches and step at the last `window()`
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

    def window(self, step: int) -> tuple[float, int]:
        """At optimizer step `step`: the mean batch loss since the previous call (or since
        these sums started, at the last evaluation or resume) and over how many optimizer
        steps; a sync point."""
        total = self.loss()
        loss, batches, since = self.marked
        self.marked = (total, self.batches, step)
        return (total - loss) / max(1, self.batches - batches), step - since

    def finite(self) -> bool:
        return math.isfinite(self.loss())

    def summary(self) -> dict[str, float]:
        if self.loss_sum is None:
            return {"train_loss": 0.0, "train_accuracy": 0.0}
        return {"train_loss": float(self.loss_sum) / self.batches,
                "train_accuracy": int(self.correct) / max(1, int(self.count))}


_SAVED = ("epoch", "step", "bad_evals", "samples", "tokens", "train_time", "history", "best",
          "best_state")


@dataclass
class TrainState:
    """Counters, history and best weights of one run; `state_dict()` is what a checkpoint
    keeps of it (the running sums and the last evaluation are not kept: a resumed run starts
    its next epoch afresh)."""

    metric: str
    epoch: int = 0              # the last completed epoch
    step: int = 0               # optimizer steps so far
    bad_evals: int = 0          # evaluations since the best one
    samples: int = 0
    tokens: int = 0
    train_time: float = 0.0     # seconds of training (the frozen-prefix precompute included)
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=dict)
    best_state: dict[str, torch.Tensor] | None = None
    running: Running = field(default_factory=Running)
    last_eval: Evaluation | None = None
    best_eval: Evaluation | None = None  # the evaluation of best_state (restore_best)

    def __post_init__(self) -> None:
        if not self.best:
            self.best = {"metric": self.metric, "value": worst_value(self.metric), "epoch": 0,
                         "step": 0}

    def state_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _SAVED}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k in _SAVED:
            setattr(self, k, state[k])
        self.running = Running(self.step)  # the resumed run's sums start here

    def record(self, ev: Evaluation, epoch: int, kind: str, loop: LoopConfig, model: nn.Module
               ) -> dict[str, Any]:
        """Book one evaluation: a history row (returned), the best value and weights so far,
        the count of evaluations without improvement; the running sums start afresh."""
        speed = max(self.train_time, 1e-9)
        row = {"epoch": epoch, "step": self.step, **self.running.summary(),
               **{f"val_{k}": ev.metrics[k] for k in kind_of(kind).scalar_metrics
                  if k in ev.metrics},
               "train_seconds": self.train_time, "samples_per_s": self.samples / speed,
               "tokens_per_s": self.tokens / speed}
        self.history.append(row)
        self.running, self.last_eval = Running(self.step), ev
        if improves(self.metric, ev.metrics[self.metric], self.best["value"]):
            self.best.update(value=ev.metrics[self.metric], epoch=epoch, step=self.step)
            self.bad_evals = 0
            if loop.restore_best:  # a copy on the CPU: device memory stays for training
                self.best_state = {k: v.detach().to("cpu", copy=True)
                                   for k, v in model.state_dict().items()}
                self.best_eval = Evaluation(-1, ev.metrics, ev.predictions)  # reusable later
        else:
            self.bad_evals += 1
        return row

    def patience_spent(self, loop: LoopConfig) -> bool:
        """Early stopping: `early_stopping_patience` evaluations without improvement."""
        patience = loop.early_stopping_patience
        return bool(patience) and self.bad_evals >= patience
