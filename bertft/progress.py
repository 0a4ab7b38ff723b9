"""Progress lines where no progress bar shows (CI, Slurm, nohup: stderr is not a terminal).

Every `log_every` optimizer steps the loop prints one line to stderr, as the Trainer logs:
`step 40/120 | loss 0.6512 (mean of the last 20 steps) | 85.3 samples/s | ETA 1m32s`. The loss
is the mean over the steps since the previous line (fewer than `log_every` right after an
evaluation, which starts the sums afresh). The rate and the ETA are wall clock since training
started (evaluation included), so the ETA is what the user will wait.

Progress bars of other libraries (transformers' "Writing model shards", datasets' map,
huggingface_hub's downloads) follow the same rule as the loop's own bar (`third_party_bars`):
shown only with `progress = true` on a terminal, never in a log file.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

Hook = Callable[[dict[str, Any]], None]  # a row for trackers: `fit`'s on_log and on_step


def format_seconds(seconds: float) -> str:
    """83 -> '1m23s', 3725 -> '1h02m05s'."""
    s = int(round(seconds))
    h, m, s = s // 3600, s % 3600 // 60, s % 60
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class StepLog:
    """The loop's report every `log_every` steps: a `step/total | loss | samples/s | ETA` line
    when enabled, and `{"step", "train/loss"}` to `on_step` when set (the trackers)."""

    def __init__(self, total_steps: int, enabled: bool, stream: TextIO | None = None) -> None:
        self.total = total_steps
        self.enabled = enabled
        self.stream = stream
        self.on_step: Hook | None = None
        self.start = time.perf_counter()
        self.first_step = 0  # a resumed run counts its rate from where it resumed
        self.first_samples = 0

    def resume(self, step: int, samples: int) -> None:
        self.first_step, self.first_samples = step, samples

    def line(self, step: int, loss: float, samples: int, *, window: int) -> str | None:
        """The line of `step`: `loss` is the mean over the last `window` optimizer steps."""
        if self.on_step is not None:
            self.on_step({"step": step, "train/loss": loss})
        if not self.enabled:
            return None
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = (samples - self.first_samples) / elapsed
        done = max(step - self.first_step, 1)
        eta = (self.total - step) * elapsed / done
        steps = f"the last {window} steps" if window != 1 else "the last step"
        text = (f"step {step}/{self.total} | loss {loss:.4f} (mean of {steps}) | "
                f"{rate:.1f} samples/s | ETA {format_seconds(eta)}")
        print(text, file=self.stream or sys.stderr, flush=True)
        return text


@contextmanager
def third_party_bars(show: bool) -> Iterator[None]:
    """With `show` false, no progress bar of transformers, huggingface_hub or datasets for the
    duration (their own switches, each put back as it was); with `show` true, as they are.
    datasets is switched only when it is imported already (importing it costs half a second):
    its loaders switch their bars off by themselves when stderr is not a terminal."""
    if show:
        yield
        return
    from huggingface_hub import utils as hub
    from transformers.utils import logging as hf_logging

    datasets = sys.modules.get("datasets")
    was = (hf_logging.is_progress_bar_enabled(), hub.are_progress_bars_disabled(),
           datasets is not None and datasets.is_progress_bar_enabled())
    hf_logging.disable_progress_bar()  # transformers' and huggingface_hub's
    if was[2]:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was[0]:
            hf_logging.enable_progress_bar()
        if was[1] != hub.are_progress_bars_disabled():
            (hub.disable_progress_bars if was[1] else hub.enable_progress_bars)()
        if was[2]:
            datasets.enable_progress_bars()


def bars_as_ours(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn(cfg, ...)` with other libraries' progress bars shown only where bertft's own is:
    `cfg.process.progress` and stderr a terminal (`fit` is wrapped: its save_pretrained
    would print "Writing model shards" into a log file)."""
    @functools.wraps(fn)
    def wrapped(cfg: Any, *args: Any, **kwargs: Any) -> Any:
        with third_party_bars(cfg.process.progress and sys.stderr.isatty()):
            return fn(cfg, *args, **kwargs)
    return wrapped
