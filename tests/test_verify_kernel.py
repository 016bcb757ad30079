"""The Triton M-query verify attention (``verify_kernel.verify_attention``) and the engine's verify forward on it.

Needs Triton. Without a GPU the kernels run in Triton's interpreter, which must be chosen before Triton is first
imported, so under a plain pytest this module's tests run in a child pytest with ``TRITON_INTERPRET=1``
(``test_in_the_interpreter``) and skip here, as test_decode_kernel.py's.
"""

import os
import re

import pytest
import torch

pytest.importorskip("triton")

from conftest import run_in_triton_interpreter  # noqa: E402
from gen_assets import tiny_mcore_engine  # noqa: E402
from nemo_cosmos_ar.inference import verify_kernel as vk  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
HERE = DEVICE.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"
here = pytest.mark.skipif(not HERE, reason="runs in the child pytest with TRITON_INTERPRET=1")
TOL = {torch.float32: 1e-5, torch.bfloat16: 1e-2}  # max |out - fp32 reference| / max(1, |reference|)
HEADS, GROUPS, HD, CACHE, L = 8, 2, 32, 160, 100  # 4 query heads per group; attend 100 of 160 slots


def _inputs(m: int, dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn((m, HEADS, HD), generator=g).to(DEVICE, dtype)
    kc = torch.randn((GROUPS, CACHE, HD), generator=g).to(DEVICE, dtype)
    vc = torch.randn((GROUPS, CACHE, HD), generator=g).to(DEVICE, dtype)
    return q, kc, vc


# block_n 16, 3 splits over 100 slots: chunks [0, 48), [48, 96), [96, 144). With M = 5 at pos 44 the window's rows
# see up to slots 44..48: the last row's only slot in split 1 is 48, the others see nothing there (no NaN allowed).
@here
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize(("m", "pos"), [(1, 0), (5, 0), (5, 44), (5, 95), (17, 30), (17, 83)])
@pytest.mark.parametrize("block_h", [0, 16])
def test_matches_fp32_reference(dtype, m, pos, block_h):
    """Every row within the dtype's tolerance of the fp32 attention over slots 0..pos+j, whether one block holds all
    M * 4 rows or they are cut into blocks of 16; a negative control shows the row limits matter."""
    q, kc, vc = _inputs(m, dtype)
    p = torch.tensor([pos], device=DEVICE)
    out = vk.verify_attention(q, kc[:, :L], vc[:, :L], p, 0.3, splits=3, block_n=16, block_h=block_h)
    ref = vk.verify_attention_reference(q, kc[:, :L], vc[:, :L], p, 0.3)
    assert out.shape == (m, HEADS * HD) and out.dtype == dtype
    assert torch.isfinite(out).all()
    err = ((out.float() - ref).abs() / ref.abs().clamp_min(1)).max().item()  # bf16 rounds outputs up to ~5
    assert err < TOL[dtype], f"max |out - ref| {err:.2e}"
    if m > 1:  # every row seeing the whole window gives other rows 0..M-2
        wide = vk.verify_attention_reference(q, kc[:, :L], vc[:, :L], p + m - 1, 0.3)
        assert (out.float() - wide)[: HEADS * HD].abs().max().item() > 10 * TOL[dtype]


@here
def test_default_launch_and_scale():
    """The shape's own split count, tile and row block (17 x 4 = 68 rows -> 128) over 150 slots; ``scale=None`` is
    head_dim ** -0.5."""
    q, kc, vc = _inputs(17, torch.float32, seed=1)
    p = torch.tensor([120], device=DEVICE)
    out = vk.verify_attention(q, kc[:, :150], vc[:, :150], p)
    ref = vk.verify_attention_reference(q, kc[:, :150], vc[:, :150], p, HD**-0.5)
    assert (out - ref).abs().max().item() < 1e-5


@here
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_slots_past_the_window_are_never_read(dtype):
    """NaN and inf in every slot after pos + M - 1 change no bit of the output."""
    q, kc, vc = _inputs(9, dtype, seed=2)
    p = torch.tensor([40], device=DEVICE)
    clean = vk.verify_attention(q, kc[:, :L], vc[:, :L], p, splits=3, block_n=16)
    kc[:, 49:] = float("nan")
    vc[:, 49::2] = float("inf")
    vc[:, 50::2] = float("nan")
    dirty = vk.verify_attention(q, kc[:, :L], vc[:, :L], p, splits=3, block_n=16)
    assert torch.isfinite(dirty).all()
    assert torch.equal(clean, dirty)


def test_row_blocks():
    assert [vk.block_rows(r) for r in (1, 4, 16, 17, 68, 128, 132)] == [16, 16, 16, 32, 128, 128, 128]
    assert vk.block_rows(68, 64) == 64


@here
def test_bad_shapes_are_refused():
    q, kc, vc = _inputs(3, torch.float32)
    with pytest.raises(ValueError, match=r"verify_attention: q \(3, 8, 32\) does not fit k \(2, 160, 16\)"):
        vk.verify_attention(q, kc[..., :16], vc[..., :16], torch.tensor([3], device=DEVICE))


@here
@pytest.mark.skipif(DEVICE.type == "cuda", reason="the tiny engine runs on CPU (Triton's interpreter)")
@pytest.mark.parametrize("fused", [False, True], ids=["megatron", "fused"])
def test_engine_verify_on_the_kernel_equals_the_gemm_attention(fused):
    """The engine's verify forward with ``decode_attention = "triton"`` (the kernel) gives the GEMM attention's
    logits within 1e-5 (fp32), for a window inside the grid and one reaching past it (spare slots)."""
    eng = tiny_mcore_engine(seed=3)
    eng.fused_step = fused
    total = eng.cfg.latent_shape[0] * eng.cfg.latent_shape[1] * eng.cfg.latent_shape[2]
    tokens = torch.randint(0, eng.vocab_size, (1, total + 8), generator=torch.Generator().manual_seed(5))
    got = {}
    for mode in ("gemm", "triton"):
        eng.decode_attention = mode
        cache = eng.new_cache(1, total + 8)
        eng.prefill(tokens[:, :40], cache)
        rows = []
        for start in (40, 48, total - 3):
            rows.append(eng.verify(tokens[:, start : start + 8], torch.tensor([start]), cache, total + 8))
        got[mode] = torch.cat(rows)
    eng.decode_attention = "sdpa"
    assert got["gemm"].shape == (24, eng.vocab_size)
    assert (got["gemm"] - got["triton"]).abs().max().item() < 1e-5


@pytest.mark.skipif(HERE, reason="the tests ran in this process")
def test_in_the_interpreter():
    """This file's tests in a child pytest that sets TRITON_INTERPRET=1 before anything imports Triton: all pass."""
    summary = run_in_triton_interpreter(__file__)
    assert re.fullmatch(r"=* ?31 passed, 1 skipped in [\d.]+s( \([\d:]+\))? ?=*", summary), summary
