"""SigLIP's vision tower and its image preprocessing: the image encoder of the video content safety filter
(``google/siglip-so400m-patch14-384``), read from a Hugging Face folder without transformers.

Why not transformers' ``SiglipVisionModel``: its import alone took 4.4 s on a 2-core CPU (the command's only use of
transformers), and its ``from_pretrained`` patches ``nn.Module.register_parameter`` for the whole process while it
runs, so it cannot load beside the command's other loads (a module another thread built meanwhile came out as meta
tensors). This module builds on the meta device and assigns the file's tensors, on any thread.

The architecture (the published SigLIP vision model; attribute names mirror the checkpoint's ``vision_model.*``
keys, which a full SigLIP checkpoint and a vision-only one share):

* patch embedding: a ``patch x patch`` convolution with stride ``patch``, flattened to ``(image / patch)^2`` tokens,
  plus a learned position embedding per token (no class token);
* ``num_hidden_layers`` pre-norm blocks: LayerNorm, multi-head self-attention (q/k/v/out projections with biases,
  scale ``head_dim^-0.5``), residual; LayerNorm, MLP ``fc1`` -> tanh-approximated GELU -> ``fc2``, residual;
* a final LayerNorm, then the pooling head: a learned probe token attends to all tokens (``nn.MultiheadAttention``),
  then LayerNorm -> MLP added back; the probe's output is the image embedding (``pooler_output``).

Preprocessing is transformers' ``SiglipImageProcessor`` step by step, so the pixels match it exactly: PIL resize of
the uint8 frame (bicubic by default, ``reducing_gap=None``), ``float64 x rescale_factor`` cast to float32,
``(x - mean) / std`` in float32, channels first. The values come from the folder's ``preprocessor_config.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nemo_cosmos_ar.guardrails.weights import HINT, GuardrailWeightsError, check_tensors
from nemo_cosmos_ar.runtime import copy_to_device


@dataclass(frozen=True)
class SiglipVisionConfig:
    """The vision config's fields that shape the network; defaults are the published defaults a ``config.json``
    leaves out (``google/siglip-so400m-patch14-384`` states only what differs)."""

    hidden_size: int = 768
    intermediate_size: int = 3072
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    num_channels: int = 3
    image_size: int = 224
    patch_size: int = 16
    layer_norm_eps: float = 1e-6
    hidden_act: str = "gelu_pytorch_tanh"
    vision_use_head: bool = True

    @classmethod
    def from_folder(cls, folder: str | Path) -> SiglipVisionConfig:
        """From ``config.json``: a full SigLIP config (its ``vision_config``) or a vision-only one."""
        path = Path(folder) / "config.json"
        try:
            cfg = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise GuardrailWeightsError(f"{path}: not a readable SigLIP config ({err}); {HINT}") from None
        if cfg.get("model_type") == "siglip":
            cfg = cfg.get("vision_config") or {}
        known = {f.name for f in fields(cls)}
        out = cls(**{k: v for k, v in cfg.items() if k in known and v is not None})
        if out.hidden_act not in ("gelu_pytorch_tanh", "gelu"):
            raise GuardrailWeightsError(f"{path}: hidden_act {out.hidden_act!r} is not SigLIP's; {HINT}")
        if not out.vision_use_head:
            raise GuardrailWeightsError(f"{path}: vision_use_head is false: no pooled embedding; {HINT}")
        return out


class SiglipOutput(NamedTuple):
    last_hidden_state: torch.Tensor  # [B, tokens, hidden]
    pooler_output: torch.Tensor  # [B, hidden]: the image embedding


class _MLP(nn.Module):
    def __init__(self, cfg: SiglipVisionConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.fc2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.approximate = "tanh" if cfg.hidden_act == "gelu_pytorch_tanh" else "none"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate=self.approximate))


class _SelfAttention(nn.Module):
    def __init__(self, cfg: SiglipVisionConfig) -> None:
        super().__init__()
        self.heads = cfg.num_attention_heads
        d = cfg.hidden_size
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.heads, d // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x)))
        return self.out_proj(out.transpose(1, 2).reshape(b, n, d))


class _Block(nn.Module):
    def __init__(self, cfg: SiglipVisionConfig) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.self_attn = _SelfAttention(cfg)
        self.layer_norm2 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.mlp = _MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class _PoolingHead(nn.Module):
    def __init__(self, cfg: SiglipVisionConfig) -> None:
        super().__init__()
        self.probe = nn.Parameter(torch.empty(1, 1, cfg.hidden_size))
        self.attention = nn.MultiheadAttention(cfg.hidden_size, cfg.num_attention_heads, batch_first=True)
        self.layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.mlp = _MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.attention(self.probe.expand(x.shape[0], -1, -1), x, x, need_weights=False)[0]
        return (h + self.mlp(self.layernorm(h)))[:, 0]


class SiglipVisionTower(nn.Module):
    """``forward(pixel_values=[B, 3, S, S])`` -> ``SiglipOutput``; parameters named as the checkpoint's keys."""

    def __init__(self, cfg: SiglipVisionConfig) -> None:
        super().__init__()
        self.config = cfg
        vm = self.vision_model = nn.Module()
        vm.embeddings = nn.Module()
        vm.embeddings.patch_embedding = nn.Conv2d(cfg.num_channels, cfg.hidden_size, cfg.patch_size, cfg.patch_size)
        vm.embeddings.position_embedding = nn.Embedding((cfg.image_size // cfg.patch_size) ** 2, cfg.hidden_size)
        vm.encoder = nn.Module()
        vm.encoder.layers = nn.ModuleList(_Block(cfg) for _ in range(cfg.num_hidden_layers))
        vm.post_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        vm.head = _PoolingHead(cfg)

    @torch.no_grad()
    def init_random(self, seed: int = 0, std: float = 0.02) -> SiglipVisionTower:
        """Random weights for benches and tests: N(0, std) matrices, zero biases, unit LayerNorm scales."""
        g = torch.Generator().manual_seed(seed)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif p.ndim == 1:
                p.fill_(1.0)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * std)
        return self

    def forward(self, pixel_values: torch.Tensor) -> SiglipOutput:
        vm = self.vision_model
        emb = vm.embeddings.patch_embedding(pixel_values.to(vm.embeddings.patch_embedding.weight.dtype))
        x = emb.flatten(2).transpose(1, 2)
        if x.shape[1] != vm.embeddings.position_embedding.num_embeddings:
            raise ValueError(
                f"SigLIP expects {self.config.image_size}x{self.config.image_size} pixels, got "
                f"{tuple(pixel_values.shape[-2:])}"
            )
        x = x + vm.embeddings.position_embedding.weight
        for block in vm.encoder.layers:
            x = block(x)
        x = vm.post_layernorm(x)
        return SiglipOutput(x, vm.head(x))


WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
PREFIX = "vision_model."


def _read_vision_tensors(folder: Path, keys: set[str]) -> tuple[Path, dict[str, torch.Tensor]]:
    """The vision tower's tensors of the folder's weights file, memory-mapped on the CPU (a full checkpoint's text
    tower is not read); ``runtime.copy_to_device`` takes them to the GPU through pinned buffers. Keys are read in
    both layouts a SigLIP folder comes in: ``vision_model.*`` (the released SiglipModel, and SiglipVisionModel as
    transformers 4 saves it) and without that prefix (SiglipVisionModel as transformers 5 saves it)."""

    def ours(key: str) -> str | None:
        if key in keys:
            return key
        return PREFIX + key if PREFIX + key in keys else None

    for name in WEIGHT_FILES:
        path = folder / name
        if not path.is_file():
            continue
        try:
            if name.endswith(".safetensors"):
                from safetensors import safe_open

                with safe_open(str(path), framework="pt") as f:
                    return path, {ours(k): f.get_tensor(k) for k in f.keys() if ours(k)}  # noqa: SIM118
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as err:  # noqa: BLE001 - any unreadable file is the same one-line error
            first = " ".join(str(err).split())[:200]
            raise GuardrailWeightsError(f"{path}: not a readable SigLIP weights file ({first}); {HINT}") from None
        if not isinstance(state, dict):
            raise GuardrailWeightsError(f"{path}: expected a state dict, got {type(state).__name__}; {HINT}")
        return path, {ours(k): v for k, v in state.items() if ours(k)}
    raise GuardrailWeightsError(f"{folder}: no SigLIP weights ({' or '.join(WEIGHT_FILES)}); {HINT}")


def load_siglip_vision(
    folder: str | Path, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> SiglipVisionTower:
    """The vision tower of a SigLIP Hugging Face folder (``config.json`` + ``model.safetensors`` or
    ``pytorch_model.bin``, read weights-only), in ``dtype`` on ``device``, in eval mode."""
    folder = Path(folder)
    cfg = SiglipVisionConfig.from_folder(folder)
    with torch.device("meta"):
        tower = SiglipVisionTower(cfg)
    expected = tower.state_dict()
    path, state = _read_vision_tensors(folder, set(expected))
    check_tensors(path, expected, state, "SigLIP vision tower")
    tower.load_state_dict(copy_to_device(state, torch.device(device)), strict=True, assign=True)
    return tower.to(dtype=dtype).eval().requires_grad_(False)


class SiglipPreprocess:
    """``SiglipImageProcessor``'s pixels without transformers; callable as it is:
    ``(images=[uint8 HxWx3, ...], return_tensors="pt") -> {"pixel_values": float32 [N, 3, S, S]}``."""

    def __init__(
        self,
        size: int | tuple[int, int] = 224,
        *,
        resample: int = 3,  # PIL's BICUBIC
        rescale_factor: float = 1 / 255,
        image_mean: tuple[float, ...] = (0.5, 0.5, 0.5),
        image_std: tuple[float, ...] = (0.5, 0.5, 0.5),
        do_resize: bool = True,
        do_rescale: bool = True,
        do_normalize: bool = True,
    ) -> None:
        self.size = (size, size) if isinstance(size, int) else tuple(size)  # (height, width)
        self.resample, self.rescale_factor = resample, rescale_factor
        self.mean, self.std = np.asarray(image_mean, np.float32), np.asarray(image_std, np.float32)
        self.do_resize, self.do_rescale, self.do_normalize = do_resize, do_rescale, do_normalize

    @classmethod
    def from_folder(cls, folder: str | Path, image_size: int) -> SiglipPreprocess:
        """From the folder's ``preprocessor_config.json`` when it has one, else the defaults at ``image_size``."""
        path = Path(folder) / "preprocessor_config.json"
        if not path.is_file():
            return cls(image_size)
        try:
            cfg = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise GuardrailWeightsError(f"{path}: not readable ({err}); {HINT}") from None
        size = cfg.get("size") or {}
        kw = {k: cfg[k] for k in ("resample", "rescale_factor", "image_mean", "image_std") if cfg.get(k) is not None}
        kw.update({k: bool(cfg[k]) for k in ("do_resize", "do_rescale", "do_normalize") if k in cfg})
        return cls((int(size.get("height", image_size)), int(size.get("width", image_size))), **kw)

    def _one(self, image) -> np.ndarray:
        from PIL import Image

        x = np.asarray(image)
        if self.do_resize:
            h, w = self.size
            x = np.asarray(Image.fromarray(x).resize((w, h), resample=self.resample, reducing_gap=None))
        if self.do_rescale:
            x = (x.astype(np.float64) * self.rescale_factor).astype(np.float32)
        x = x.astype(np.float32, copy=False)
        if self.do_normalize:
            x = (x - self.mean) / self.std
        return x.transpose(2, 0, 1)

    def __call__(self, images, return_tensors: str = "pt") -> dict[str, torch.Tensor]:
        return {"pixel_values": torch.from_numpy(np.stack([self._one(i) for i in images]))}
