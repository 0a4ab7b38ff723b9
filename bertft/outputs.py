"""Output locations, checked before any training or rendering starts.

A run folder (`bertft train --out`), a report folder (`bertft report --out`, `ablate --reports`)
and a results folder (`--bertft-results`, `ablate --results`) must be creatable and writable:
finding out after an hour of training loses the hour. `output_problem` says why a path cannot
be written (a file in the way, a name too long for the file system, no write permission);
`check_run_dir` also refuses a run folder that holds another run unless the user asked to
overwrite it (then it is emptied whole, so old and new files never mix, but only once every
other input check has passed). Resuming the same run
from its checkpoint (`checkpoint_every_epoch`, same config hash) is not another run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from bertft.errors import BertftError
from bertft.rundir import CONFIG_FILE, METRICS_FILE, MODEL_FILES

PATH_MAX = 4096


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(".")


def output_problem(path: str | Path) -> str | None:
    """Why a folder cannot be created at (or written in) `path`, or None when it can. Probes
    with an unnamed temporary file (nothing is left behind) and creates no folder."""
    path = Path(path).absolute()
    if len(os.fsencode(str(path))) >= PATH_MAX:
        return f"the path is too long ({len(os.fsencode(str(path)))} bytes; limit {PATH_MAX})"
    base = _nearest_existing(path)
    if not base.is_dir():
        what = "the path" if base == path else str(base)
        return f"{what} exists and is not a folder; expected a folder (or a new name)"
    try:
        name_max = os.pathconf(base, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    for part in path.relative_to(base).parts:
        if len(os.fsencode(part)) > name_max:
            return (f"the name '{part[:40]}...' is {len(os.fsencode(part))} bytes long; "
                    f"the file system allows {name_max}")
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as exc:
        return f"cannot write in {base} ({exc.strerror or exc})"
    return None


def check_output_dir(path: str | Path, flag: str) -> Path:
    """`path` as a Path, or one BertftError naming the flag, the path and the problem."""
    if problem := output_problem(path):
        raise BertftError(f"{flag} {path}: {problem}")
    return Path(path)


# What a run folder holds (bertft's records, the model and tokenizer files `save_pretrained`
# writes, the checkpoint folder): what marks a folder as a run, and what --overwrite removes.
RUN_RECORDS = (CONFIG_FILE, METRICS_FILE)
CHECKPOINT_DIR = "checkpoint"
TRACKER_DIRS = ("tensorboard", "mlruns", "wandb")  # what `report_to` trackers write there


def check_run_dir(out: str | Path, config_hash: str, resumable: bool, overwrite: bool
                  ) -> list[Path]:
    """Check `--out` before training: writable, and empty, new, or this run's own checkpoint
    (`resumable`: the run saves per-epoch checkpoints and one of `config_hash` is there).
    A folder holding another run is refused unless `overwrite`; a non-empty folder that is no
    run is always refused (--overwrite never deletes files bertft did not write). Returns what
    `clear_run_dir` is to remove, and removes nothing: `bertft train` removes it only once
    every other input check has passed (data read, columns found, model built), so that a
    mistyped flag beside --overwrite loses no finished run."""
    out = check_output_dir(out, "--out")
    if not out.is_dir() or not any(out.iterdir()):
        return []
    from bertft import checkpoint

    entries = sorted(p.name for p in out.iterdir())
    if resumable and checkpoint.load(out / CHECKPOINT_DIR, config_hash) is not None:
        return []  # the same run, interrupted: fit resumes it
    ours = set(RUN_RECORDS) | set(MODEL_FILES) | {CHECKPOINT_DIR, *TRACKER_DIRS}
    strangers = [e for e in entries if e not in ours]
    if strangers:
        raise BertftError(f"--out {out}: the folder is not empty and holds files that are not "
                          f"a bertft run's ({', '.join(strangers[:5])}); choose a new or empty "
                          "folder")
    if not overwrite:
        raise BertftError(f"--out {out}: holds another run ({', '.join(entries[:4])}); pass "
                          "--overwrite to replace it whole, or choose a new folder")
    return [out / name for name in entries]


def clear_run_dir(entries: list[Path]) -> None:
    """Remove what `check_run_dir` listed (folders whole; a link, not what it points to)."""
    for target in entries:
        shutil.rmtree(target) if target.is_dir() and not target.is_symlink() \
            else target.unlink(missing_ok=True)


def prepare_run_dir(out: str | Path, config_hash: str, resumable: bool, overwrite: bool) -> Path:
    """`check_run_dir`, then the removal at once (for callers with nothing left to check)."""
    clear_run_dir(check_run_dir(out, config_hash, resumable, overwrite))
    return Path(out)
