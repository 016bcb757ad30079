"""The Triton matrix-vector kernel (``gemv.gemv``) and the engine's batch-1 decode step with it (``engine.gemv``).

Needs Triton (absent from the CPU stack, so CI skips this file). Without a GPU the kernel runs in Triton's
interpreter, which must be chosen before Triton is first imported; as in test_decode_kernel.py, unless
``TRITON_INTERPRET=1`` was set from the start the tests run in a child pytest with it set (``test_in_the_interpreter``).
"""

import os
import re

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("triton")

from conftest import run_in_triton_interpreter  # noqa: E402
from gen_assets import tiny_mcore_engine  # noqa: E402
from nemo_cosmos_ar.inference import fused_step  # noqa: E402
from nemo_cosmos_ar.inference import generator as gen  # noqa: E402
from nemo_cosmos_ar.inference.gemv import gemv  # noqa: E402
from nemo_cosmos_ar.inference.sampling import SamplingConfig  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
HERE = DEVICE.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"
here = pytest.mark.skipif(not HERE, reason="runs in the child pytest with TRITON_INTERPRET=1")


# the interpreter's blocks are 32 rows x 128 columns: N and K whole blocks, neither, and both under one block
@here
@pytest.mark.parametrize("n,k", [(64, 256), (37, 200), (5, 40)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_matches_linear(n, k, dtype):
    g = torch.Generator().manual_seed(n + k)
    w = torch.randn((n, k), generator=g).to(DEVICE, dtype)
    x = torch.randn((1, 1, k), generator=g).to(DEVICE, dtype)
    y = gemv(x, w)
    ref = F.linear(x.double(), w.double())
    assert y.shape == (1, 1, n) and y.dtype == dtype
    # fp32: accumulation-order noise; bf16: the output's one rounding, under one unit in the last place (2^-7 of the
    # value: Triton's interpreter rounds a store to bf16 towards zero, a GPU to nearest)
    tol = 1e-4 if dtype == torch.float32 else 2**-7 * ref.abs() + 1e-3
    err = (y.double() - ref).abs()
    assert (err < tol).all(), f"max |gemv - linear| {err.max().item():.2e}"
    assert (y.double() - F.linear(x.double(), w.double().roll(1, 0))).abs().max().item() > 1.0  # rows matter


@here
@pytest.mark.parametrize("fusion", ["norm", "swiglu", "residual", "swiglu+residual"])
def test_fusions_match_their_formulas(fusion):
    """Each fusion against the unfused ops in fp64: RMSNorm prologue (its 1/rms applied to the product), SwiGLU
    prologue, residual epilogue; fp32 within 1e-4."""
    g = torch.Generator().manual_seed(7)
    n, k = 37, 200
    w = torch.randn((n, k), generator=g).to(DEVICE)
    x = torch.randn((1, 1, 2 * k if "swiglu" in fusion else k), generator=g).to(DEVICE)
    nw, res = torch.rand(k, generator=g).to(DEVICE) + 0.5, torch.randn((1, 1, n), generator=g).to(DEVICE)
    kw, xin = {}, x.double()
    if "swiglu" in fusion:
        kw["swiglu"] = True
        xin = F.silu(xin[..., :k]) * xin[..., k:]
    if fusion == "norm":
        kw.update(norm_weight=nw, eps=1e-5)
        xin = F.rms_norm(xin, (k,), nw.double(), 1e-5)
    ref = F.linear(xin, w.double())
    if "residual" in fusion:
        kw["residual"] = res
        ref = ref + res.double()
    y = gemv(x, w, **kw)
    assert y.shape == (1, 1, n)
    assert (y.double() - ref).abs().max().item() < 1e-4
    assert (y.double() - F.linear(x[..., :k].double(), w.double())).abs().max().item() > 0.1  # the fusion acted


@here
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_glu_is_fc1_then_swiglu(dtype):
    """``glu=True`` on a ``[gate; up]`` weight of 2F rows: F values, equal to the fc1 product followed by the fused
    step's SwiGLU (each product rounded to the dtype first): fp32 within 1e-4 of fp64; bf16 within one unit in the
    last place of the plain kernel's product followed by ``fused_step.swiglu`` (the same roundings; the interpreter
    rounds a bf16 store towards zero where torch rounds to nearest, so not bit for bit here)."""
    g = torch.Generator().manual_seed(3)
    f, k = 37, 200  # F not a multiple of the interpreter's 32-row block: the up rows start mid-block
    w = torch.randn((2 * f, k), generator=g).to(DEVICE, dtype)
    x = torch.randn((1, 1, k), generator=g).to(DEVICE, dtype)
    y = gemv(x, w, glu=True)
    assert y.shape == (1, 1, f) and y.dtype == dtype
    h = F.linear(x.double(), w.double())
    ref = F.silu(h[..., :f]) * h[..., f:]
    if dtype == torch.float32:
        assert (y.double() - ref).abs().max().item() < 1e-4
    else:
        two_step = fused_step.swiglu(gemv(x, w).float()).to(dtype).double()
        err = (y.double() - two_step).abs()
        assert (err <= 2**-7 * two_step.abs() + 1e-30).all(), err.max().item()
    assert (y.double() - ref.flip(-1)).abs().max().item() > 0.1  # rows matter
    with pytest.raises(ValueError, match=r"gemv: glu needs a weight of \[gate; up\] rows \(an even count\)"):
        gemv(x, w[:-1], glu=True)


@here
def test_strided_weight_rows():
    """A weight whose rows are not packed (a column slice of a wider matrix): the row stride is honoured."""
    g = torch.Generator().manual_seed(1)
    wide = torch.randn((24, 96), generator=g).to(DEVICE)
    x = torch.randn((1, 1, 64), generator=g).to(DEVICE)
    assert (gemv(x, wide[:, 16:80]) - F.linear(x, wide[:, 16:80])).abs().max().item() < 1e-4


@here
def test_bad_inputs_are_refused():
    w = torch.zeros((8, 16), device=DEVICE)
    with pytest.raises(
        ValueError, match=r"gemv: x \(1, 2, 16\) must be one row of 16 values for a weight of \(8, 16\)"
    ):
        gemv(torch.zeros((1, 2, 16), device=DEVICE), w)
    with pytest.raises(ValueError, match="the weight's last dimension must be contiguous"):
        gemv(torch.zeros((1, 1, 8), device=DEVICE), w.t())
    with pytest.raises(ValueError, match=r"must be one row of 32 values for a weight of \(8, 16\)"):
        gemv(torch.zeros((1, 1, 16), device=DEVICE), w, swiglu=True)
    with pytest.raises(ValueError, match=r"gemv: norm_weight \(8,\) must be \(16,\)"):
        gemv(torch.zeros((1, 1, 16), device=DEVICE), w, norm_weight=torch.ones(8, device=DEVICE))


@pytest.fixture(scope="module")
def tiny_engine():
    return tiny_mcore_engine(seed=5)


@here
@pytest.mark.skipif(DEVICE.type == "cuda", reason="the tiny engine runs on CPU (Triton's interpreter)")
def test_engine_gemv_decodes_as_the_fused_step(tiny_engine):
    """Greedy decoding of one prompt through the fused step, with the projections as Megatron's modules, as the Triton
    kernel, as the kernel with fc1 and SwiGLU in one (``gemv_glu``), and as the kernel with the norms, SwiGLU and
    residual adds folded in: the same 8 tokens and every logit within 1e-5 (fp32)."""
    eng = tiny_engine
    assert eng.gemv_ok and fused_step.gemv_supported(eng.model)
    prompt = torch.randint(0, 64000, (1, 48), generator=torch.Generator().manual_seed(6))
    opts = gen.DecodeOptions(step_mode="static", bucket=16, sample_in_graph=True)
    runs = {}
    for use in (False, True, "glu", "fused"):
        seen = {}
        eng.fused_step, eng.gemv, eng.gemv_fuse, eng.gemv_glu = True, bool(use), use == "fused", use == "glu"
        try:
            out, _ = gen.generate_tokens(
                eng,
                prompt,
                56,
                SamplingConfig(temperature=0.0),
                on_logits=lambda p, lg, seen=seen: seen.__setitem__(p, lg.clone()),
                options=opts,
            )
        finally:
            eng.fused_step, eng.gemv, eng.gemv_fuse, eng.gemv_glu = False, False, False, False
        runs[use] = out, seen
    a, la = runs[False]
    for use in (True, "glu", "fused"):
        b, lb = runs[use]
        assert a.shape == (1, 56) and torch.equal(a, b), use
        assert sorted(la) == sorted(lb) == list(range(48, 56))
        assert max((la[p] - lb[p]).abs().max().item() for p in la) < 1e-5, use


@pytest.mark.skipif(HERE, reason="the tests ran in this process")
def test_in_the_interpreter():
    """This file's tests in a child pytest that sets TRITON_INTERPRET=1 before anything imports Triton: all pass."""
    summary = run_in_triton_interpreter(__file__)
    assert re.fullmatch(r"=* ?15 passed, 1 skipped in [\d.]+s( \([\d:]+\))? ?=*", summary), summary
