"""FP8 GEMMs for the DiT (``diffusion_decoder/fp8.py``): per-row e4m3 quantization within e4m3's rounding bound,
``FP8Linear`` equal to the product of its dequantized operands and within a few percent of the bf16/fp32 layer,
the fused Triton producers (modulated LayerNorm + quantize, GELU + quantize) against the eager reference, the DiT's
conversion (which projections, one way), and the pipeline's ``gemm="fp8"`` (seeded, close to the exact decode).

CPU torch has ``_scaled_mm`` for e4m3, so everything but the Triton kernels runs in CI; the kernel tests run on a GPU
or in Triton's CPU interpreter (``TRITON_INTERPRET=1``), as test_dd_fused.py's.
"""

import importlib.util
import os
import re

import pytest
import torch
from torch import nn

from nemo_cosmos_ar.diffusion_decoder import fp8, fused
from nemo_cosmos_ar.diffusion_decoder.config import SamplerConfig, get_dit_config
from nemo_cosmos_ar.diffusion_decoder.fixtures import write_random_cv_tokenizer, write_random_decoder
from nemo_cosmos_ar.diffusion_decoder.network import DiffusionDecoderDiT
from nemo_cosmos_ar.diffusion_decoder.pipeline import DiffusionDecoder

HAS_TRITON = importlib.util.find_spec("triton") is not None
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
HERE = HAS_TRITON and (DEVICE.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1")
here = pytest.mark.skipif(not HERE, reason="needs Triton: a GPU, or TRITON_INTERPRET=1 on CPU")


def _within_e4m3(q: fp8.QuantRows, x: torch.Tensor, ulps: float = 0.5) -> None:
    """Each value within ``ulps`` units of e4m3's last place: one unit is at most 2^-3 of the value for normals
    (3 mantissa bits), and ``scale * 2^-9`` at the bottom (the subnormal spacing)."""
    deq, xf = q.dequantize(), x.float()
    bound = ulps * (xf.abs() * 2**-3 + q.scale.reshape(*q.lead, 1) * 2**-9)
    assert bool(((deq - xf).abs() <= bound).all()), (deq - xf).abs().max()


def test_quantize_rows_bounds_scales_and_zero_rows():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 64, generator=g) * torch.logspace(-3, 2, 5)[None, :, None]
    x[1, 2] = 0  # an all-zero row: zeros, not NaN
    q = fp8.quantize_rows_eager(x)
    assert q.data.shape == (15, 64) and q.data.dtype == torch.float8_e4m3fn and q.scale.shape == (15, 1)
    assert q.lead == (3, 5)
    amax = x.reshape(15, 64).abs().amax(-1, keepdim=True)
    torch.testing.assert_close(q.scale, (amax * (1 / 448)).clamp_min(fp8.MIN_SCALE), rtol=0, atol=0)
    assert bool((q.data.float().abs().amax(-1) == 448).logical_or(amax[:, 0] == 0).all())  # the largest maps to 448
    assert not q.data.float().isnan().any() and bool((q.data.float()[7] == 0).all())
    _within_e4m3(q, x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_fp8_linear_is_the_product_of_its_dequantized_operands(dtype):
    g = torch.Generator().manual_seed(1)
    lin = nn.Linear(64, 48, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(48, 64, generator=g) * 0.05)
    lin = lin.to(DEVICE, dtype)
    x = torch.randn(2, 9, 64, generator=g).to(DEVICE, dtype)
    f = fp8.FP8Linear(lin)
    assert f.weight.dtype == torch.float8_e4m3fn and f.weight_scale.shape == (1, 48)
    out = f(x)
    assert out.shape == (2, 9, 48) and out.dtype == dtype
    q = fp8.quantize_rows_eager(x)
    w = f.weight.float() * f.weight_scale.t()
    want = (q.dequantize() @ w.t()).to(dtype)
    tol = 1e-5 if dtype == torch.float32 and DEVICE.type == "cpu" else 2**-7  # CUDA: _scaled_mm's bf16 output
    torch.testing.assert_close(out.float(), want.float(), rtol=tol, atol=tol)
    exact = lin.float()(x.float())
    rel = ((out.float() - exact).norm() / exact.norm()).item()
    assert 1e-3 < rel < 0.05, rel  # e4m3 on both operands: a few percent, and not zero (it did quantize)
    assert torch.equal(f(q), out)  # pre-quantized rows (a fused producer) give the same result


def test_convert_linears_and_errors():
    m = nn.Sequential(nn.Linear(16, 16, bias=False), nn.ReLU(), nn.Linear(16, 16, bias=True))
    assert fp8.convert_linears(m, ["0"]) == 1 and isinstance(m[0], fp8.FP8Linear)
    assert fp8.convert_linears(m, ["0"]) == 0  # already converted
    with pytest.raises(TypeError, match="1 is a ReLU"):
        fp8.convert_linears(m, ["1"])
    with pytest.raises(ValueError, match="bias-free"):
        fp8.convert_linears(m, ["2"])


def _tiny_dit(seed: int = 0) -> DiffusionDecoderDiT:
    torch.manual_seed(seed)
    net = DiffusionDecoderDiT(get_dit_config("tiny")).eval().requires_grad_(False)
    for p in net.parameters():  # larger than the default init, so every block moves the output measurably
        p.data.normal_(0, 0.3)
    return net


def test_dit_set_gemm_converts_the_token_stream_projections():
    net = _tiny_dit()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 16, 8, 4, 4, generator=g)
    ctx, tok = torch.randn(2, 16, 32, generator=g), torch.randint(0, 64000, (2, 8, 2, 2), generator=g)
    t = torch.tensor(0.3)
    ref = net(x, t, ctx, tok)
    net.set_gemm("bf16")  # a no-op on a model-dtype DiT
    net.set_gemm("fp8")
    fp8_names = {n for n, m in net.named_modules() if isinstance(m, fp8.FP8Linear)}
    blocks = get_dit_config("tiny").num_blocks
    assert len(fp8_names) == 8 * blocks  # fa q/k/v/out, ca q/out, mlp 1/2
    assert "blocks.block0.blocks.1.block.attn.to_k.0" not in fp8_names  # the context's keys stay in model dtype
    assert "blocks.block0.blocks.1.block.attn.to_q.0" in fp8_names
    assert not any(n.startswith(("final_layer", "x_embedder", "t_embedder")) for n in fp8_names)
    out = net(x, t, ctx, tok)
    rel = ((out - ref).norm() / ref.norm()).item()
    assert 1e-3 < rel < 0.1, rel
    with pytest.raises(ValueError, match="bf16 weights are gone"):
        net.set_gemm("bf16")
    with pytest.raises(ValueError, match="unknown DiT GEMM precision"):
        net.set_gemm("int4")


