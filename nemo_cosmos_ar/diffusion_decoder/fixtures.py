"""Random-weight folders in the released formats, for tests, demos and benchmarks (no download needed).

* ``write_random_decoder(folder, preset)``: ``model.pt`` with the ``net.*`` + ``logvar.*`` keys of the released
  Cosmos-Predict1-7B-Decoder-DV8x16x16ToCV8x8x8-720p (see ``checkpoint.py``) and ``aux_vars.pt`` with a random
  "generic prompt" embedding;
* ``write_random_cv_tokenizer(folder, preset)``: ``decoder.jit`` traced from ``cv8x8x8.ContinuousVideoDecoder``
  (``Sequential(post_quant_conv, decoder)``, the module layout of NVIDIA's export) and ``mean_std.pt``.

Both load through the same code as the released folders.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from nemo_cosmos_ar.diffusion_decoder.checkpoint import AUX_FILE, MODEL_FILE, NET_PREFIX
from nemo_cosmos_ar.diffusion_decoder.config import DiTConfig, get_dit_config
from nemo_cosmos_ar.diffusion_decoder.cv8x8x8 import CV_PRESETS, DECODER_FILE, MEAN_STD_FILE, ContinuousVideoDecoder
from nemo_cosmos_ar.diffusion_decoder.network import DiffusionDecoderDiT

LOGVAR_CHANNELS = 128  # NVIDIA's FourierFeatures(128) + Linear(128, 1) loss-weighting head
CV_STATS_FRAMES = 16  # latent frames of statistics written to mean_std.pt (NVIDIA reads the first 8)


def _atomic(save, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@torch.no_grad()
def random_dit_state(preset: str | DiTConfig = "tiny", seed: int = 0, device: torch.device | str = "cpu") -> dict:
    """``{"net.<key>": tensor}`` fp32 random weights: N(0, 0.02) linears, N(0, 1) token embedding, norms near 1.

    Small linear weights keep 28 random blocks finite in bf16; random (not zero) adaLN weights make every gate and
    every key matter, so a mix-up of keys changes the output. ``device`` lets the 7B state be drawn on a GPU.
    """
    cfg = preset if isinstance(preset, DiTConfig) else get_dit_config(preset)
    gen = torch.Generator(device=device).manual_seed(seed)
    with torch.device("meta"):
        net = DiffusionDecoderDiT(cfg)
    out = {}
    for key, t in net.state_dict().items():
        if key == "pos_embedder.seq":
            value = torch.arange(t.shape[0], dtype=torch.float32, device=device)
        elif key == "token_embedder.weight":
            value = torch.randn(t.shape, generator=gen, device=device)
        elif t.ndim == 1:  # RMSNorm gains
            value = 1 + 0.1 * torch.randn(t.shape, generator=gen, device=device)
        else:
            value = 0.02 * torch.randn(t.shape, generator=gen, device=device)
        out[NET_PREFIX + key] = value
    return out


def write_random_decoder(
    folder: str | Path,
    preset: str = "tiny",
    seed: int = 0,
    *,
    dtype: torch.dtype = torch.bfloat16,
    device: torch.device | str = "cpu",
    prompt_tokens: int | None = None,
) -> Path:
    """Write ``model.pt`` and ``aux_vars.pt`` of a random-weight decoder laid out like the release.

    Args:
        folder: output folder (created); existing files are replaced atomically.
        preset: ``"tiny"`` or ``"7b"`` (14.5 GB in bf16; pass ``device="cuda"`` to draw it quickly).
        seed: weight seed; the same (preset, seed, device) gives the same file.
        dtype: stored dtype (the release is believed to be bf16).
        device: where the random weights are drawn.
        prompt_tokens: length of the random prompt embedding; None = 512 (T5's) for 7b, 16 for tiny.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    cfg = get_dit_config(preset)
    sd = {k: v.to(dtype).cpu() for k, v in random_dit_state(preset, seed, device).items()}
    gen = torch.Generator().manual_seed(seed + 1)
    sd["logvar.0.freqs"] = (6.283185307179586 * torch.randn(LOGVAR_CHANNELS, generator=gen)).to(dtype)
    sd["logvar.0.phases"] = (6.283185307179586 * torch.rand(LOGVAR_CHANNELS, generator=gen)).to(dtype)
    sd["logvar.1.weight"] = (0.1 * torch.randn(1, LOGVAR_CHANNELS, generator=gen)).to(dtype)
    _atomic(lambda p: torch.save(sd, p), out / MODEL_FILE)
    m = prompt_tokens or (512 if preset == "7b" else 16)
    aux = {
        "context": torch.randn(1, m, cfg.context_dim, generator=gen).to(dtype),
        "context_mask": torch.ones(1, m, dtype=dtype),
    }
    _atomic(lambda p: torch.save(aux, p), out / AUX_FILE)
    return out


def build_random_cv_decoder(preset: str = "tiny", seed: int = 0) -> ContinuousVideoDecoder:
    """A ``ContinuousVideoDecoder`` with seeded random weights (fp32, CPU, eval mode); GroupNorm affines perturbed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ContinuousVideoDecoder(CV_PRESETS[preset]()).eval()
        with torch.no_grad():
            for name, p in net.named_parameters():
                if ".norm." in name:
                    p.add_(0.1 * torch.randn_like(p))
    return net


def write_random_cv_tokenizer(
    folder: str | Path,
    preset: str = "tiny",
    seed: int = 0,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    example_shape: tuple[int, int, int] = (2, 4, 4),
) -> Path:
    """Write ``decoder.jit`` (traced in ``dtype`` on ``device``) and ``mean_std.pt`` of a random CV decoder.

    Args:
        folder: output folder (created); files are replaced atomically.
        preset: ``"tiny"`` or ``"cv8x8x8"`` (released sizes).
        seed: weight seed.
        dtype: trace dtype; a TorchScript file then runs only in it (the release: bf16, GPU).
        device: trace device.
        example_shape: ``(latent frames, h, w)`` of the example latent (the graph takes sizes from the input).
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    net = build_random_cv_decoder(preset, seed).to(device=device, dtype=dtype)
    cfg = net.config
    gen = torch.Generator().manual_seed(seed)
    t, h, w = example_shape
    example = torch.randn(1, cfg.latent_channels, t, h, w, generator=gen).to(device=device, dtype=dtype)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about Python-level constants are expected
        traced = torch.jit.trace(net, example, check_trace=False)
    _atomic(lambda p: torch.jit.save(traced, str(p)), out / DECODER_FILE)
    shape = (1, cfg.latent_channels, CV_STATS_FRAMES, 1, 1)
    mean_std = (0.1 * torch.randn(shape, generator=gen), 0.5 + torch.rand(shape, generator=gen))
    _atomic(lambda p: torch.save(mean_std, p), out / MEAN_STD_FILE)
    return out
