"""The seeds of a spec: `seeds` (the confirmation: fixed, or adaptive `{ min, max }`) and
`pilot_seeds` (the pilot that sizes it), checked apart from the rest of the spec."""

from __future__ import annotations

from typing import Any

SEED_LIMIT = 100    # most seeds an adaptive spec may ask for


def parse_seed_design(data: dict[str, Any], max_seeds: int | None, p: list[str]
                      ) -> tuple[list[int], int, tuple[int, ...]]:
    """(seeds, min_seeds, pilot_seeds) of a spec's top-level table; problems go to `p`. A
    pilot needs confirmation seeds, none of them the pilot's: its verdicts would otherwise
    reuse the data that designed it."""
    pilot = parse_pilot_seeds(data, p)
    if pilot and "seeds" not in data:
        p.append(f"pilot_seeds = {list(pilot)} but no `seeds`: give the confirmation seeds "
                 "(fresh ones, disjoint from the pilot's), e.g. seeds = [20, 21, 22]")
    seeds, min_seeds = parse_seeds(data.get("seeds", [0]), max_seeds, p)
    if "seeds" in data and (shared := sorted(set(pilot) & set(seeds))):
        p.append(f"pilot_seeds and seeds share seed{'s' if len(shared) > 1 else ''} "
                 f"{', '.join(map(str, shared))}: the confirmation must run seeds the pilot "
                 "did not (its verdicts would reuse the data that designed it)")
    return seeds, min_seeds, pilot


def parse_seeds(seeds: Any, max_seeds: int | None, p: list[str]) -> tuple[list[int], int]:
    """`seeds = [0, 1, 2]` (fixed: every seed runs) or `seeds = { min = 3, max = 10 }`
    (adaptive: seeds 0..max-1, the first `min` always run, the others while a comparison is
    undecided). `max_seeds` (--bertft-max-seeds) replaces max, or makes a list adaptive with
    min = its length. Returns (seeds, min_seeds; 0 for a fixed design)."""
    allowed = (f"allowed: a list of distinct integers, or {{ min = M, max = N }} with "
               f"integers 2 <= M <= N <= {SEED_LIMIT}")
    if isinstance(seeds, dict):
        for key in seeds:
            if key not in ("min", "max"):
                p.append(f"seeds.{key}: unknown key; allowed: min, max")
        lo, hi = seeds.get("min"), seeds.get("max", max_seeds)
        hi = max_seeds if max_seeds is not None else hi
        bad = [f"seeds.{k} missing" if v is None else f"seeds.{k} = {v!r}"
               for k, v in (("min", lo), ("max", hi))
               if isinstance(v, bool) or not isinstance(v, int) or not 2 <= v <= SEED_LIMIT]
        if bad:
            p.append(f"{', '.join(bad)}: {allowed}")
            return [0], 0
        if lo > hi:
            where = "--bertft-max-seeds" if max_seeds is not None else "seeds.max"
            p.append(f"seeds = {{ min = {lo}, max = {hi} }}: min must not exceed max "
                     f"({where}); {allowed}")
            return [0], 0
        return list(range(hi)), (lo if lo < hi else 0)
    if not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        p.append(f"seeds = {seeds!r}: {allowed}")
        return [0], 0
    if len(set(seeds)) != len(seeds):
        p.append(f"seeds = {seeds!r}: seeds must be distinct")
    if max_seeds is None or max_seeds <= len(seeds):
        return list(seeds), 0
    extra = list(range(max(seeds) + 1, max(seeds) + 1 + max_seeds - len(seeds)))
    return list(seeds) + extra, max(len(seeds), 2) if max_seeds > 2 else 0


def parse_pilot_seeds(data: dict[str, Any], p: list[str]) -> tuple[int, ...]:
    """`pilot_seeds = [0, 1, 2]`: a list of distinct integers, or absent (no pilot)."""
    pilot = data.get("pilot_seeds", [])
    if not isinstance(pilot, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in pilot) \
            or ("pilot_seeds" in data and not pilot) or len(set(pilot)) != len(pilot):
        p.append(f"pilot_seeds = {pilot!r}: allowed: a list of distinct integers (the pilot's "
                 "seeds), or no pilot_seeds key")
        return ()
    return tuple(pilot)


__all__ = ["SEED_LIMIT", "parse_pilot_seeds", "parse_seed_design", "parse_seeds"]