@here
@pytest.mark.parametrize("gelu", [False, True], ids=["plain", "gelu"])
@pytest.mark.parametrize("d", [64, 96])  # 96: not a power of two (masked lanes)
def test_quantize_rows_kernel_matches_eager(gelu, d):
    g = torch.Generator().manual_seed(d)
    x = (2 * torch.randn(5, 3, d, generator=g)).to(DEVICE, torch.bfloat16)
    x[0, 1] = 0
    got, want = fp8.quantize_rows(x, "auto", gelu), fp8.quantize_rows(x, "eager", gelu)
    _kernel_close(got, want)
    if DEVICE.type == "cuda":  # the GPU's rounding and (GELU) the table of eager GELU: eager's values exactly
        assert torch.equal(got.scale, want.scale) and torch.equal(got.data.float(), want.data.float())


def test_gelu_table_is_eager_gelu_by_bit_pattern():
    """``fp8.gelu_table`` is indexed by a bf16 value's 16 bits (negative values wrap through int16): every finite
    value's entry equals eager GELU of it, bit for bit, and the table has all 65,536 entries."""
    table = fp8.gelu_table(torch.device("cpu"))
    assert table.shape == (1 << 16,) and table.dtype == torch.bfloat16
    g = torch.Generator().manual_seed(0)
    x = (4 * torch.randn(10_000, generator=g)).to(torch.bfloat16)
    x[:3] = torch.tensor([0.0, -0.0, -3.0])
    idx = x.view(torch.int16).to(torch.int64) & 0xFFFF
    assert torch.equal(table[idx].view(torch.int16), torch.nn.functional.gelu(x).view(torch.int16))
    assert table[0x4040].item() == torch.nn.functional.gelu(torch.tensor(3.0, dtype=torch.bfloat16)).item()


