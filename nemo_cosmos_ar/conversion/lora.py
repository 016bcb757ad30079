"""LoRA adapters in Cosmos terms (torch only, no NeMo): merging them into base weights, and naming them natively.

A LoRA run trains, for each adapted linear ``W`` [out, in], two matrices ``A`` [r, in] and ``B`` [out, r]; the
layer computes ``x W^T + (alpha / r) x A^T B^T``, so the merged weight is ``W + (alpha / r) B A``. The adapters are
stored per Megatron linear (fused QKV and fused fc1 included), in the same global row order as the base weight
(distributed checkpoints are TP-independent), so the merge happens on the Megatron tensors before they are split
into native keys, and a TP-sharded run merges exactly like a TP=1 one.

Adapters alone (``cosmos-ar convert export --adapters-only``) are written under cosmos-predict1's module names in
the Hugging Face PEFT layout: ``adapter_model.safetensors`` with ``base_model.model.layers.{i}.attention.wq.lora_A
.weight`` [r, in] / ``...lora_B.weight`` [out, r], and ``adapter_config.json``. A fused adapter becomes one adapter
per native linear with the shared ``A`` and its rows of ``B`` (wq/wk/wv from QKV, w1/w3 from fc1): that is exact,
``B_q A`` is the wq rows of ``B A``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator

import torch

from nemo_cosmos_ar.conversion.writers import atomic_outputs, write_safetensors
from nemo_cosmos_ar.model import checkpoint_mapping as cm
from nemo_cosmos_ar.model.config import CosmosARConfig

# Megatron linear -> the native linears it holds, in the order of its rows.
NATIVE_LINEARS = {
    "linear_qkv": ("attention.wq", "attention.wk", "attention.wv"),
    "linear_proj": ("attention.wo",),
    "linear_fc1": ("feed_forward.w1", "feed_forward.w3"),
    "linear_fc2": ("feed_forward.w2",),
}
PEFT_PREFIX = "base_model.model."
ADAPTER_WEIGHTS, ADAPTER_CONFIG = "adapter_model.safetensors", "adapter_config.json"


def merge(weight: torch.Tensor, a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    """``W + scale · B A`` in fp32 (the writer casts once, to the output dtype)."""
    return weight.float() + scale * (b.float() @ a.float())


def split_rows(linear: str, b: torch.Tensor, cfg: CosmosARConfig) -> list[torch.Tensor]:
    """The rows of a Megatron linear's ``B`` (or weight) that belong to each of its native linears."""
    if linear == "linear_qkv":
        return list(cm.split_qkv(b, cfg))
    if linear == "linear_fc1":
        return [c.contiguous() for c in b.chunk(2, dim=0)]
    return [b]


def native_shapes(cfg: CosmosARConfig, rank: int, linears: Iterable[str]) -> dict[str, tuple[int, ...]]:
    """``base_model.model.layers.{i}.<module>.lora_A/B.weight`` -> shape, for the adapted Megatron linears."""
    d, f = cfg.dim, cfg.ffn_hidden_size
    dims = {
        "attention.wq": (d, cfg.q_width),
        "attention.wk": (d, cfg.kv_width),
        "attention.wv": (d, cfg.kv_width),
        "attention.wo": (cfg.q_width, d),
        "feed_forward.w1": (d, f),
        "feed_forward.w3": (d, f),
        "feed_forward.w2": (f, d),
    }
    out = {}
    for i in range(cfg.n_layers):
        for linear in sorted(linears, key=list(NATIVE_LINEARS).index):
            for module in NATIVE_LINEARS[linear]:
                fan_in, fan_out = dims[module]
                out[f"{PEFT_PREFIX}layers.{i}.{module}.lora_A.weight"] = (rank, fan_in)
                out[f"{PEFT_PREFIX}layers.{i}.{module}.lora_B.weight"] = (fan_out, rank)
    return out


def iter_native_adapters(
    layers: Iterable[tuple[int, dict[str, tuple[torch.Tensor, torch.Tensor]]]], cfg: CosmosARConfig
) -> Iterator[tuple[str, torch.Tensor]]:
    """``(layer index, {megatron linear: (A, B)})`` -> native PEFT keys and tensors, in ``native_shapes`` order."""
    for i, adapters in layers:
        for linear in sorted(adapters, key=list(NATIVE_LINEARS).index):
            a, b = adapters[linear]
            for module, rows in zip(NATIVE_LINEARS[linear], split_rows(linear, b, cfg)):
                yield f"{PEFT_PREFIX}layers.{i}.{module}.lora_A.weight", a
                yield f"{PEFT_PREFIX}layers.{i}.{module}.lora_B.weight", rows


def adapter_config(
    cfg: CosmosARConfig, rank: int, alpha: float, dropout: float, linears: Iterable[str], base: str, dtype: torch.dtype
) -> dict:
    """``adapter_config.json`` in Hugging Face PEFT's field names, plus the Cosmos architecture it belongs to."""
    modules = [m.split(".")[1] for lin in sorted(linears, key=list(NATIVE_LINEARS).index) for m in NATIVE_LINEARS[lin]]
    return {
        "peft_type": "LORA",
        "r": rank,
        "lora_alpha": alpha,
        "lora_dropout": dropout,
        "target_modules": modules,
        "bias": "none",
        "fan_in_fan_out": False,
        "base_model_name_or_path": base,
        "task_type": None,
        "cosmos_ar_preset": cfg.name,
        "cosmos_ar_config": cfg.to_dict(),
        "torch_dtype": str(dtype).removeprefix("torch."),
    }


def write_adapters(
    folder: str | Path,
    tensors: Iterable[tuple[str, torch.Tensor]],
    config: dict,
    shapes: dict[str, tuple[int, ...]],
    *,
    overwrite: bool = False,
    dtype: torch.dtype = torch.bfloat16,
) -> Path:
    """A folder with ``adapter_model.safetensors`` (streamed, ``shapes`` order) and ``adapter_config.json``."""
    folder = Path(folder)
    with atomic_outputs([folder], overwrite, directory=True) as (tmp,):
        (tmp / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        layout = [(k, s, dtype) for k, s in shapes.items()]
        write_safetensors(tmp / ADAPTER_WEIGHTS, layout, tensors, {"format": "pt"}, label=folder / ADAPTER_WEIGHTS)
    return folder
