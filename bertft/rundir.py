"""The run directory: `save_pretrained`-compatible model files plus bertft's own records.

    RUN_DIR/
      config.json, model.safetensors      transformers model (id2label holds the label names)
      tokenizer.json, tokenizer_config.json ...
      bertft_config.json                  the full resolved bertft Config and the task kind
      metrics.json                        {"validation", "test", "history", "best", "timing", ...}
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from bertft.config import Config
from bertft.errors import BertftError

CONFIG_FILE = "bertft_config.json"
METRICS_FILE = "metrics.json"


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over the target:
    a reader never sees a half-written file, whatever kills the writer."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=False, default=_jsonable)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, set | tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def save_run(result, out_dir: str | Path) -> Path:
    """Write model, tokenizer, resolved config and metrics into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if result.config.process.save_model and result.model is not None:
        result.model.save_pretrained(out, safe_serialization=True)
        result.tokenizer.save_pretrained(out)
    write_json_atomic(out / CONFIG_FILE, {"kind": result.kind,
                                          "label_names": list(result.label_names),
                                          "config": result.config.to_dict()})
    write_json_atomic(out / METRICS_FILE, result.metrics_json())
    return out


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
    if blob["kind"] not in ("classification", "ner"):
        return f"'kind' is {blob['kind']!r}; expected 'classification' or 'ner'"
    names = blob["label_names"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return "'label_names' must be a list of strings"
    return None
