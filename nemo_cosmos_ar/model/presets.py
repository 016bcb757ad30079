"""Named model sizes. Each preset is a factory so callers always get a fresh, mutable config.

``tiny`` is the CPU workhorse and turns every feature on that the real sizes use somewhere: GQA, a q width
(heads·head_dim = 128) that differs from the hidden size (as in the 12B), and YaRN.
"""

from __future__ import annotations

from typing import Callable

from nemo_cosmos_ar.model.config import CosmosARConfig


def _tiny() -> CosmosARConfig:
    # 17 frames at 64x96 -> latent grid 3x4x6 = 72 tokens.
    return CosmosARConfig(
        name="tiny", n_layers=2, dim=64, n_heads=4, n_kv_heads=2, head_dim=32, ffn_hidden_size=160,
        latent_shape=(3, 4, 6), apply_yarn=True, yarn_scale=2.0, yarn_beta_fast=4.0, yarn_beta_slow=1.0,
        original_latent_shape=(2, 4, 6),
    )  # fmt: skip


def _4b() -> CosmosARConfig:
    return CosmosARConfig(
        name="4b", n_layers=16, dim=4096, n_heads=32, n_kv_heads=8, head_dim=128, ffn_hidden_size=14336,
        latent_shape=(5, 40, 64),
    )  # fmt: skip


def _12b() -> CosmosARConfig:
    return CosmosARConfig(
        name="12b", n_layers=40, dim=5120, n_heads=32, n_kv_heads=8, head_dim=128, ffn_hidden_size=14336,
        latent_shape=(5, 40, 64), apply_yarn=True, yarn_scale=2.0, yarn_beta_fast=4.0, yarn_beta_slow=1.0,
        original_latent_shape=(3, 40, 64),
    )  # fmt: skip


PRESETS: dict[str, Callable[[], CosmosARConfig]] = {"tiny": _tiny, "4b": _4b, "12b": _12b}


def get_preset(name: str) -> CosmosARConfig:
    key = name.lower()
    if key not in PRESETS:
        raise KeyError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[key]()
