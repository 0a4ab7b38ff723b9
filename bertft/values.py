"""What a setting's value may be: its type (`check_value`, `describe`), and for a number its
range: each int or float field of a `bertft.sections` section declares its own (`within=`
beside its default and help), and `bertft.limits.RANGES` lists them by flat key. A bound in
parentheses is open. Every value must also be finite: TOML and `--set` accept
`inf` and `nan`, which would otherwise pass a `> 0` check and train to NaN. Seeds stay in
[0, 2**32 - 1], the range NumPy and scikit-learn accept.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal


def same_value(a: Any, b: Any) -> bool:
    """Setting values compared as a spec means them: equality that keeps booleans apart from
    numbers (0 == False in Python); 1 == 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    low_open: bool = False   # True: the bound itself is not allowed
    high_open: bool = False
    note: str = ""           # what a special value means, e.g. "0: off"

    def contains(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def text(self) -> str:
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        return f"{left}{_num(self.low)}, {_num(self.high)}{right}" + (
            f" ({self.note})" if self.note else "")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


SEED_MAX = 2**32 - 1
BIG = 10**9  # counts (steps, epochs, samples): any real run is far below


def range_problems(values: Mapping[str, Any], ranges: Mapping[str, Range]
                   ) -> list[tuple[str, str]]:
    """(key, message) for each value of `ranges`' keys that is not finite or outside its
    range (None and non-numbers, e.g. freeze_layers = 'all', are left to the type checks)."""
    problems = []
    for key, rng in ranges.items():
        value = values.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isfinite(value):
            problems.append((key, f"{key} = {value!r}: must be a finite number in "
                                  f"{rng.text()}"))
        elif not rng.contains(value):
            problems.append((key, f"{key} = {value!r}: allowed: {rng.text()}"))
    return problems


def describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "None"
    if origin is tuple:
        return "a list of strings"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(
        tp, str(tp)
    )


def _coerce_to(tp: Any, value: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return (value in typing.get_args(tp), value)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            ok, out = _coerce_to(arg, value)
            if ok:
                return True, out
        return False, value
    if tp is type(None):
        return (value is None, None)
    if origin is tuple:  # tuple[str, ...]: a list, or one string of comma-separated names
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        return (ok, tuple(value) if ok else value)
    if tp is bool:
        return (isinstance(value, bool), value)
    if tp is int:
        return (isinstance(value, int) and not isinstance(value, bool), value)
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return (ok, float(value) if ok else value)
    if tp is str:
        return (isinstance(value, str), value)
    return False, value


def check_value(key: str, tp: Any, value: Any) -> tuple[bool, Any, str]:
    """Check a value against a field's type; ints are accepted where floats are."""
    ok, out = _coerce_to(tp, value)
    if ok:
        return True, out, ""
    return False, value, f"{key} = {value!r}: expected {describe(tp)}"


__all__ = ["BIG", "SEED_MAX", "Range", "check_value", "describe", "range_problems"]
