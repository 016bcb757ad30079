"""Which Cosmos AR architecture a native checkpoint holds, and a check that every tensor fits it (torch only).

The one resolver of a checkpoint's architecture (``resolve_config``): an explicit preset, ``config.json`` or
``CosmosARConfig`` first, else a cosmos-predict1 ``config.json`` next to the weights, else the preset whose shapes the
weights have (``preset_for_shapes``). ``native_io`` reads and writes the files; this module only looks at shapes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from nemo_cosmos_ar.conversion.writers import ConversionError
from nemo_cosmos_ar.model.checkpoint_mapping import CheckpointMismatch, check_native
from nemo_cosmos_ar.model.config import CosmosARConfig
from nemo_cosmos_ar.model.presets import PRESETS, as_config, get_preset

if TYPE_CHECKING:
    from nemo_cosmos_ar.conversion.native_io import NativeCheckpoint

SHAPE_FIELDS = ("n_layers", "dim", "n_heads", "n_kv_heads", "head_dim", "ffn_hidden_size", "vocab_size")


def shape_signature(tensors: Mapping[str, torch.Tensor]) -> dict[str, int] | None:
    """The shape-determined architecture fields of a native state dict, or None if the keys are not Cosmos AR."""
    try:
        n_layers = sum(1 for k in tensors if re.fullmatch(r"layers\.\d+\.attention\.wq\.weight", k))
        vocab, dim = tensors["tok_embeddings.weight"].shape
        hd = tensors["layers.0.attention.q_norm.weight"].shape[0]
        return dict(
            n_layers=n_layers,
            dim=dim,
            n_heads=tensors["layers.0.attention.wq.weight"].shape[0] // hd,
            n_kv_heads=tensors["layers.0.attention.wk.weight"].shape[0] // hd,
            head_dim=hd,
            ffn_hidden_size=tensors["layers.0.feed_forward.w1.weight"].shape[0],
            vocab_size=vocab,
        )
    except (KeyError, ValueError, IndexError):
        return None


def same_shapes(a: CosmosARConfig, b: CosmosARConfig) -> bool:
    """Whether two architectures give every weight the same shape (their ``SHAPE_FIELDS`` agree)."""
    return all(getattr(a, f) == getattr(b, f) for f in SHAPE_FIELDS)


def preset_for_shapes(tensors: Mapping[str, torch.Tensor]) -> str | None:
    """The first preset whose shape fields the weights have, or None."""
    sig = shape_signature(tensors)
    for name in PRESETS:
        p = get_preset(name)
        if sig and all(getattr(p, f) == sig[f] for f in SHAPE_FIELDS):
            return name
    return None


def resolve_config(ckpt: NativeCheckpoint, config: str | Path | CosmosARConfig | None = None) -> CosmosARConfig:
    """The architecture of ``ckpt`` and a check that every tensor fits it.

    ``config`` is a ``CosmosARConfig``, a preset name (tiny, 4b, 12b) or a cosmos-predict1 style ``config.json``.
    Without it: the ``config.json`` next to the weights, else the preset whose shapes the weights have. Raises
    ``CheckpointMismatch`` (listing each offending key with expected and found shape) before anything is written.
    """
    if config is not None:
        cfg = as_config(config)
    elif ckpt.config_path is not None and _is_cosmos_config(ckpt.config_path):
        cfg = CosmosARConfig.from_json(str(ckpt.config_path))
    elif name := preset_for_shapes(ckpt.tensors):
        cfg = get_preset(name)
    else:
        sig = shape_signature(ckpt.tensors)
        raise CheckpointMismatch(
            f"cannot tell the architecture of {ckpt.name}: "
            + (
                f"its shapes {sig} match no preset ({', '.join(PRESETS)})"
                if sig
                else f"it has no Cosmos AR keys (first keys: {list(ckpt.tensors)[:5]})"
            )
            + ". Pass the model's config.json (--config) or a preset (--model)."
        )
    if cfg.name == "custom" and (name := _matching_preset(cfg)):
        cfg.name = name
    try:
        check_native(ckpt.tensors, cfg, source=f"{ckpt.name} ({ckpt.kind})")
    except CheckpointMismatch as e:
        hints = []
        if (name := preset_for_shapes(ckpt.tensors)) and name != cfg.name:
            hints.append(f"The weights have the shapes of the {name!r} preset.")
        if any("cross_attention" in k for k in ckpt.tensors):
            hints.append("Cross-attention keys: Video2World (5B/13B) checkpoints are not supported by this converter.")
        # one line: the problems joined by "; ", at most 6 shape mismatches
        head, *rest = [line.strip() for line in str(e).splitlines() if line.strip()]
        shapes = [r for r in rest if ": expected " in r]
        rest = [r for r in rest if ": expected " not in r and r != "shape mismatches:"]
        if shapes:
            rest.insert(0, "shape mismatches: " + ", ".join(shapes[:6]) + (" ..." if len(shapes) > 6 else ""))
        raise CheckpointMismatch(" ".join([head, "; ".join(rest), *hints])) from None
    return cfg


_COSMOS_KEYS = ("n_layers", "n_heads", "n_kv_heads", "ffn_hidden_size", "video_latent_shape")


def _is_cosmos_config(path: Path) -> bool:
    """A released folder may carry an unrelated config.json; one with any cosmos ModelConfig field counts (and is
    then checked field by field). One that is not a JSON object at all is an error, never silently skipped: the
    architecture would otherwise come from a guess."""
    fix = "fix or remove it, or name the architecture with --config/--model"
    try:
        d = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConversionError(
            f"{path} next to the weights is not valid JSON ({str(e).splitlines()[0]}); {fix}"
        ) from None
    except OSError as e:
        raise ConversionError(f"{path} next to the weights cannot be read ({e.strerror or e}); {fix}") from None
    if not isinstance(d, dict):
        raise ConversionError(
            f"{path} next to the weights holds a JSON {type(d).__name__}, not an object of config fields; {fix}"
        )
    return any(k in d for k in _COSMOS_KEYS)


def _matching_preset(cfg: CosmosARConfig) -> str | None:
    for name in PRESETS:
        if get_preset(name) == cfg:
            return name
    return None
