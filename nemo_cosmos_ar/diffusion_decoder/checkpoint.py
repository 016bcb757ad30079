"""The released files of Cosmos-Predict1-7B-Decoder-DV8x16x16ToCV8x8x8-720p: ``model.pt`` and ``aux_vars.pt``.

``model.pt`` is the state dict of NVIDIA's ``ModuleDict(net=DiffusionDecoderGeneralDIT, conditioner, logvar)``
(``diffusion/model/model_t2w.py`` ``build_model``), loaded by cosmos-predict1 with ``torch.load(weights_only=True)``
(``diffusion/inference/inference_utils.py`` ``load_network_model``):

* ``net.<module path>``: the DiT's parameters (569 keys at 7B: 20 per block, plus ``x_embedder.proj.1.weight``
  ``[4096, 196]``, ``token_embedder.weight`` ``[codebook size, 32]``, ``t_embedder.1.linear_{1,2}.weight``,
  ``affline_norm.weight``, ``final_layer.{linear,adaLN_modulation.1,adaLN_modulation.2}.weight``) and the RoPE
  buffer ``net.pos_embedder.seq`` ``[128]``;
* ``logvar.0.freqs``, ``logvar.0.phases`` ``[128]``, ``logvar.1.weight`` ``[1, 128]``: a training-loss weighting
  head, unused at inference (the conditioner has no weights).

Loading here is strict on ``net.*``: a missing, mis-shaped, non-float or unknown ``net.`` key is a one-line
``CheckpointError``. Other top-level keys (``logvar.*``), TransformerEngine ``*._extra_state`` entries and stray RoPE
frequency buffers are ignored, as NVIDIA's non-strict loader does; a missing ``pos_embedder.seq`` (an arange) is
rebuilt. The file is memory-mapped, so a 14 GB checkpoint is not read twice.

``aux_vars.pt`` holds ``{"context": [1, 512, 1024], "context_mask": [1, 512]}``: the T5-XXL embedding of the
generic prompt "high quality, 4k, high definition, smooth video" that cosmos-predict1 uses when there is no text
prompt (``autoregressive/inference/world_generation_pipeline.py`` L227-235), so no T5 model is needed.
"""

from __future__ import annotations

from pathlib import Path

import torch

from nemo_cosmos_ar.diffusion_decoder.config import DIT_PRESETS, DiTConfig, get_dit_config
from nemo_cosmos_ar.diffusion_decoder.network import DiffusionDecoderDiT
from nemo_cosmos_ar.runtime import copy_to_device

MODEL_FILE = "model.pt"
AUX_FILE = "aux_vars.pt"
NET_PREFIX = "net."
WIDTH_KEY = NET_PREFIX + "x_embedder.proj.1.weight"
SEQ_KEY = NET_PREFIX + "pos_embedder.seq"
# Not weights: TransformerEngine's FP8 metadata, and RoPE frequency buffers that NVIDIA's code keeps out of the state
# dict (non-persistent) but other Cosmos releases were saved with. Ignored if present.
IGNORED_SUFFIXES = ("._extra_state", "pos_embedder.dim_spatial_range", "pos_embedder.dim_temporal_range")


class CheckpointError(ValueError):
    """A checkpoint that does not fit; the message is one line naming the file and the key."""


def expected_shapes(cfg: DiTConfig) -> dict[str, tuple[int, ...]]:
    """``{"net.<key>": shape}`` of the DiT at ``cfg`` (built on the meta device: no memory, no time)."""
    with torch.device("meta"):
        net = DiffusionDecoderDiT(cfg)
    return {NET_PREFIX + k: tuple(v.shape) for k, v in net.state_dict().items()}


