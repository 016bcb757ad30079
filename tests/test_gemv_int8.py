"""Int8 weights in the Triton matrix-vector kernel (``gemv(..., scale=)``) and the engine's batch-1 decode with them
(``configure_decode(weights="int8")``, ``quant.py``).

Needs Triton (absent from the CPU stack, so CI skips this file). As in test_gemv.py, without a GPU the kernel runs in
Triton's interpreter: unless ``TRITON_INTERPRET=1`` was set from the start, the tests run in a child pytest with it set
(``test_in_the_interpreter``).
"""

import os
import re

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("triton")

from conftest import run_in_triton_interpreter  # noqa: E402
from gen_assets import tiny_mcore_engine  # noqa: E402
from nemo_cosmos_ar.inference import engine as en  # noqa: E402
from nemo_cosmos_ar.inference import quant  # noqa: E402
from nemo_cosmos_ar.inference.gemv import gemv  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
HERE = DEVICE.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"
here = pytest.mark.skipif(not HERE, reason="runs in the child pytest with TRITON_INTERPRET=1")


def _quantized(n: int, k: int, seed: int, up_gain: float = 1.0):
    """``(q, scale, dequantized fp64)`` of a random ``[n, k]`` weight; rows from n/2 on scaled by ``up_gain``."""
    w = torch.randn((n, k), generator=torch.Generator().manual_seed(seed))
    w[n // 2 :] *= up_gain
    q, s = quant.quantize_rows(w)
    return q.to(DEVICE), s.to(DEVICE), q.double() * s.double()[:, None]


# the interpreter's blocks are 32 rows x 128 columns: N and K whole blocks, neither, both under one block; K = 202
# is no whole number of int32 words, so its rows are read byte by byte (gemv's unpacked int8 path)
@here
@pytest.mark.parametrize("n,k", [(64, 256), (37, 200), (5, 40), (7, 202)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_int8_matches_the_dequantized_linear(n, k, dtype):
    """``gemv(x, q, scale=s)`` equals ``F.linear(x, q * s)`` (fp64): fp32 within 1e-4 (accumulation order), bf16
    within the output's one rounding (one unit in the last place, 2^-7 of the value, as test_gemv.py states)."""
    q, s, wd = _quantized(n, k, seed=n + k)
    x = torch.randn((1, 1, k), generator=torch.Generator().manual_seed(k)).to(DEVICE, dtype)
    y = gemv(x, q, scale=s)
    ref = F.linear(x.double().cpu(), wd)
    assert y.shape == (1, 1, n) and y.dtype == dtype
    tol = 1e-4 if dtype == torch.float32 else 2**-7 * ref.abs() + 1e-3
    err = (y.double().cpu() - ref).abs()
    assert (err < tol).all(), f"max |gemv - linear| {err.max().item():.2e}"
    # the scales matter, per row: unscaled q, or the scales of other rows, are far off
    assert (y.double().cpu() - F.linear(x.double().cpu(), q.double().cpu())).abs().max().item() > 1.0
    if n > 1:
        rolled = q.double().cpu() * s.double().cpu().roll(1)[:, None]
        assert (y.double().cpu() - F.linear(x.double().cpu(), rolled)).abs().max().item() > 0.1


@here
@pytest.mark.parametrize("fusion", ["norm", "swiglu", "residual", "swiglu+residual", "glu", "glu+norm"])
def test_int8_fusions_match_their_formulas(fusion):
    """Each fusion on int8 weights against the unfused ops on the dequantized weight in fp64 (fp32, within 1e-4
    of values up to ~50). GLU: the up rows' scales are 10x the gate rows', so taking the gate rows' scales for them
    (or the reverse) would be off by far more."""
    parts = fusion.split("+")
    n, k = 74, 200  # GLU: F = 37 gate rows, not a multiple of the 32-row block
    q, s, wd = _quantized(n, k, seed=11, up_gain=10.0 if "glu" in parts else 1.0)
    g = torch.Generator().manual_seed(12)
    x = torch.randn((1, 1, 2 * k if "swiglu" in parts else k), generator=g)
    nw, res = torch.rand(k, generator=g) + 0.5, torch.randn((1, 1, n), generator=g)
    kw, xin = {}, x.double()
    if "swiglu" in parts:
        kw["swiglu"] = True
        xin = F.silu(xin[..., :k]) * xin[..., k:]
    if "norm" in parts:
        kw.update(norm_weight=nw.to(DEVICE), eps=1e-5)
        xin = F.rms_norm(xin, (k,), nw.double(), 1e-5)
    ref = F.linear(xin, wd)
    if "glu" in parts:
        kw["glu"] = True
        ref = F.silu(ref[..., : n // 2]) * ref[..., n // 2 :]
    if "residual" in parts:
        kw["residual"] = res.to(DEVICE)
        ref = ref + res.double()
    y = gemv(x.to(DEVICE), q, scale=s, **kw).double().cpu()
    assert y.shape == ref.shape
    assert (y - ref).abs().max().item() < 1e-4 * max(1.0, ref.abs().max().item() / 10)
    if "glu" in parts:  # the same product with every row scaled by its gate row's scale is far off
        half = s.double().cpu()[: n // 2]
        h = F.linear(xin, q.double().cpu() * torch.cat([half, half])[:, None])
        assert (y - F.silu(h[..., : n // 2]) * h[..., n // 2 :]).abs().max().item() > 1.0


@here
def test_int8_bad_inputs_are_refused():
    q = torch.zeros((8, 16), dtype=torch.int8, device=DEVICE)
    s = torch.ones(8, device=DEVICE)
    x = torch.zeros((1, 1, 16), device=DEVICE)
    with pytest.raises(ValueError, match=r"gemv: an int8 weight needs its per-row scale .* \(weight torch.int8, "):
        gemv(x, q)
    with pytest.raises(ValueError, match=r"only an int8 weight takes one \(weight torch.float32, scale given\)"):
        gemv(x, q.float(), scale=s)
    with pytest.raises(
        ValueError, match=r"gemv: scale must be a contiguous float32 \(8,\) for a weight of \(8, 16\), "
    ):
        gemv(x, q, scale=torch.ones(16, device=DEVICE))
    with pytest.raises(ValueError, match=r"got torch.bfloat16 \(8,\)"):
        gemv(x, q, scale=s.bfloat16())


@pytest.fixture(scope="module")
def int8_engine():
    """A tiny engine (fp32, CPU) of its own, quantized: the other files' engines keep their weights."""
    eng = tiny_mcore_engine(seed=9)
    en.configure_decode(eng, "sdpa", "on", "on", "off", weights="int8")
    return eng


@here
@pytest.mark.skipif(DEVICE.type == "cuda", reason="the tiny engine runs on CPU (Triton's interpreter)")
def test_int8_decode_step_is_the_dequantized_model(int8_engine):
    """Two batch-1 decode steps after a prompt with the int8 weights -- plain kernel, fc1+SwiGLU in one kernel
    (``gemv_glu``) and the norm/residual-fused layers (``gemv_fuse``) -- give the logits of the same engine's unfused
    step (cuBLAS on the dequantized weights) within 1e-5 (fp32; logits up to ~0.7; 2e-7 measured). It must read the int8
    copies: the dequantized weights are doubled after the reference is taken."""
    eng = int8_engine
    assert eng.weights == "int8" and quant.is_quantized(eng.model)
    prompt = torch.randint(0, 64000, (1, 40), generator=torch.Generator().manual_seed(4))
    nxt = torch.tensor([[7], [4242]])
    cache0 = eng.new_cache(1, 48)

    def two_steps(cache):
        return [eng.dynamic_step(nxt[i : i + 1], 40 + i, cache) for i in range(2)]

    flags = ("fused_step", "gemv", "gemv_glu", "gemv_fuse")
    saved = {f: getattr(eng, f) for f in flags}
    try:
        with torch.inference_mode():
            eng.fused_step = eng.gemv = False
            eng.prefill(prompt, cache0)
            ref = two_steps([(k.clone(), v.clone()) for k, v in cache0])
            for _, module in quant.decode_projections(eng.model):
                module.weight.mul_(2.0)
            for variant in ("plain", "glu", "fuse"):
                eng.fused_step = eng.gemv = True
                eng.gemv_glu, eng.gemv_fuse = variant == "glu", variant == "fuse"
                got = two_steps([(k.clone(), v.clone()) for k, v in cache0])
                for a, b in zip(ref, got):
                    assert a.shape == b.shape == (1, 64000)
                    assert (a - b).abs().max().item() < 1e-5, variant
                    assert a.abs().max().item() > 0.1  # logits of size
            eng.fused_step = eng.gemv = False  # the doubled weights do reach the unfused step
            far = two_steps([(k.clone(), v.clone()) for k, v in cache0])
            assert (far[0] - ref[0]).abs().max().item() > 0.1
    finally:
        for _, module in quant.decode_projections(eng.model):
            module.weight.copy_(quant.dequantize(module.weight_int8, module.weight_scale, module.weight.dtype))
        for f, v in saved.items():
            setattr(eng, f, v)


@pytest.mark.skipif(HERE, reason="the tests ran in this process")
def test_in_the_interpreter():
    """This file's tests in a child pytest that sets TRITON_INTERPRET=1 before anything imports Triton: all pass."""
    summary = run_in_triton_interpreter(__file__)
    assert re.fullmatch(r"=* ?16 passed, 1 skipped in [\d.]+s( \([\d:]+\))? ?=*", summary), summary
