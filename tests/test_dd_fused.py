"""The DiT's Triton kernels (``diffusion_decoder/fused.py``): each equals its eager ops up to the order of a norm's
fp32 sums (fp32: within 1e-5; bf16 on a GPU: within 2^-6 of a unit-scale value and over 60%
bit-equal; in Triton's CPU interpreter, which truncates to bf16, within a few units, while fp32 checks the logic),
and a tiny DiT forward with them equals the eager forward.

The kernel tests need Triton (absent from the CPU stack, so CI skips them); without a GPU they run in Triton's
interpreter in a child pytest (``test_in_the_interpreter``), as test_gemv.py's. The dispatch tests run everywhere.
"""

import importlib.util
import os
import re

import pytest
import torch

from nemo_cosmos_ar.diffusion_decoder import fused
from nemo_cosmos_ar.diffusion_decoder.config import get_dit_config
from nemo_cosmos_ar.diffusion_decoder.network import DiffusionDecoderDiT, RoPE3D

HAS_TRITON = importlib.util.find_spec("triton") is not None
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
HERE = HAS_TRITON and (DEVICE.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1")
here = pytest.mark.skipif(not HERE, reason="needs Triton; on CPU runs in the child pytest with TRITON_INTERPRET=1")
DTYPES = pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])


def _close(got: torch.Tensor, want: torch.Tensor) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype
    g, w = got.float(), want.float()
    if got.dtype == torch.float32:
        assert (g - w).abs().max().item() < 1e-5
        return
    if DEVICE.type == "cuda":  # within 2^-6 of a unit-scale value, most values equal. Measured on the H200: q/k norm
        # + RoPE >97% bit-equal; modulated LayerNorm 71% and gated residual 87%, off by at most 1.1% relative
        # (more often than the sums' order explains: not yet understood; the whole DiT stays within bf16 noise)
        assert bool(((g - w).abs() <= (w.abs() + 1) * 2**-6).all())
        assert (g == w).float().mean().item() > 0.6
    else:  # Triton's interpreter rounds to bf16 by truncation, not to nearest: a few units per rounding step
        assert bool(((g - w).abs() <= (w.abs() + 1) * 2**-5).all())


def _mods(b: int, d: int, n: int, g: torch.Generator, dtype) -> tuple[torch.Tensor, ...]:
    """``n`` adaLN chunks ``[B, 1, D]`` as the DiT makes them: views of one ``[B, 1, n*D]`` tensor."""
    return (0.5 * torch.randn(b, n * d, generator=g)).to(DEVICE, dtype).unsqueeze(1).chunk(n, dim=-1)


@here
@DTYPES
@pytest.mark.parametrize("rope", [True, False], ids=["rope", "norm-only"])
@pytest.mark.parametrize("d", [16, 24])  # 24: half of a head is 12, not a power of two (masked lanes)
def test_qk_norm_rope_matches_eager(dtype, rope, d):
    g = torch.Generator().manual_seed(d)
    b, s, h = 2, 7, 3
    x = (3 * torch.randn(b, s, h * d, generator=g)).to(DEVICE, dtype).unflatten(-1, (h, d))
    w = (1 + 0.1 * torch.randn(d, generator=g)).to(DEVICE, dtype)
    ang = torch.rand(s, 1, d, generator=g) * 6
    cs = (ang.cos().to(DEVICE), ang.sin().to(DEVICE)) if rope else None
    _close(fused.qk_norm_rope(x, w, 1e-6, cs, "auto"), fused.qk_norm_rope(x, w, 1e-6, cs, "eager"))


@here
@DTYPES
@pytest.mark.parametrize("d", [64, 40])
def test_ln_modulate_and_gate_residual_match_eager(dtype, d):
    g = torch.Generator().manual_seed(d)
    b, s = 2, 9
    x = (2 * torch.randn(b, s, d, generator=g) + 0.3).to(DEVICE, dtype)
    y = torch.randn(b, s, d, generator=g).to(DEVICE, dtype)
    shift, scale, gate = _mods(b, d, 3, g, dtype)
    _close(fused.ln_modulate(x, shift, scale, 1e-6, "auto"), fused.ln_modulate(x, shift, scale, 1e-6, "eager"))
    _close(fused.gate_residual(x, y, gate, "auto"), fused.gate_residual(x, y, gate, "eager"))


@here
def test_a_tiny_dit_forward_with_the_kernels_equals_eager():
    cfg = get_dit_config("tiny")
    torch.manual_seed(0)
    net = DiffusionDecoderDiT(cfg).to(DEVICE).eval()
    with torch.no_grad():  # the released checkpoints' norms are not all ones: make them not so here either
        for p in net.parameters():
            if p.ndim == 1:
                p.add_(0.1 * torch.randn_like(p))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, cfg.latent_channels, 2, 8, 8, generator=g).to(DEVICE)
    ctx = torch.randn(2, 6, cfg.context_dim, generator=g).to(DEVICE)
    tok = torch.randint(0, cfg.token_vocab_size, (2, 2, 4, 4), generator=g).to(DEVICE)
    args = (x, torch.tensor(0.3), ctx, tok, 24.0)
    with torch.no_grad():
        net.set_kernels("eager")
        want = net(*args)
        net.set_kernels("auto")
        got = net(*args)
    assert got.shape == want.shape == x.shape
    assert (got - want).abs().max().item() < 1e-4 * want.abs().max().item()


def test_the_dispatch_falls_back_to_eager_and_checks_its_arguments(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    x = torch.randn(1, 3, 2, 8)
    assert not fused.use_triton(x, "auto") and not fused.use_triton(x, "eager")  # CPU without the interpreter
    with pytest.raises(ValueError, match="unknown DiT kernels 'fast'"):
        fused.use_triton(x, "fast")
    with pytest.raises(ValueError, match="unknown DiT kernels 'fast'"):
        DiffusionDecoderDiT(get_dit_config("tiny")).set_kernels("fast")
    cfg = get_dit_config("tiny")
    ang = RoPE3D(cfg).angles(1, 1, 3, fps=24.0)[:, None, :]
    w = torch.ones(8)
    y = fused.qk_norm_rope(x, w, 1e-6, (ang[:, :, :8].cos(), ang[:, :, :8].sin()), "auto")  # eager here
    assert torch.equal(y, fused.qk_norm_rope(x, w, 1e-6, (ang[:, :, :8].cos(), ang[:, :, :8].sin()), "eager"))
    with pytest.raises(ValueError, match=r"adaLN modulation of shape \(1, 2, 4\)"):
        fused.mod_stride(torch.zeros(1, 2, 4))  # not one row per batch entry


@pytest.mark.skipif(HERE or not HAS_TRITON, reason="the tests ran in this process, or there is no Triton")
def test_in_the_interpreter():
    """This file's kernel tests in a child pytest that sets TRITON_INTERPRET=1 before Triton is imported: all pass."""
    from conftest import run_in_triton_interpreter

    summary = run_in_triton_interpreter(__file__)
    assert re.fullmatch(r"=* ?14 passed, 1 skipped in [\d.]+s( \([\d:]+\))? ?=*", summary), summary