def _load(path: Path, mmap: bool):
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except RuntimeError as err:
        if mmap and "mmap" in str(err):  # a legacy (non-zip) file, or junk, cannot be mapped: read it plainly
            return _load(path, mmap=False)
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({str(err).splitlines()[0]})") from None
    except Exception as err:  # noqa: BLE001 - pickle raises many types; weights_only refusals included
        raise CheckpointError(
            f"{path} is not a tensors-only PyTorch checkpoint ({type(err).__name__}); it is "
            "refused with weights_only=True"
        ) from None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """``torch.load(path, weights_only=True, mmap=True)`` of a flat dict, with one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: download {path.parent.name or 'the decoder folder'} "
            "(model.pt, aux_vars.pt) or write a test folder with "
            "fixtures.write_random_decoder()"
        )
    sd = _load(path, mmap=True)
    if isinstance(sd, dict) and isinstance(sd.get("model"), dict):
        sd = sd["model"]  # training checkpoints wrap the weights
    if not isinstance(sd, dict) or not all(isinstance(k, str) for k in sd):
        raise CheckpointError(f"{path} does not hold a state dict (got {type(sd).__name__})")
    return sd


def detect_preset(sd: dict, path: Path) -> str:
    """The preset whose width matches ``net.x_embedder.proj.1.weight``."""
    if WIDTH_KEY not in sd:
        raise CheckpointError(
            f"{path}: missing key {WIDTH_KEY}; not a Cosmos diffusion decoder checkpoint (expected net.* keys)"
        )
    width = tuple(sd[WIDTH_KEY].shape)
    for name in DIT_PRESETS:
        cfg = get_dit_config(name)
        if width == (cfg.model_channels, cfg.in_features):
            return name
    known = ", ".join(
        f"{n} {list((c.model_channels, c.in_features))}" for n, c in ((n, get_dit_config(n)) for n in DIT_PRESETS)
    )
    raise CheckpointError(
        f"{path}: {WIDTH_KEY} has shape {list(width)}, which matches no diffusion decoder preset ({known})"
    )


def check_state_dict(sd: dict, cfg: DiTConfig, path: Path, preset: str = "") -> dict[str, torch.Tensor]:
    """The ``net.`` tensors (prefix removed) after checking keys, shapes and dtypes against ``cfg``."""
    what = f"the {preset} diffusion decoder" if preset else "this diffusion decoder config"
    expected = expected_shapes(cfg)
    sd = dict(sd)
    if SEQ_KEY not in sd:  # an index buffer, not a weight: rebuilt if a file lacks it
        sd[SEQ_KEY] = torch.arange(expected[SEQ_KEY][0], dtype=torch.float32)
    for key, shape in expected.items():
        if key not in sd:
            raise CheckpointError(
                f"{path}: missing key {key} (shape {list(shape)} in {what}); the file is truncated or another model's"
            )
        t = sd[key]
        if not isinstance(t, torch.Tensor):
            raise CheckpointError(f"{path}: key {key} is a {type(t).__name__}, not a tensor")
        if tuple(t.shape) != shape:
            raise CheckpointError(f"{path}: key {key} has shape {list(t.shape)}, expected {list(shape)} ({what})")
        if not t.is_floating_point():
            raise CheckpointError(f"{path}: key {key} has dtype {t.dtype}, expected a floating-point tensor")
    for key in sd:
        if key.startswith(NET_PREFIX) and key not in expected and not key.endswith(IGNORED_SUFFIXES):
            raise CheckpointError(f"{path}: unexpected key {key}, not part of {what} (another DiT configuration?)")
    return {k[len(NET_PREFIX) :]: sd[k] for k in expected}


def load_dit(
    path: str | Path,
    config: DiTConfig | str | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> DiffusionDecoderDiT:
    """Build the DiT and load a released-layout ``model.pt`` into it.

    Args:
        path: ``model.pt`` (or the folder holding it).
        config: a ``DiTConfig``, a preset name, or None to pick the preset from the file's shapes.
        device: where the network goes (weights are copied there once from the memory-mapped file).
        dtype: compute dtype (bf16 on GPU as cosmos-predict1; the file's bf16 values convert exactly to fp32).

    Raises:
        FileNotFoundError: no file. CheckpointError: an unreadable file or a key that does not fit (one line).
    """
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    sd = read_state_dict(path)
    if config is None or isinstance(config, str):
        preset = config or detect_preset(sd, path)
        cfg = get_dit_config(preset)
    else:
        preset, cfg = "", config
    weights = check_state_dict(sd, cfg, path, preset)
    with torch.device("meta"):
        net = DiffusionDecoderDiT(cfg)
    device = torch.device(device)
    if device.type == "cuda":  # through pinned buffers: 2.7x faster than .to() from the memory map (runtime.py)
        weights = copy_to_device(weights, device)
    net.load_state_dict(weights, strict=True, assign=True)
    return net.to(device=device, dtype=dtype).eval().requires_grad_(False)


def load_generic_prompt(folder: str | Path, context_dim: int) -> torch.Tensor:
    """The generic-prompt T5 embedding ``[1, M, context_dim]`` float32 from ``<folder>/aux_vars.pt``."""
    path = Path(folder) / AUX_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: the decoder folder needs {AUX_FILE}, the generic-prompt T5 "
            "embedding shipped with the decoder checkpoint"
        )
    try:
        aux = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise CheckpointError(f"{path} is not a tensors-only PyTorch file ({type(err).__name__})") from None
    ctx = aux.get("context") if isinstance(aux, dict) else None
    if not isinstance(ctx, torch.Tensor):
        raise CheckpointError(f"{path} must be a dict with a 'context' tensor [1, 512, {context_dim}]")
    if ctx.ndim == 2:
        ctx = ctx[None]
    if ctx.ndim != 3 or ctx.shape[0] != 1 or ctx.shape[2] != context_dim or not ctx.is_floating_point():
        raise CheckpointError(
            f"{path}: 'context' has shape {list(ctx.shape)} {ctx.dtype}, expected float [1, M, {context_dim}]"
        )
    return ctx.float()