@here
def test_quantize_rows_kernel_is_bit_exact_on_fp32_rows():
    """No bf16 rounding before the quantization: the kernel's scale and e4m3 values equal eager's bit for bit,
    across a 10^6 dynamic range inside each row (normals, subnormals, zeros, round-ups to the next power of 2)."""
    g = torch.Generator().manual_seed(4)
    x = (torch.randn(64, 256, generator=g) * torch.logspace(-6, 0, 256)).to(DEVICE)
    x[:, 0] = 1.0
    got, want = fp8.quantize_rows(x, "auto"), fp8.quantize_rows(x, "eager")
    assert torch.equal(got.scale, want.scale) and torch.equal(got.data.float(), want.data.float())
    assert (want.data.float().abs() < 2**-6).sum().item() > 1000  # the subnormal path was exercised


@here
@pytest.mark.parametrize("d", [64, 96])
def test_ln_modulate_quant_kernel_matches_eager(d):
    g = torch.Generator().manual_seed(d)
    b, s = 2, 7
    x = (3 * torch.randn(b, s, d, generator=g) + 1).to(DEVICE, torch.bfloat16)
    shift, scale = (0.5 * torch.randn(b, 2 * d, generator=g)).to(DEVICE, torch.bfloat16).unsqueeze(1).chunk(2, -1)
    got = fp8.ln_modulate_quant(x, shift, scale, 1e-6, "auto")
    # the fused kernel = the bf16 modulated-LayerNorm kernel, then the quantization: bit for bit
    ref = fp8.quantize_rows_eager(fused.ln_modulate(x, shift, scale, 1e-6, "auto"))
    assert torch.equal(got.scale, ref.scale) and torch.equal(got.data.float(), ref.data.float())
    if DEVICE.type == "cuda":  # the interpreter rounds bf16 by truncation: only the GPU compares with eager closely
        _kernel_close(got, fp8.ln_modulate_quant(x, shift, scale, 1e-6, "eager"))


def _kernel_close(got: fp8.QuantRows, want: fp8.QuantRows) -> None:
    """The kernels' bf16 values before the quantization differ from eager's as test_dd_fused.py's bound allows
    (within 2^-6 of a unit-scale value: the modulated LayerNorm measured up to 1.1% apart on the H200), so: scales
    within 1%, values within one e4m3 unit plus that bf16 bound, most equal."""
    assert got.data.dtype == want.data.dtype and got.data.shape == want.data.shape and got.lead == want.lead
    torch.testing.assert_close(got.scale, want.scale, rtol=1e-2, atol=0)
    a, b = got.dequantize(), want.dequantize()
    unit = b.abs() * 2**-3 + want.scale.reshape(*want.lead, 1) * 2**-9
    assert bool(((a - b).abs() <= unit + (b.abs() + 1) * 2**-6).all())
    assert (got.data.float() == want.data.float()).float().mean().item() > 0.8


@here
def test_fp8_dit_kernels_match_eager_fp8():
    net = _tiny_dit().to(DEVICE, torch.bfloat16)
    net.set_gemm("fp8")
    g = torch.Generator().manual_seed(3)
    args = (
        torch.randn(2, 16, 8, 4, 4, generator=g).to(DEVICE, torch.bfloat16),
        torch.tensor(0.3, dtype=torch.bfloat16),
        torch.randn(2, 16, 32, generator=g).to(DEVICE, torch.bfloat16),
        torch.randint(0, 64000, (2, 8, 2, 2), generator=g).to(DEVICE),
    )
    net.set_kernels("eager")
    want = net(*args).float()
    net.set_kernels("auto")
    got = net(*args).float()
    assert ((got - want).norm() / want.norm()).item() < 0.05


