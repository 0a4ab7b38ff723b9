"""Inference from a saved run: labels with class probabilities, or entity spans for NER."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoTokenizer,
)

from bertft.config import Config
from bertft.data import clean_text
from bertft.errors import BertftError
from bertft.kinds import kind_of
from bertft.models import _quiet_transformers
from bertft.rundir import check_model_files, read_run_config
from bertft.runtime import resolve_device


@dataclass
class Predictor:
    """Loads a run directory once, predicts many times (the run's preprocessing is applied)."""

    model: Any
    tokenizer: Any
    config: Config
    kind: str
    label_names: tuple[str, ...]
    device: torch.device

    @classmethod
    def from_run(cls, run_dir: str | Path, device: str = "auto") -> Predictor:
        cfg, kind, names = read_run_config(run_dir)
        dev = resolve_device(device)
        check_model_files(run_dir, names)
        auto = kind_of(kind).auto_model()
        try:
            with _quiet_transformers():  # no per-tensor progress bar on stderr
                model = auto.from_pretrained(run_dir, use_safetensors=True).to(dev).eval()
            tokenizer = AutoTokenizer.from_pretrained(run_dir, use_fast=True)
        except Exception as exc:  # noqa: BLE001 - transformers/safetensors raise many kinds
            raise BertftError(f"{run_dir}: cannot load the saved model ({type(exc).__name__}: "
                              f"{str(exc)[:200]}); the run directory is damaged") from None
        vocab = model.config.vocab_size
        # ids past the embedding table fail or alias; a much smaller tokenizer (an empty one
        # rebuilt from missing files) reads text wrongly. Some models pad their table (DeBERTa
        # v3: 128,100 rows for 128,000 tokens), so up to 10% unused rows are fine.
        if len(tokenizer) > vocab or len(tokenizer) < 0.9 * vocab:
            raise BertftError(f"{run_dir}: the tokenizer has {tokenizer.vocab_size} tokens "
                              f"({len(tokenizer)} with added ones) but the model's vocabulary "
                              f"has {vocab}; the tokenizer files do not belong to this model")
        return cls(model, tokenizer, cfg, kind, names, dev)

    @property
    def pairs(self) -> bool:
        """Whether the run was trained on text pairs (`text_pair_column`): then every text
        needs its pair, as in training."""
        return (not kind_of(self.kind).token_level
                and self.config.data.text_pair_column is not None)

    @torch.no_grad()
    def predict(self, texts: list[str], batch_size: int = 32, pairs: list[str] | None = None
                ) -> list[dict[str, Any]]:
        """One row per text: its label and class probabilities, or its entities. A run trained
        on text pairs needs `pairs` (one second text per text); any other run refuses them."""
        check_pairs(self.pairs, len(texts), pairs)
        out: list[dict[str, Any]] = []
        for start in range(0, len(texts), batch_size):
            chunk = texts[start:start + batch_size]
            second = None if pairs is None else pairs[start:start + batch_size]
            out += ([self._entities(t) for t in chunk] if kind_of(self.kind).token_level
                    else self._classify(chunk, second))
        return out

    def _classify(self, texts: list[str], pairs: list[str] | None) -> list[dict[str, Any]]:
        clean = [clean_text(t, self.config.data) for t in texts]
        second = None if pairs is None else [clean_text(t, self.config.data) for t in pairs]
        enc = self.tokenizer(clean, second, truncation=True,
                             max_length=self.config.tokens.max_length,
                             padding=True, return_tensors="pt").to(self.device)
        probs = self.model(**enc).logits.float().softmax(-1).cpu()
        return [{"text": t, **({} if pairs is None else {"text_pair": pairs[i]}),
                 "label": self.label_names[int(p.argmax())], "score": float(p.max()),
                 "probabilities": {n: float(p[i]) for i, n in enumerate(self.label_names)}}
                for i, (t, p) in enumerate(zip(texts, probs, strict=True))]

    def _entities(self, text: str) -> dict[str, Any]:
        """Words are split as CoNLL and WNUT files split them (`split_words`); each word takes
        the prediction of its first word piece (`word_tags`); B-/I- runs become spans with
        character offsets into `text`."""
        spans = split_words(text)
        words = [text[a:b].lower() if self.config.data.lowercase else text[a:b]
                 for a, b in spans]
        if not words:
            return {"text": text, "entities": []}
        enc = self.tokenizer([words], is_split_into_words=True, truncation=True,
                             max_length=self.config.tokens.max_length, return_tensors="pt")
        probs = self.model(**enc.to(self.device)).logits.float().softmax(-1)[0].cpu()
        tags = word_tags(enc.word_ids(0), probs, self.label_names, len(words))
        return {"text": text, "entities": bio_spans(tags, spans, text)}


def check_pairs(trained_on_pairs: bool, n_texts: int, pairs: list[str] | None) -> None:
    """A pair-trained run answers for pairs only, any other run for single texts only: one
    BertftError otherwise (a lone text would get an answer the model was never trained for)."""
    if trained_on_pairs and pairs is None:
        raise BertftError("predict: this run was trained on text pairs (text_pair_column is "
                          "set); give each text its pair: --pair TEXT once per TEXT, or --file "
                          "with TEXT<tab>PAIR lines (Python: predict(texts, pairs=...))")
    if not trained_on_pairs and pairs is not None:
        raise BertftError("predict: this run was trained on single texts (no "
                          "text_pair_column); it takes no pairs")
    if pairs is not None and len(pairs) != n_texts:
        raise BertftError(f"predict: {n_texts} texts but {len(pairs)} pairs; give one pair per "
                          "text")


def split_words(text: str) -> list[tuple[int, int]]:
    """The words of raw text as character spans: split at whitespace and at each punctuation
    character, as CoNLL-2003 and WNUT split theirs ("Paris!!" -> Paris ! !), by the `tokenizers`
    library's BERT pre-tokenizer (the word boundaries transformers' token-classification
    pipeline uses for BERT models)."""
    from tokenizers.pre_tokenizers import BertPreTokenizer

    return [span for _, span in BertPreTokenizer().pre_tokenize_str(text)]


def file_lines(text: str) -> list[str]:
    """The lines of a text file as users count them: ended by \\n, \\r\\n or \\r only
    (str.splitlines also splits at form feeds, \\x1c-\\x1e, U+0085, U+2028 and U+2029,
    which sit inside texts)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def split_pair(line: str, path: str, number: int) -> tuple[str, str]:
    """A --file line of a pair-trained run: TEXT<tab>PAIR, or one BertftError naming it."""
    parts = line.split("\t")
    if len(parts) != 2:
        raise BertftError(f"--file {path}: line {number} has {len(parts) - 1} tabs; a run "
                          "trained on text pairs takes TEXT<tab>PAIR lines (one tab)")
    return parts[0], parts[1]


def word_tags(word_ids: list[int | None], probs: torch.Tensor, label_names: tuple[str, ...],
              n_words: int) -> list[tuple[str, float]]:
    """One (tag, score) per word, taken from the word's first piece. A word the tokenizer
    gives no piece (a zero-width or control character only, or one cut off by max_length)
    is `O` with score 0.0: it never takes a neighbour's prediction."""
    tags: list[tuple[str, float]] = [("O", 0.0)] * n_words
    seen: set[int] = set()
    for i, wid in enumerate(word_ids):
        if wid is not None and wid not in seen:
            seen.add(wid)
            tags[wid] = (label_names[int(probs[i].argmax())], float(probs[i].max()))
    return tags


def bio_spans(tags: list[tuple[str, float]], spans: list[tuple[int, int]], text: str
              ) -> list[dict[str, Any]]:
    """Group word-level BIO tags into entities; an I-X that does not continue X starts one."""
    entities: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for (tag, score), (start, end) in zip(tags, spans, strict=True):
        prefix, _, etype = tag.partition("-")
        if prefix == "I" and current is not None and current["type"] == etype:
            current["end"] = end
            current["scores"].append(score)
            continue
        if current is not None:
            entities.append(current)
            current = None
        if prefix in ("B", "I"):
            current = {"type": etype, "start": start, "end": end, "scores": [score]}
    if current is not None:
        entities.append(current)
    return [{"type": e["type"], "text": text[e["start"]:e["end"]], "start": e["start"],
             "end": e["end"], "score": sum(e["scores"]) / len(e["scores"])} for e in entities]
