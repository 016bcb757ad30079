"""Named model sizes: the one table of them. Everything else (the NeMo config classes ``CosmosARConfigTiny/4B/12B``,
the CLI's ``--model`` choices, the importer's shape matching) is derived from ``SIZES``.

Fields not given take ``CosmosARConfig``'s defaults (vocabulary = the tokenizer's 64,000 codes, RMSNorm eps 1e-5,
RoPE theta 500,000, YaRN betas 4 / 1). ``tiny`` is the CPU workhorse and turns every feature on that the real sizes
use somewhere: GQA, a q width (heads·head_dim = 128) that differs from the hidden size (as in the 12B), and YaRN.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from nemo_cosmos_ar.model.config import CosmosARConfig

SIZES: dict[str, dict[str, Any]] = {
    # 17 frames at 64x96 -> latent grid 3x4x6 = 72 tokens.
    "tiny": dict(
        n_layers=2,
        dim=64,
        n_heads=4,
        n_kv_heads=2,
        head_dim=32,
        ffn_hidden_size=160,
        latent_shape=(3, 4, 6),
        apply_yarn=True,
        yarn_scale=2.0,
        original_latent_shape=(2, 4, 6),
    ),
    # Cosmos-Predict1-4B: 16 layers, hidden 4096, FFN 14336, 32 heads / 8 KV groups; 33 frames at 640x1024.
    "4b": dict(
        n_layers=16,
        dim=4096,
        n_heads=32,
        n_kv_heads=8,
        head_dim=128,
        ffn_hidden_size=14336,
        latent_shape=(5, 40, 64),
    ),
    # Cosmos-Predict1-12B: 40 layers, hidden 5120, head dim 128 (q width 4096), YaRN over the [3, 40, 64] grid.
    "12b": dict(
        n_layers=40,
        dim=5120,
        n_heads=32,
        n_kv_heads=8,
        head_dim=128,
        ffn_hidden_size=14336,
        latent_shape=(5, 40, 64),
        apply_yarn=True,
        yarn_scale=2.0,
        original_latent_shape=(3, 40, 64),
    ),
}

# name -> factory: callers always get a fresh, mutable config.
PRESETS: dict[str, Callable[[], CosmosARConfig]] = {
    name: functools.partial(CosmosARConfig, name=name, **fields) for name, fields in SIZES.items()
}


def get_preset(name: str) -> CosmosARConfig:
    key = name.lower()
    if key not in PRESETS:
        raise KeyError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[key]()


def as_config(spec: str | CosmosARConfig) -> CosmosARConfig:
    """The one resolver of an architecture argument: a ``CosmosARConfig`` as is, a preset name (tiny, 4b, 12b), or
    the path of a cosmos-predict1 style ``config.json`` (``ValueError`` naming the file when it cannot be read)."""
    if isinstance(spec, CosmosARConfig):
        return spec
    text = str(spec)
    if text.lower() in PRESETS:
        return get_preset(text)
    return CosmosARConfig.from_json(text)
