"""Progress lines where no progress bar shows (CI, Slurm, nohup: stderr is not a terminal).

Every `log_every` optimizer steps the loop prints one line to stderr, as the Trainer logs:
`step 40/120 | loss 0.6512 | 85.3 samples/s | ETA 1m32s`. The rate and the ETA are wall clock
since training started (evaluation included), so the ETA is what the user will wait.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_seconds(seconds: float) -> str:
    """83 -> '1m23s', 3725 -> '1h02m05s'."""
    s = int(round(seconds))
    h, m, s = s // 3600, s % 3600 // 60, s % 60
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class StepLog:
    """Prints `step/total | loss | samples/s | ETA` lines when enabled (no-op otherwise)."""

    def __init__(self, total_steps: int, enabled: bool, stream: TextIO | None = None) -> None:
        self.total = total_steps
        self.enabled = enabled
        self.stream = stream
        self.start = time.perf_counter()
        self.first_step = 0  # a resumed run counts its rate from where it resumed
        self.first_samples = 0

    def resume(self, step: int, samples: int) -> None:
        self.first_step, self.first_samples = step, samples

    def line(self, step: int, loss: float, samples: int) -> str | None:
        if not self.enabled:
            return None
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = (samples - self.first_samples) / elapsed
        done = max(step - self.first_step, 1)
        eta = (self.total - step) * elapsed / done
        text = (f"step {step}/{self.total} | loss {loss:.4f} | {rate:.1f} samples/s | "
                f"ETA {format_seconds(eta)}")
        print(text, file=self.stream or sys.stderr, flush=True)
        return text
