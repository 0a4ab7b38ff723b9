"""The run directory: `save_pretrained`-compatible model files plus bertft's own records.

    RUN_DIR/
      config.json, model.safetensors      transformers model (id2label holds the label names)
      tokenizer.json, tokenizer_config.json ...
      bertft_config.json                  the full resolved bertft Config and the task kind
      metrics.json                        {"validation", "test", "history", "best", "timing", ...}
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from bertft.config import Config
from bertft.errors import BertftError
from bertft.kinds import KINDS

CONFIG_FILE = "bertft_config.json"
METRICS_FILE = "metrics.json"
MODEL_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json",
               "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json",
               "merges.txt", "added_tokens.json", "sentencepiece.bpe.model", "spiece.model",
               "generation_config.json")  # what `save_pretrained` writes (the model's files)


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over the target:
    a reader never sees a half-written file, whatever kills the writer. The file gets the
    permissions of a plain `open` (0666 less the umask; mkstemp alone gives 0600, unreadable
    to a team sharing a results folder). Non-finite floats (NaN, inf: not JSON) are written
    as null; `allow_nan=False` guarantees no `NaN`/`Infinity` token reaches a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(finite_json(data), f, indent=2, sort_keys=False, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask (reading it means setting it: done under a lock)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def finite_json(value: Any) -> Any:
    """`value` as plain JSON data: tuples and sets as lists, numpy/torch scalars as numbers,
    NaN and +-inf as None (JSON has no such numbers; a diverged run's losses are unknown)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [finite_json(v) for v in value]
    if value is None or isinstance(value, str | int):
        return value
    if hasattr(value, "item"):
        return finite_json(value.item())
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def save_run(result, out_dir: str | Path) -> Path:
    """Write model, tokenizer, resolved config and metrics into `out_dir`. The SHA-256 of each
    model and tokenizer file is recorded in bertft_config.json, so that a loader can tell a
    folder whose files come from different runs. Without `save_model`, model files an older
    run left there are removed: the folder never pairs an old model with new records."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    if result.config.process.save_model and result.model is not None:
        result.model.save_pretrained(out, safe_serialization=True)
        result.tokenizer.save_pretrained(out)
        files = {name: file_sha256(out / name) for name in MODEL_FILES if (out / name).is_file()}
    else:
        for name in MODEL_FILES:
            (out / name).unlink(missing_ok=True)
    write_json_atomic(out / CONFIG_FILE, {"kind": result.kind,
                                          "label_names": list(result.label_names),
                                          "config": result.config.to_dict(), "files": files})
    write_json_atomic(out / METRICS_FILE, result.metrics_json())
    return out


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read once per process for each version of the file: cached
    by the file's identity and its size, mtime and ctime (a rewrite changes the ctime, which no
    tool can set back). The 90 MB of minilm-l6's weights take about 0.1-0.2 s on one core."""
    st = Path(path).stat()
    return _sha256(str(Path(path).resolve()), st.st_dev, st.st_ino, st.st_size,
                   st.st_mtime_ns, st.st_ctime_ns)


@functools.lru_cache(maxsize=4096)
def _sha256(path: str, *version: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_run_config(run_dir: str | Path) -> tuple[Config, str, tuple[str, ...]]:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise BertftError(f"{run_dir}: not a bertft run directory (no {CONFIG_FILE}); "
                          "create one with `bertft train ... --out DIR`")
    try:
        blob = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BertftError(f"{path}: unreadable ({exc}); the run directory is damaged") from None
    problem = _run_config_problem(blob)
    if problem:
        raise BertftError(f"{path}: {problem}; the run directory is damaged")
    return (Config.from_dict(blob["config"], source=str(path)), blob["kind"],
            tuple(blob["label_names"]))


def _run_config_problem(blob: Any) -> str | None:
    """What is wrong with the shape of a parsed bertft_config.json, or None."""
    if not isinstance(blob, dict):
        return f"expected a JSON object, found {type(blob).__name__}"
    missing = [k for k in ("config", "kind", "label_names") if k not in blob]
    if missing:
        return f"missing key{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
    if not isinstance(blob["config"], dict):
        return f"'config' is {type(blob['config']).__name__}; expected an object of settings"
    if blob["kind"] not in KINDS:
        return f"'kind' is {blob['kind']!r}; expected {' or '.join(map(repr, KINDS))}"
    names = blob["label_names"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return "'label_names' must be a list of strings"
    return None


def check_model_files(run_dir: str | Path, label_names: tuple[str, ...]) -> dict[str, Any]:
    """Before loading a run's model: the files are there, config.json parses and names the
    run's labels, and each file is the one the run wrote (its recorded SHA-256). Returns the
    parsed config.json; raises one BertftError saying what is wrong otherwise."""
    run = Path(run_dir)
    if not (run / "config.json").is_file():
        raise BertftError(f"{run}: no model files (the run was saved with save_model=false, "
                          "or config.json was removed)")
    for needed, what in (("model.safetensors", "model weights"),):
        if not (run / needed).is_file():
            raise BertftError(f"{run}: {needed} is missing ({what}); the run directory is "
                              "incomplete: train again")
    if not any((run / t).is_file() for t in ("tokenizer.json", "vocab.txt", "vocab.json")):
        raise BertftError(f"{run}: no tokenizer files (tokenizer.json or vocab.txt); the run "
                          "directory is incomplete: train again")
    recorded = json.loads((run / CONFIG_FILE).read_text(encoding="utf-8")).get("files")
    for name, digest in (recorded.items() if isinstance(recorded, dict) else ()):
        path = run / name
        if not path.is_file():
            raise BertftError(f"{path}: missing; the run wrote it (bertft_config.json lists "
                              "it): the run directory is incomplete")
        if file_sha256(path) != digest:
            raise BertftError(f"{path}: not the file this run wrote (its SHA-256 differs from "
                              f"the one in {CONFIG_FILE}); the folder mixes files of different "
                              "runs: train again with --overwrite")
    try:
        model_cfg = json.loads((run / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BertftError(f"{run / 'config.json'}: unreadable ({exc}); the run directory is "
                          "damaged") from None
    id2label = model_cfg.get("id2label") if isinstance(model_cfg, dict) else None
    found = [id2label.get(str(i)) for i in range(len(id2label))] \
        if isinstance(id2label, dict) else None
    if found != list(label_names):
        raise BertftError(f"{run / 'config.json'}: the model's labels {found} differ from the "
                          f"run's {list(label_names)} ({CONFIG_FILE}); the folder mixes files "
                          "of different runs")
    return model_cfg


DATA_SOURCES = ("train_file", "validation_file", "test_file", "dataset", "data_dir")


def check_run_data(run_dir: str | Path, cfg: Config, fingerprint: str, split: str) -> str:
    """Before evaluating a saved run: the data loaded now (`fingerprint`) must be the data it
    was trained on (the fingerprint in its metrics.json), or its splits may be carved anew and
    the evaluated split hold training examples. Raises one BertftError naming the data files;
    returns the stored fingerprint ('' when the run recorded none: nothing to compare)."""
    try:
        stored = json.loads((Path(run_dir) / METRICS_FILE).read_text(encoding="utf-8"))
        stored = stored["data"]["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    if not isinstance(stored, str) or stored == fingerprint:
        return stored if isinstance(stored, str) else ""
    sources = [f"{k} {v}" for k in DATA_SOURCES if (v := getattr(cfg.data, k)) is not None]
    named = ", ".join(sources) or f"the data of task {cfg.data.task}"
    raise BertftError(f"{run_dir}: the data differ from the data the run was trained on (data "
                      f"fingerprint {stored} in {METRICS_FILE}, now {fingerprint}): {named} "
                      f"changed since, so the {split} split may hold training examples; "
                      "restore the data the run was trained on, or train again")
