"""Performance arithmetic: training FLOPs, MFU, accelerator peaks, and the regression-gate checks.

FLOPs follow the PaLM paper (Chowdhery et al. 2022, arXiv:2204.02311, Appendix B): a training
step costs 6N FLOPs per token for the dense matmuls (2 forward + 4 backward per parameter) plus
12 * L * H * T per token for self-attention (QK^T and AV, forward and backward; H = hidden size,
T = sequence length). Summed over sequences of length l_i:

    flops = 6 * N * sum(l_i) + 12 * L * H * sum(l_i ** 2)

N counts non-embedding parameters (embedding lookups are not matmuls). These are *model* FLOPs:
work a frozen layer skips (no weight gradients) is still counted, as MFU conventionally does.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Dense (no sparsity) bf16 tensor-core peaks from the vendors' data sheets, FLOP/s.
BF16_PEAK_FLOPS: dict[str, float] = {
    "H200": 989e12,
    "H100 SXM": 989e12,
    "H100 PCIe": 756e12,
    "H100 NVL": 835e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L40": 181e12,
    "L4": 121e12,
    "A10G": 70e12,
    "A10": 125e12,
}


def training_flops(n_params_non_embedding: int, n_layers: int, hidden: int, real_tokens: int,
                   seq_lens: Iterable[int]) -> float:
    """6 N tokens + 12 L H sum(len^2) (PaLM, Appendix B); `real_tokens` = sum(seq_lens)."""
    return (6.0 * n_params_non_embedding * real_tokens
            + 12.0 * n_layers * hidden * sum(n * n for n in seq_lens))


def mfu(flops: float, seconds: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: achieved FLOP/s over the device's peak."""
    if seconds <= 0 or peak_flops <= 0:
        raise ValueError(f"mfu: seconds ({seconds}) and peak_flops ({peak_flops}) must be > 0")
    return flops / seconds / peak_flops


def _has_token(name: str, token: str) -> bool:
    """`token` appears in `name` as a whole word: 'L4' is not in 'NVIDIA L40', but 'A100' is in
    'NVIDIA A100-SXM4-80GB'."""
    return re.search(rf"(?<![A-Z0-9]){re.escape(token)}(?![A-Z0-9])", name) is not None


def peak_flops(device_name: str) -> float | None:
    """Peak bf16 FLOP/s for a CUDA device name (`torch.cuda.get_device_name`); None if unknown.
    Every word of a key must appear as a whole word in the name ('L4' does not match 'NVIDIA
    L40'); the longest matching key wins; an H100 with no form factor in its name counts as SXM."""
    name = device_name.upper()
    hits = [k for k in BF16_PEAK_FLOPS if all(_has_token(name, part)
                                              for part in k.upper().split())]
    if not hits:
        if _has_token(name, "H100"):  # unlabelled H100s are SXM in most clouds
            return BF16_PEAK_FLOPS["H100 SXM"]
        return None
    return BF16_PEAK_FLOPS[max(hits, key=len)]


# --- regression gate ------------------------------------------------------------------------

@dataclass(frozen=True)
class RatioFloorCheck:
    """A higher-is-better ratio must stay above `floor * (1 - tolerance)`."""

    name: str
    floor: float
    tolerance: float = 0.15

    @property
    def limit(self) -> float:
        return self.floor * (1 - self.tolerance)

    def check(self, value: float) -> str | None:
        """None when the value passes, else a message naming everything needed to act on it."""
        if value >= self.limit:
            return None
        return (f"{self.name} = {value:.3f} is more than {self.tolerance:.0%} below its floor "
                f"{self.floor:.3f} (limit {self.limit:.3f})")


Check = RatioFloorCheck


def parse_floors(text: str, source: str = "floors.toml") -> list[Check]:
    """A `[floors]` table of name = number (every ratio is higher-is-better: express wall times
    as speedups), an optional top-level `tolerance` (default 0.15) and a free-form `[workload]`
    table (documentation). Every problem is raised at once, as one ValueError naming `source`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: TOML syntax error: {exc}") from None
    problems: list[str] = []
    tol = data.get("tolerance", 0.15)
    if not isinstance(tol, int | float) or isinstance(tol, bool) or not 0 <= tol < 1:
        problems.append(f"tolerance = {tol!r}: expected a number in [0, 1)")
        tol = 0.15
    unknown = set(data) - {"tolerance", "floors", "workload"}
    problems += [f"unknown key '{k}': allowed tolerance, floors, workload"
                 for k in sorted(unknown)]
    checks: list[Check] = []
    floors = data.get("floors", {})
    if not isinstance(floors, dict):
        problems.append(f"floors = {floors!r}: expected a table of name = number")
        floors = {}
    for name, value in floors.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            problems.append(f"floors.{name} = {value!r}: expected a number > 0")
        else:
            checks.append(RatioFloorCheck(name, float(value), float(tol)))
    if problems:
        raise ValueError(f"{source}: " + "; ".join(problems))
    return checks


def load_floors(path: str | Path) -> list[Check]:
    """`parse_floors` of a file; an unreadable file is a ValueError naming it, as bad content."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read ({exc}); expected a UTF-8 TOML file") from None
    return parse_floors(text, str(path))


def format_table(rows: list[tuple[Check, float, str | None]]) -> str:
    """Markdown table of measured ratios against their limits."""
    lines = ["| ratio | measured | floor | limit | status |", "|---|---|---|---|---|"]
    for check, value, problem in rows:
        lines.append(f"| {check.name} | {value:.3f} | {check.floor:.3f} | >= {check.limit:.3f} "
                     f"| {'FAIL' if problem else 'ok'} |")
    return "\n".join(lines)
