"""Architecture of the Cosmos-Predict1 AR transformer as one plain, typed dataclass.

Field names follow cosmos-predict1's ``ModelConfig`` (``n_layers``, ``dim``, ``n_heads`` ...) so that a
``config.json`` written by either project reads straight into this class. Nothing here imports NeMo or Megatron:
the Megatron-Core model is built from this config in ``model/mcore.py`` and the NeMo glue maps it in
``nemo_glue/model.py``.

``latent_shape`` (T', H', W' of the DV8x16x16 token grid) is the single source of truth for the sequence length,
the 3D RoPE table and the data layout.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from nemo_cosmos_ar.tokenizer import grid
from nemo_cosmos_ar.tokenizer.fsq import CODEBOOK_SIZE
from nemo_cosmos_ar.tokenizer.grid import SPATIAL_COMPRESSION, TEMPORAL_COMPRESSION  # noqa: F401  (re-exported)

# The base models predict exactly the tokenizer's codes (FSQ levels [8,8,8,5,5,5]: 64,000 ids, no special tokens).
VIDEO_VOCAB_SIZE = CODEBOOK_SIZE

# Token grid (T', H', W') of a ``num_frames x height x width`` clip; the rules live in ``tokenizer/grid.py``.
latent_shape_for = grid.latent_shape


@dataclass(kw_only=True)
class CosmosARConfig:
    """Shape and numerics of a Cosmos-Predict1 base AR model (no cross-attention)."""

    n_layers: int
    dim: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    ffn_hidden_size: int
    vocab_size: int = VIDEO_VOCAB_SIZE
    norm_eps: float = 1e-5
    rope_theta: float = 500000.0
    latent_shape: tuple[int, int, int] = (5, 40, 64)
    # YaRN frequency scaling (12B only). mscale is computed by cosmos-predict1 but never applied, so there is none.
    apply_yarn: bool = False
    yarn_scale: float = 1.0
    yarn_beta_fast: float = 4.0
    yarn_beta_slow: float = 1.0
    original_latent_shape: tuple[int, int, int] | None = None
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        self.latent_shape = tuple(int(x) for x in self.latent_shape)  # type: ignore[assignment]
        if self.original_latent_shape is not None:
            self.original_latent_shape = tuple(int(x) for x in self.original_latent_shape)  # type: ignore
        for f in ("n_layers", "dim", "n_heads", "n_kv_heads", "head_dim", "ffn_hidden_size", "vocab_size"):
            if getattr(self, f) <= 0:
                raise ValueError(f"CosmosARConfig.{f} must be positive, got {getattr(self, f)}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads={self.n_heads} must be a multiple of n_kv_heads={self.n_kv_heads} (GQA)")
        if self.head_dim % 2 or self.head_dim < 6:
            raise ValueError(f"head_dim={self.head_dim} must be even and >= 6 for the 3D RoPE split")
        if len(self.latent_shape) != 3 or min(self.latent_shape) <= 0:
            raise ValueError(f"latent_shape must be three positive ints (T, H, W), got {self.latent_shape}")
        if self.apply_yarn:
            if self.original_latent_shape is None or len(self.original_latent_shape) != 3:
                raise ValueError("apply_yarn=True needs original_latent_shape (T, H, W)")
            if self.yarn_scale <= 0 or self.yarn_beta_fast <= self.yarn_beta_slow:
                raise ValueError("YaRN needs yarn_scale > 0 and yarn_beta_fast > yarn_beta_slow")

    # ---- derived values (never stored twice) ----
    @property
    def seq_length(self) -> int:
        return grid.tokens_per_clip(self.latent_shape)

    @property
    def tokens_per_latent_frame(self) -> int:
        return grid.tokens_per_frame(self.latent_shape)

    @property
    def q_width(self) -> int:
        return self.n_heads * self.head_dim

    @property
    def kv_width(self) -> int:
        return self.n_kv_heads * self.head_dim

    def num_params(self, include_embedding: bool = True) -> int:
        """Parameter count computed from the shapes (matches the released checkpoints' tensor sizes)."""
        d, f = self.dim, self.ffn_hidden_size
        per_layer = (
            d * self.q_width  # wq
            + 2 * d * self.kv_width  # wk, wv
            + self.q_width * d  # wo
            + 3 * d * f  # w1, w2, w3
            + 2 * d  # attention_norm, ffn_norm
            + 2 * self.head_dim  # q_norm, k_norm
        )
        total = self.n_layers * per_layer + d + self.vocab_size * d  # final norm, output head
        if include_embedding:
            total += self.vocab_size * d
        return total

    def train_flops_per_token(self, seq_length: int | None = None) -> float:
        """Model FLOPs per trained token, forward + backward: 6·N (N without the input embedding) plus causal
        attention 6·L·S·(heads·head_dim). The same count the benchmarks use for model TFLOP/s."""
        s = self.seq_length if seq_length is None else seq_length
        return 6.0 * self.num_params(include_embedding=False) + 6.0 * self.n_layers * s * self.q_width

    def with_latent_shape(self, latent_shape: tuple[int, int, int]) -> CosmosARConfig:
        return dataclasses.replace(self, latent_shape=tuple(latent_shape))

    # ---- cosmos-predict1 config.json ----
    JSON_FIELDS = (
        "n_layers",
        "dim",
        "n_heads",
        "n_kv_heads",
        "head_dim",
        "ffn_hidden_size",
        "vocab_size",
        "norm_eps",
        "rope_theta",
        "apply_yarn",
        "yarn_scale",
        "yarn_beta_fast",
        "yarn_beta_slow",
        "original_latent_shape",
    )

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.JSON_FIELDS}
        d["video_latent_shape"] = list(self.latent_shape)
        if d["original_latent_shape"] is not None:
            d["original_latent_shape"] = list(d["original_latent_shape"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config") -> CosmosARConfig:
        """Build from cosmos-predict1 ``ModelConfig`` field names; unknown fields are ignored, missing ones named,
        wrong types and out-of-range values named with the allowed range (``checks.MODEL_CONFIG_FIELDS``)."""
        from nemo_cosmos_ar.checks import MODEL_CONFIG_FIELDS, check_fields

        d = check_fields(d, MODEL_CONFIG_FIELDS, source)
        if "video_latent_shape" in d:
            d["latent_shape"] = d.pop("video_latent_shape")
        if d.get("head_dim") is None and "dim" in d and "n_heads" in d:
            d["head_dim"] = d["dim"] // d["n_heads"]
        known = {f.name for f in dataclasses.fields(cls)}
        required = ["n_layers", "dim", "n_heads", "n_kv_heads", "head_dim", "ffn_hidden_size"]
        missing = [k for k in required if d.get(k) is None]
        if missing:
            raise ValueError(f"{source}: missing architecture field(s) {missing}")
        return cls(**{k: v for k, v in d.items() if k in known and v is not None})

    @classmethod
    def from_json(cls, path: str) -> CosmosARConfig:
        try:
            with open(path) as f:
                d = json.load(f)
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"cannot read model config {path}: {e}") from e
        return cls.from_dict(d, source=path)

    def to_json(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2)
