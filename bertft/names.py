"""File and folder names made from ids that users choose (trial ids hold axis values).

`file_stem` is the one sanitiser: the results store names a trial's file with it, and the
trackers name a trial's log folder with it, so no axis value (`../x`, `/`, 400 characters) can
make a path that leaves the folder it was meant for.
"""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9=,._+-]")
MAX_STEM = 160  # leaves room for the suffixes the store adds (.json.corrupt, superseded
#                 .<hash>.<n>.json, the temporary .<name>.XXXXXXXX.tmp) under a 255-byte name


def file_stem(trial_id: str) -> str:
    """The results file name of a trial, without `.json`: characters other than letters,
    digits and `=,._+-` become `_`. An id longer than MAX_STEM keeps its first 143 characters
    (readable) and ends in `-` and 16 hex digits of its SHA-256, so that any axis value fits
    in a file name and distinct ids keep distinct files."""
    stem = _UNSAFE.sub("_", trial_id)
    if len(stem) <= MAX_STEM:
        return stem
    digest = hashlib.sha256(trial_id.encode()).hexdigest()[:16]
    return f"{stem[:MAX_STEM - 17]}-{digest}"


def folder_name(name: str) -> str:
    """`file_stem(name)` as one folder level: never empty, `.` or `..` (which the stem keeps:
    dots are allowed in it), so a path joined from it stays below its parent."""
    stem = file_stem(name)
    return "_" * max(1, len(stem)) if stem.strip(".") == "" else stem
