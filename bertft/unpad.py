"""BERT layers on the real tokens of a batch only: no compute on padding.

A padded batch is [B, L] token ids of which only T are real. Embeddings, the Q/K/V, output and
feed-forward projections, layer norms and dropout are per-token, so they run on a packed
[T, hidden] tensor; only attention needs the [B, L] layout, so Q, K and V are scattered into it
for `scaled_dot_product_attention` (keys masked by the attention mask) and the context is
gathered back. The last hidden states are scattered to [B, L, hidden] for the model's own pooler
and head. This is the "unpadding" of NVIDIA's and MosaicBERT's BERT: with randomly ordered
batches of short sentences most of a padded batch is padding (SST-2, batch 32: 3x the real
tokens), and with length-grouped batches about 10%.

The computation equals `BertModel`'s (eval-mode logits agree to float rounding, tested in
tests/test_unpad.py); only dropout masks are drawn over the packed tensor instead of the padded
one, so a seeded run is reproducible but not bitwise equal to the padded path. Supported: BERT
encoders (`BertForSequenceClassification`, `BertForTokenClassification`) with absolute position
embeddings, eager or SDPA attention, no decoder/cross-attention and no feed-forward chunking;
anything else runs padded (`unsupported_reason` says why), and so does a batch with less than
`unpad_min_padding` (a Config field, 5% by default) of padding, where the scatter and gather
would cost what they save.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bertft.kinds import KINDS, kind_of
from bertft.models import encoder_parts

SUPPORTED = tuple(dict.fromkeys(k.head_class for k in KINDS.values()))  # the kinds' heads
TOKEN_INDEX = "token_index"  # batch key: flat positions of the real tokens in [B * L]
# A batch runs unpadded only when at least `unpad_min_padding` of it is padding (a Config field,
# 5% by default): below it, scattering and gathering cost about what the padding does
# (minilm-l6, SST-2, 2-core CPU: 2% slower at under 2% padding, even at 5-10%, 14% faster at
# over 20%).


def architecture_reason(model: nn.Module, kind: str) -> str | None:
    """Why `head` (and the frozen-prefix cache) cannot reproduce `model`'s top, or None."""
    name = type(model).__name__
    if name != kind_of(kind).head_class:
        return f"{name} is not one of {', '.join(SUPPORTED)}"
    if kind_of(kind).pooled and getattr(model.base_model, "pooler", None) is None:
        return "the model has no pooler"
    return None


def unsupported_reason(model: nn.Module, kind: str) -> str | None:
    """Why `model` cannot run unpadded, or None when it can."""
    if why := architecture_reason(model, kind):
        return why
    config = model.config
    if config._attn_implementation not in ("eager", "sdpa"):
        return f"attention implementation {config._attn_implementation!r} (eager or sdpa only)"
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        return f"position_embedding_type {config.position_embedding_type!r} (absolute only)"
    if config.is_decoder or getattr(config, "add_cross_attention", False):
        return "a decoder / cross-attention model"
    if getattr(config, "chunk_size_feed_forward", 0):
        return "chunked feed-forward (chunk_size_feed_forward > 0)"
    return None


def token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Flat positions of the real tokens (computed on the host, so the GPU never syncs)."""
    return attention_mask.flatten().nonzero().squeeze(1)


def worth_unpadding(attention_mask: torch.Tensor, min_padding: float) -> bool:
    """Whether at least `min_padding` of the batch is padding (decided on the host, per batch;
    the choice depends only on the batch, so seeded runs stay reproducible)."""
    return float(attention_mask.sum()) <= (1 - min_padding) * attention_mask.numel()


def embed(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Embeddings of the real tokens only, [T, hidden], with each example's positions."""
    ids, index = batch["input_ids"], batch[TOKEN_INDEX]
    types = batch.get("token_type_ids")
    return encoder_parts(model).embeddings(
        input_ids=ids.flatten()[index][None],
        token_type_ids=None if types is None else types.flatten()[index][None],
        position_ids=(index % ids.shape[1])[None])[0]


def layers(stack: list[nn.Module], x: torch.Tensor, index: torch.Tensor,
           attention_mask: torch.Tensor) -> torch.Tensor:
    """`stack` of BertLayers on packed states x [T, hidden]; the mask is the batch's [B, L]."""
    b, length = attention_mask.shape
    keys = attention_mask.bool()[:, None, None, :]  # [B, 1, 1, L]: True = attend
    for layer in stack:
        x = _layer(layer, x, index, b, length, keys)
    return x


def _layer(layer: nn.Module, x: torch.Tensor, index: torch.Tensor, b: int, length: int,
           keys: torch.Tensor) -> torch.Tensor:
    sa = layer.attention.self
    heads, size = sa.num_attention_heads, sa.attention_head_size
    qkv = torch.cat([sa.query(x), sa.key(x), sa.value(x)], dim=-1)  # [T, 3 * hidden]
    q, k, v = pad(qkv, index, (b, length)).view(b, length, 3, heads, size
                                                ).permute(2, 0, 3, 1, 4).unbind(0)
    context = F.scaled_dot_product_attention(
        q, k, v, attn_mask=keys, dropout_p=sa.dropout.p if sa.training else 0.0,
        scale=sa.scaling)
    context = context.transpose(1, 2).reshape(b * length, heads * size).index_select(0, index)
    h = layer.attention.output(context, x)  # dense, dropout, LayerNorm(h + x)
    return layer.output(layer.intermediate(h), h)


def pad(x: torch.Tensor, index: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Packed [T, width] back to [B, L, width] (zeros at padding): Q/K/V for attention, and the
    last states for the pooler and head."""
    b, length = shape
    return x.new_zeros(b * length, x.shape[-1]).index_copy(0, index, x).view(b, length, -1)


def head(model: nn.Module, h: torch.Tensor, kind: str) -> torch.Tensor:
    """What BertFor{Sequence,Token}Classification do after the encoder."""
    if kind_of(kind).pooled:
        h = model.base_model.pooler(h)
    return model.classifier(model.dropout(h))


def logits(model: nn.Module, batch: dict[str, torch.Tensor], kind: str) -> torch.Tensor:
    """The model's logits on a padded batch of token ids, computing real tokens only."""
    index, mask = batch[TOKEN_INDEX], batch["attention_mask"]
    x = layers(list(encoder_parts(model).layers), embed(model, batch), index, mask)
    return head(model, pad(x, index, mask.shape), kind)
