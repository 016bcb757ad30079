"""Native Cosmos (cosmos-predict1 ``model.pt``) <-> Megatron-Core ``GPTModel`` parameter names, declared as data.

Native keys are written without the ``model.`` prefix of the released file; ``add_prefix``/``strip_prefix``
handle it at the file boundary. ``{i}`` stands for the layer index.

Two tensors are fused on the Megatron side:
* ``linear_qkv`` = per KV group g: [q heads of group g; k head g; v head g] (the grouping Megatron-Core's
  attention splits again), see ``merge_qkv``;
* ``linear_fc1`` = [w1 (gate, goes through SiLU); w3 (up)], Megatron's ``gated_linear_unit`` layout.

Where the pre-attention / pre-MLP RMSNorm weights live depends on the layer spec: separate modules in the local
(non-TransformerEngine) spec, fused into ``linear_qkv`` / ``linear_fc1`` as ``layer_norm_weight`` in the TE spec.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Mapping

import torch

from nemo_cosmos_ar.model.config import CosmosARConfig

NATIVE_PREFIX = "model."

# One-to-one renames: native -> Megatron-Core.
RENAMES: dict[str, str] = {
    "tok_embeddings.weight": "embedding.word_embeddings.weight",
    "norm.weight": "decoder.final_layernorm.weight",
    "output.weight": "output_layer.weight",
    "layers.{i}.attention.wo.weight": "decoder.layers.{i}.self_attention.linear_proj.weight",
    "layers.{i}.attention.q_norm.weight": "decoder.layers.{i}.self_attention.q_layernorm.weight",
    "layers.{i}.attention.k_norm.weight": "decoder.layers.{i}.self_attention.k_layernorm.weight",
    "layers.{i}.feed_forward.w2.weight": "decoder.layers.{i}.mlp.linear_fc2.weight",
}
# Norm placement per layer spec.
NORM_RENAMES: dict[str, dict[str, str]] = {
    "local": {
        "layers.{i}.attention_norm.weight": "decoder.layers.{i}.input_layernorm.weight",
        "layers.{i}.ffn_norm.weight": "decoder.layers.{i}.pre_mlp_layernorm.weight",
    },
    "te": {
        "layers.{i}.attention_norm.weight": "decoder.layers.{i}.self_attention.linear_qkv.layer_norm_weight",
        "layers.{i}.ffn_norm.weight": "decoder.layers.{i}.mlp.linear_fc1.layer_norm_weight",
    },
}
# Fused targets and their native sources, in concatenation order.
FUSED: dict[str, tuple[str, ...]] = {
    "decoder.layers.{i}.self_attention.linear_qkv.weight": (
        "layers.{i}.attention.wq.weight",
        "layers.{i}.attention.wk.weight",
        "layers.{i}.attention.wv.weight",
    ),
    "decoder.layers.{i}.mlp.linear_fc1.weight": (
        "layers.{i}.feed_forward.w1.weight",
        "layers.{i}.feed_forward.w3.weight",
    ),
}


def native_shapes(cfg: CosmosARConfig) -> dict[str, tuple[int, ...]]:
    """Every key of a native state dict (no prefix) with its shape, in the released file's order.

    That is the module registration order of cosmos-predict1's ``Transformer`` (whose ``state_dict()`` the file is):
    ``TransformerBlock`` registers attention (wq, wk, wv, wo, q_norm, k_norm), feed_forward (w1, w2, w3), then
    attention_norm and ffn_norm.
    """
    d, f, q, kv, hd = cfg.dim, cfg.ffn_hidden_size, cfg.q_width, cfg.kv_width, cfg.head_dim
    out: dict[str, tuple[int, ...]] = {"tok_embeddings.weight": (cfg.vocab_size, d)}
    for i in range(cfg.n_layers):
        p = f"layers.{i}."
        out.update(
            {
                p + "attention.wq.weight": (q, d),
                p + "attention.wk.weight": (kv, d),
                p + "attention.wv.weight": (kv, d),
                p + "attention.wo.weight": (d, q),
                p + "attention.q_norm.weight": (hd,),
                p + "attention.k_norm.weight": (hd,),
                p + "feed_forward.w1.weight": (f, d),
                p + "feed_forward.w2.weight": (d, f),
                p + "feed_forward.w3.weight": (f, d),
                p + "attention_norm.weight": (d,),
                p + "ffn_norm.weight": (d,),
            }
        )
    out["norm.weight"] = (d,)
    out["output.weight"] = (cfg.vocab_size, d)
    return out


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str = NATIVE_PREFIX) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in state.items()}


def add_prefix(state: Mapping[str, torch.Tensor], prefix: str = NATIVE_PREFIX) -> dict[str, torch.Tensor]:
    return {prefix + k: v for k, v in state.items()}


class CheckpointMismatch(ValueError):
    """A state dict does not fit the chosen architecture; the message lists every offending key."""


def check_native(state: Mapping[str, torch.Tensor], cfg: CosmosARConfig, source: str = "checkpoint") -> None:
    """Raise ``CheckpointMismatch`` naming missing/unexpected keys and shape mismatches (expected vs found)."""
    want = native_shapes(cfg)
    missing = [k for k in want if k not in state]
    extra = [k for k in state if k not in want]
    bad = [
        f"  {k}: expected {list(s)}, found {list(state[k].shape)}"
        for k, s in want.items()
        if k in state and tuple(state[k].shape) != s
    ]
    if missing or extra or bad:
        lines = [
            f"{source} does not match the {cfg.name!r} architecture "
            f"({cfg.n_layers} layers, dim {cfg.dim}, {cfg.n_heads}/{cfg.n_kv_heads} heads, head_dim {cfg.head_dim}, "
            f"ffn {cfg.ffn_hidden_size}, vocab {cfg.vocab_size}):"
        ]
        if bad:
            lines += ["shape mismatches:"] + bad
        if missing:
            lines += [
                f"missing keys ({len(missing)}): " + ", ".join(missing[:12]) + (" ..." if len(missing) > 12 else "")
            ]
        if extra:
            lines += [f"unexpected keys ({len(extra)}): " + ", ".join(extra[:12]) + (" ..." if len(extra) > 12 else "")]
        lines.append("Pick the matching preset (--model tiny|4b|12b) or pass the model's config.json (--config).")
        raise CheckpointMismatch("\n".join(lines))


def merge_qkv(wq: torch.Tensor, wk: torch.Tensor, wv: torch.Tensor, cfg: CosmosARConfig) -> torch.Tensor:
    """[H·hd, d], [KV·hd, d], [KV·hd, d] -> [(H + 2·KV)·hd, d], grouped per KV head."""
    kv, hd, d = cfg.n_kv_heads, cfg.head_dim, wq.shape[-1]
    rep = cfg.n_heads // kv
    q = wq.reshape(kv, rep * hd, d)
    return torch.cat([q, wk.reshape(kv, hd, d), wv.reshape(kv, hd, d)], dim=1).reshape(-1, d)


def split_qkv(qkv: torch.Tensor, cfg: CosmosARConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    kv, hd, d = cfg.n_kv_heads, cfg.head_dim, qkv.shape[-1]
    rep = cfg.n_heads // kv
    g = qkv.reshape(kv, (rep + 2) * hd, d)
    q, k, v = g.split([rep * hd, hd, hd], dim=1)
    return q.reshape(-1, d).contiguous(), k.reshape(-1, d).contiguous(), v.reshape(-1, d).contiguous()


def _layer_keys(template: str, n_layers: int) -> Iterator[tuple[int, str]]:
    if "{i}" in template:
        for i in range(n_layers):
            yield i, template.format(i=i)
    else:
        yield -1, template


def native_to_mcore(
    native: Mapping[str, torch.Tensor], cfg: CosmosARConfig, spec: str = "local"
) -> dict[str, torch.Tensor]:
    """Map a full native state dict (no prefix) to Megatron-Core names. Tensors are not copied where not fused."""
    return dict(iter_native_to_mcore(native, cfg, spec))


def iter_native_to_mcore(native: Mapping[str, torch.Tensor], cfg: CosmosARConfig, spec: str = "local"):
    """``native_to_mcore`` one ``(key, tensor)`` at a time: a fused tensor is made when its turn comes, so a caller
    can slice and place it before the next one exists (one fused tensor in memory, not all of them)."""
    for src_t, dst_t in {**RENAMES, **NORM_RENAMES[spec]}.items():
        for i, src in _layer_keys(src_t, cfg.n_layers):
            yield dst_t.format(i=i), native[src]
    for dst_t, srcs in FUSED.items():
        for i in range(cfg.n_layers):
            parts = [native[s.format(i=i)] for s in srcs]
            yield dst_t.format(i=i), merge_qkv(*parts, cfg) if "linear_qkv" in dst_t else torch.cat(parts, dim=0)


def mcore_to_native(
    mcore: Mapping[str, torch.Tensor], cfg: CosmosARConfig, spec: str = "local"
) -> dict[str, torch.Tensor]:
    """Inverse of ``native_to_mcore``; the result is in the released file's key order."""
    inv = {dst: src for src, dst in {**RENAMES, **NORM_RENAMES[spec]}.items()}
    flat: dict[str, torch.Tensor] = {}
    for dst_t, src_t in inv.items():
        for i, dst in _layer_keys(dst_t, cfg.n_layers):
            flat[src_t.format(i=i)] = mcore[dst]
    for i in range(cfg.n_layers):
        wq, wk, wv = split_qkv(mcore[f"decoder.layers.{i}.self_attention.linear_qkv.weight"], cfg)
        w1, w3 = mcore[f"decoder.layers.{i}.mlp.linear_fc1.weight"].chunk(2, dim=0)
        flat.update(
            {
                f"layers.{i}.attention.wq.weight": wq,
                f"layers.{i}.attention.wk.weight": wk,
                f"layers.{i}.attention.wv.weight": wv,
                f"layers.{i}.feed_forward.w1.weight": w1.contiguous(),
                f"layers.{i}.feed_forward.w3.weight": w3.contiguous(),
            }
        )
    return {k: flat[k] for k in native_shapes(cfg)}


