"""Random-weight tokenizer folders in the released format, for tests, demos and benchmarks (no download needed).

``write_random_tokenizer(folder)`` builds the eager network with seeded random weights and exports it the way
NVIDIA exported Cosmos-Tokenize1-DV8x16x16-720p (cosmos-predict1 ``tokenizer/training/jit_cli.py``):

* ``encoder.jit``: ``torch.jit.trace`` of ``Sequential(encoder, quant_conv, quantizer)``;
  pixels ``[B, 3, T, H, W]`` -> ``(indices [B, T', H', W'] int32, codes [B, 6, T', H', W'], dummy)``;
* ``decoder.jit``: trace of ``Sequential(inv_quant, post_quant_conv, decoder)``; indices -> pixels;
* ``autoencoder.jit`` (optional): trace of the whole network; pixels -> ``(reconstruction, dummy, indices)``.

So the folder loads through ``backends.load_tokenizer`` exactly like the real one, with either backend.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from nemo_cosmos_ar.tokenizer.backends import AUTOENCODER_FILE, DECODER_FILE, ENCODER_FILE
from nemo_cosmos_ar.tokenizer.networks import CausalVideoTokenizer, get_config

# NVIDIA traced with a 17×512×512 clip; a smaller clip traces the same graph (the ops take their sizes from the
# input at run time, which the tests check by running other shapes).
DEFAULT_EXAMPLE_SHAPE = (1, 3, 9, 64, 64)
# Target spread of each pre-quantisation latent channel, so that random weights use many codes, not a handful.
_LATENT_STD = 1.5


def build_random_network(preset: str = "tiny", seed: int = 0) -> CausalVideoTokenizer:
    """A ``CausalVideoTokenizer`` with seeded random weights (fp32, CPU, eval mode).

    Args:
        preset: ``"tiny"`` (CPU tests) or ``"dv8x16x16"`` (released sizes, 111M parameters).
        seed: seed of the weights; the global RNG state is left untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = CausalVideoTokenizer(get_config(preset)).eval()
        with torch.no_grad():
            # Default init leaves GroupNorm at weight 1 / bias 0; random affines make key mix-ups visible.
            for name, p in net.named_parameters():
                if ".norm." in name:
                    p.add_(0.1 * torch.randn_like(p))
            probe = torch.rand(1, 3, 9, 32, 32) * 2 - 1
            # Centre and scale each latent channel over the positions of a probe clip: a random encoder's latents
            # are dominated by per-channel offsets, which would put nearly every position on the same code.
            latent = net.quant_conv(net.encoder(probe))
            mean, std = latent.mean(dim=(0, 2, 3, 4)), latent.std(dim=(0, 2, 3, 4)).clamp_min(1e-6)
            conv = net.quant_conv.conv3d
            conv.weight.mul_((_LATENT_STD / std).reshape(-1, 1, 1, 1, 1))
            conv.bias.sub_(mean).mul_(_LATENT_STD / std)
    return net


def _save_atomic(module: torch.jit.ScriptModule, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.jit.save(module, str(tmp))
    os.replace(tmp, path)


def write_random_tokenizer(
    folder: str | Path,
    preset: str = "tiny",
    seed: int = 0,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    example_shape: tuple[int, int, int, int, int] = DEFAULT_EXAMPLE_SHAPE,
    autoencoder: bool = True,
) -> Path:
    """Write a random-weight tokenizer folder laid out like Cosmos-Tokenize1-DV8x16x16-720p.

    Args:
        folder: output folder (created if needed); existing files of the same names are replaced atomically.
        preset: network sizes, ``"tiny"`` (fast on CPU) or ``"dv8x16x16"`` (released sizes).
        seed: weight seed; the same (preset, seed) always gives the same weights.
        dtype: dtype to trace in. The files then run only in this dtype with the TorchScript backend (the
            released files are believed to be bf16); the eager backend can load them in any dtype.
        device: device to trace on (bf16 at released sizes wants ``"cuda"``).
        example_shape: ``[1, 3, T, H, W]`` example clip used for tracing (T = 1 + 8k, H and W multiples of 16).
        autoencoder: also write ``autoencoder.jit`` (costs one more trace).

    Returns:
        The folder path.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    net = build_random_network(preset, seed).to(device=device, dtype=dtype)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        example = (torch.rand(example_shape) * 2 - 1).to(device=device, dtype=dtype)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about Python-level constants are expected
        encoder = torch.jit.trace(net.encoder_jit(), example, check_trace=False)
        decoder = torch.jit.trace(net.decoder_jit(), encoder(example)[0], check_trace=False)
        _save_atomic(encoder, out / ENCODER_FILE)
        _save_atomic(decoder, out / DECODER_FILE)
        if autoencoder:
            _save_atomic(torch.jit.trace(net, example, check_trace=False), out / AUTOENCODER_FILE)
    return out