def test_fp8_needs_hopper_on_cuda(monkeypatch):
    """A CUDA GPU before compute capability 9.0 is refused in one line naming it; CPU and Hopper pass."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    with pytest.raises(
        ValueError, match=r"^FP8 DiT GEMMs need a Hopper .* cuda:0 is 8\.0: use --diffusion-decoder-gemm bf16$"
    ):
        fp8.check_device(torch.device("cuda:0"))
    fp8.check_device(torch.device("cpu"))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    fp8.check_device(torch.device("cuda:0"))


def test_kernels_dispatch_without_triton():
    x = torch.randn(2, 3, 16)
    if fused.use_triton(x, "auto"):
        pytest.skip("the interpreter is on: the kernel tests cover this")
    q = fp8.quantize_rows(x, "auto", gelu=True)
    ref = fp8.quantize_rows_eager(torch.nn.functional.gelu(x))
    assert torch.equal(q.data.float(), ref.data.float()) and torch.equal(q.scale, ref.scale)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("dd8")
    dd = write_random_decoder(root / "Cosmos-Predict1-7B-Decoder-DV8x16x16ToCV8x8x8-720p", "tiny", seed=0)
    return dd, write_random_cv_tokenizer(root / "Cosmos-Tokenize1-CV8x8x8-720p", "tiny", seed=0)


def test_pipeline_fp8_is_seeded_and_close(folders):
    tokens = torch.randint(0, 64000, (1, 5, 2, 2), generator=torch.Generator().manual_seed(0))
    sampler = SamplerConfig(num_steps=3)
    exact = DiffusionDecoder(*folders, device="cpu", sampler=sampler).decode_tokens(tokens, seed=1)
    dd = DiffusionDecoder(*folders, device="cpu", sampler=sampler, gemm="fp8")
    assert sum(isinstance(m, fp8.FP8Linear) for m in dd.network.modules()) == 8 * get_dit_config("tiny").num_blocks
    a, b = dd.decode_tokens(tokens, seed=1), dd.decode_tokens(tokens, seed=1)
    assert torch.equal(a, b) and a.shape == exact.shape == (1, 3, 33, 32, 32)
    diff = (a.float() - exact.float()).abs()
    assert 0 < diff.max().item() and diff.mean().item() < 0.02  # pixels in [-1, 1]
    with pytest.raises(ValueError, match="unknown DiT GEMM precision"):
        DiffusionDecoder(*folders, device="cpu", gemm="fp16")


@pytest.mark.skipif(HERE or not HAS_TRITON, reason="the tests ran in this process, or there is no Triton")
def test_in_the_interpreter():
    """This file's tests in a child pytest that sets TRITON_INTERPRET=1 before Triton is imported: all pass (the
    skips: this test and the without-Triton dispatch test)."""
    from conftest import run_in_triton_interpreter

    summary = run_in_triton_interpreter(__file__)
    assert re.fullmatch(r"=* ?16 passed, 3 skipped in [\d.]+s( \([\d:]+\))? ?=*", summary), summary


@pytest.mark.skipif(DEVICE.type != "cuda", reason="FP8Linear's CUDA branch (torch._scaled_mm)")
def test_fp8_linear_falls_back_to_exact_accumulation(monkeypatch):
    """A torch/cuBLAS that refuses fast accumulation with row-wise scales: one warning, then the exact kind, whose
    product is what a layer built with ``fast_accum=False`` gives."""
    torch.manual_seed(0)
    lin = fp8.FP8Linear(nn.Linear(64, 32, bias=False).to(DEVICE, torch.bfloat16))
    x = torch.randn(16, 64, device=DEVICE, dtype=torch.bfloat16)
    lin.fast_accum = False
    want = lin(x)
    lin.fast_accum = True
    real = torch._scaled_mm

    def refusing(*args, use_fast_accum=False, **kw):
        if use_fast_accum:
            raise RuntimeError("fast accumulation is not supported with row-wise scales")
        return real(*args, use_fast_accum=use_fast_accum, **kw)

    monkeypatch.setattr(torch, "_scaled_mm", refusing)
    with pytest.warns(UserWarning, match="accumulating exactly"):
        got = lin(x)
    assert not lin.fast_accum and torch.equal(got, want)