def mcore_keys(cfg: CosmosARConfig, spec: str = "local") -> list[str]:
    return sorted(mcore_shapes(cfg, spec))


def mcore_shapes(cfg: CosmosARConfig, spec: str = "local") -> dict[str, tuple[int, ...]]:
    """Every Megatron-Core tensor of ``cfg`` with its full (TP=1) shape, derived from ``native_shapes`` through the
    mapping: renamed tensors keep their shape, fused ones stack their sources' rows."""
    native = native_shapes(cfg)
    out: dict[str, tuple[int, ...]] = {}
    for src_t, dst_t in {**RENAMES, **NORM_RENAMES[spec]}.items():
        for i, src in _layer_keys(src_t, cfg.n_layers):
            out[dst_t.format(i=i)] = native[src]
    for dst_t, srcs in FUSED.items():
        for i in range(cfg.n_layers):
            shapes = [native[s.format(i=i)] for s in srcs]
            out[dst_t.format(i=i)] = (sum(s[0] for s in shapes), *shapes[0][1:])
    return out


def layer_spec_of(param_names: Iterable[str]) -> str:
    """Which layer spec built a Megatron-Core model, from its parameter names: "te" fuses the pre-attention norm into
    ``linear_qkv`` (``layer_norm_weight``), "local" keeps it a separate module. Distributed checkpoints store the TE
    names whichever spec saved them."""
    return "te" if any(k.endswith("linear_qkv.layer_norm_weight") for k in param_names) else "local"


