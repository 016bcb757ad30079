"""cosmos-predict1's tensor-parallel layout of the native weights (torch only).

``cosmos_predict1/autoregressive/utils/checkpoint.py`` (``obtain_tensor_parallel_state_dict`` and
``merge_tensor_parallel_state_dicts``) and ``shard_autoregressive_base_checkpoints.py``: the column-parallel weights
(wq/wk/wv/w1/w3, the embedding and the output head) are cut into contiguous row chunks, the row-parallel ones
(wo/w2) into column chunks, the norms are replicated. ``native_io`` reads and writes the shard files with these rules.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from nemo_cosmos_ar.conversion.writers import ConversionError
from nemo_cosmos_ar.model.config import CosmosARConfig

_ROW_CHUNKED = (
    "attention.wq.weight",
    "attention.wk.weight",
    "attention.wv.weight",
    "feed_forward.w1.weight",
    "feed_forward.w3.weight",
    "tok_embeddings.weight",
    "output.weight",
)
_COLUMN_CHUNKED = ("attention.wo.weight", "feed_forward.w2.weight")


def tp_split_dim(key: str) -> int | None:
    """Dimension cosmos-predict1 chunks ``key`` along under TP (0 rows, 1 columns), None when replicated."""
    if key.endswith(_COLUMN_CHUNKED):
        return 1
    if key.endswith(_ROW_CHUNKED):
        return 0
    return None


def check_tp(cfg: CosmosARConfig, tp: int) -> None:
    """cosmos-predict1 splits whole heads, KV heads, FFN rows and vocab rows; all must divide by ``tp``."""
    dims = {
        "n_heads": cfg.n_heads,
        "n_kv_heads": cfg.n_kv_heads,
        "ffn_hidden_size": cfg.ffn_hidden_size,
        "vocab_size": cfg.vocab_size,
    }
    bad = [f"{k}={v}" for k, v in dims.items() if v % tp]
    if tp < 1 or bad:
        raise ConversionError(
            f"cannot shard the {cfg.name!r} model into TP={tp}: {', '.join(bad) or 'tp < 1'} "
            "not divisible; pick a TP size that divides the head counts, FFN size and vocab"
        )


def merge_tp_shards(shards: Sequence[Mapping[str, torch.Tensor]], files: Sequence[Path]) -> dict[str, torch.Tensor]:
    """Inverse of cosmos-predict1's sharding. Replicated (norm) tensors must agree across shards: bit-identical ones
    are taken from shard 0; close ones are averaged as ``merge_tensor_parallel_state_dicts`` does (with a warning)."""
    keys = list(shards[0])
    for f, s in zip(files[1:], shards[1:]):
        if set(s) != set(keys):
            miss, extra = sorted(set(keys) - set(s)), sorted(set(s) - set(keys))
            raise ConversionError(
                f"TP shard {f} does not have the keys of {files[0]}: missing {miss[:8]}, "
                f"extra {extra[:8]}; all shards must come from the same checkpoint"
            )
    out: dict[str, torch.Tensor] = {}
    for k in keys:
        parts = [s[k] for s in shards]
        dim = tp_split_dim(k)
        if dim is not None:
            out[k] = torch.cat(parts, dim=dim)
            continue
        if "norm" not in k:
            raise ConversionError(
                f"TP shards {files[0].name}...: key {k!r} is neither a split weight nor a norm; "
                "these are not cosmos-predict1 AR shards"
            )
        if all(torch.equal(parts[0], p) for p in parts[1:]):
            out[k] = parts[0]
        elif all(torch.allclose(parts[0].float(), p.float(), atol=5e-2, rtol=0.1) for p in parts[1:]):
            warnings.warn(f"replicated {k} differs across TP shards; averaging like cosmos-predict1 (not bit-exact)")
            out[k] = torch.stack([p.float() for p in parts]).mean(0).to(parts[0].dtype)
        else:
            raise ConversionError(f"replicated tensor {k} differs strongly across TP shards {[f.name for f in files]}")
    return out


def split_tp(key: str, tensor: torch.Tensor, tp: int) -> list[torch.Tensor]:
    """cosmos-predict1's TP chunks of one native tensor, as contiguous tensors (one per rank)."""
    dim = tp_split_dim(key)
    if dim is None:
        return [tensor] * tp
    return [c.contiguous() for c in torch.chunk(tensor, tp, dim=dim)]


def tp_shape(key: str, shape: tuple[int, ...], tp: int) -> tuple[int, ...]:
    """The shape of one rank's chunk of ``key`` (full shape ``shape``) at ``tp``."""
    dim = tp_split_dim(key)
    if dim is None or tp == 1:
        return shape
    return tuple(s // tp if i == dim else s for i, s in enumerate(shape))