# ---- Megatron tensor-parallel layout of a full (TP=1) Megatron-Core state dict ----
_ROW_PARALLEL = ("self_attention.linear_proj.weight", "mlp.linear_fc2.weight")  # split input columns
_COLUMN_PARALLEL = ("self_attention.linear_qkv.weight", "embedding.word_embeddings.weight", "output_layer.weight")


def mcore_tp_slice(key: str, tensor: torch.Tensor, tp: int, rank: int) -> torch.Tensor:
    """This TP rank's part of one full Megatron-Core tensor, as Megatron lays it out.

    QKV rows are grouped per KV head, so contiguous row chunks give each rank whole KV groups. ``linear_fc1`` is
    [gate; up] and each rank holds [gate_r; up_r]. Norms are replicated.
    """
    if tp == 1:
        return tensor
    if key.endswith("mlp.linear_fc1.weight"):
        gate, up = tensor.chunk(2, dim=0)
        return torch.cat([gate.chunk(tp, 0)[rank], up.chunk(tp, 0)[rank]], dim=0).contiguous()
    if key.endswith(_COLUMN_PARALLEL):
        return tensor.chunk(tp, dim=0)[rank].contiguous()
    if key.endswith(_ROW_PARALLEL):
        return tensor.chunk(tp, dim=1)[rank].contiguous()
    return tensor
