"""The Triton flash-decoding kernel (``decode_kernel.decode_attention``) and the engine's ``"triton"`` decode attention.

Needs Triton (absent from the CPU stack, so CI skips this file). Without a GPU the kernels run in Triton's
interpreter, which Triton fixes when it is first imported (its own library functions, ``tl.sum`` and the like, are
decorated then). Under pytest, conftest's Megatron import has imported Triton already, so unless
``TRITON_INTERPRET=1`` was set from the start, this module's tests run in a child pytest with it set
(``test_in_the_interpreter``) and skip here.
"""

import os
import re

import pytest
import torch

pytest.importorskip("triton")

from conftest import run_in_triton_interpreter  # noqa: E402
from gen_assets import tiny_mcore_engine  # noqa: E402
from nemo_cosmos_ar.inference import decode_kernel as dk  # noqa: E402
from nemo_cosmos_ar.inference import generator as gen  # noqa: E402
from nemo_cosmos_ar.inference.sampling import SamplingConfig  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
HERE = DEVICE.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"
here = pytest.mark.skipif(not HERE, reason="runs in the child pytest with TRITON_INTERPRET=1")
TOL = {torch.float32: 1e-5, torch.bfloat16: 1e-2}  # max |out - fp32 reference|
HEADS, GROUPS, HD, CACHE, L = 8, 2, 32, 160, 100  # 4 query heads per group; attend 100 of 160 slots (not whole tiles)


def _inputs(batch: int, dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn((1, batch, HEADS, HD), generator=g).to(DEVICE, dtype)
    kc = torch.randn((batch, GROUPS, CACHE, HD), generator=g).to(DEVICE, dtype)
    vc = torch.randn((batch, GROUPS, CACHE, HD), generator=g).to(DEVICE, dtype)
    return q, kc, vc


# block_n 16, 3 splits over 100 slots: chunks of 48 slots = [0, 48), [48, 96), [96, 144) (the last one holds 4 slots
# of the 100). pos 0: splits 1 and 2 empty; 47 / 48: the last slot of split 0 / the first of split 1; 99 = L - 1.
@here
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("pos", [0, 47, 48, 99])
def test_matches_fp32_reference(dtype, batch, pos):
    q, kc, vc = _inputs(batch, dtype)
    p = torch.tensor([pos], device=DEVICE)
    out = dk.decode_attention(q, kc[:, :, :L], vc[:, :, :L], p, 0.3, splits=3, block_n=16)
    ref = dk.decode_attention_reference(q, kc[:, :, :L], vc[:, :, :L], p, 0.3)
    assert out.shape == (1, batch, HEADS * HD) and out.dtype == dtype
    err = (out.float() - ref).abs().max().item()
    assert err < TOL[dtype], f"max |out - ref| {err:.2e}"
    other = dk.decode_attention_reference(q, kc[:, :, :L], vc[:, :, :L], p // 2 if pos > L // 2 else p * 0 + L - 1, 0.3)
    assert (out.float() - other).abs().max().item() > 10 * TOL[dtype]  # negative control: pos matters


@here
@pytest.mark.parametrize("pos", [0, 130])
def test_default_split_and_scale(pos):
    """The shape's own split count and tile (64) over 150 slots, and ``scale=None`` meaning head_dim ** -0.5."""
    q, kc, vc = _inputs(2, torch.float32, seed=1)
    p = torch.tensor([pos], device=DEVICE)
    out = dk.decode_attention(q, kc[:, :, :150], vc[:, :, :150], p)
    ref = dk.decode_attention_reference(q, kc[:, :, :150], vc[:, :, :150], p, HD**-0.5)
    assert (out - ref).abs().max().item() < 1e-5


@here
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_slots_past_pos_are_never_read(dtype):
    """NaN and inf in every slot after pos (in the same tile, in later tiles and splits) change no bit."""
    q, kc, vc = _inputs(3, dtype, seed=2)
    p = torch.tensor([50], device=DEVICE)
    clean = dk.decode_attention(q, kc[:, :, :L], vc[:, :, :L], p, splits=3, block_n=16)
    kc[:, :, 51:] = float("nan")
    vc[:, :, 51::2] = float("inf")
    vc[:, :, 52::2] = float("nan")
    dirty = dk.decode_attention(q, kc[:, :, :L], vc[:, :, :L], p, splits=3, block_n=16)
    assert torch.isfinite(dirty).all()
    assert torch.equal(clean, dirty)


@here
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("pos", [0, 47, 48, 99])
def test_the_kernel_writes_this_steps_kv(dtype, pos):
    """With ``k_new``/``v_new`` the kernel stores them at slot pos (of every row and group; no other slot changes)
    and attends as if they had been written first, whichever split holds pos."""
    q, kc, vc = _inputs(3, dtype, seed=5)
    g = torch.Generator().manual_seed(9)
    k_new = torch.randn((3, GROUPS, HD), generator=g).to(DEVICE, dtype)
    v_new = torch.randn((1, 3, GROUPS, HD), generator=g).to(DEVICE, dtype)[0]  # a strided view, as the engine's
    p = torch.tensor([pos], device=DEVICE)
    want_k, want_v = kc.clone(), vc.clone()
    want_k[:, :, pos], want_v[:, :, pos] = k_new, v_new
    ref = dk.decode_attention_reference(q, want_k[:, :, :L], want_v[:, :, :L], p, 0.3)
    kc[:, :, pos], vc[:, :, pos] = float("nan"), float("nan")  # stale slot: must be neither read nor kept
    out = dk.decode_attention(q, kc[:, :, :L], vc[:, :, :L], p, 0.3, splits=3, block_n=16, k_new=k_new, v_new=v_new)
    assert torch.equal(kc, want_k) and torch.equal(vc, want_v)
    assert (out.float() - ref).abs().max().item() < TOL[dtype]
    with pytest.raises(ValueError, match="pass k_new and v_new together"):
        dk.decode_attention(q, kc[:, :, :L], vc[:, :, :L], p, k_new=k_new)


def test_num_splits_at_the_4b_shapes():
    """Chunks are whole 64-slot tiles covering the cache; B * groups * S is 1-2x the H200's 132 SMs where the cache
    has enough tiles."""
    assert dk.num_splits(1, 8, 6144, 132) == (32, 192)
    assert dk.num_splits(1, 8, 12800, 132) == (29, 448)
    assert dk.num_splits(8, 8, 12800, 132) == (5, 3136)
    assert dk.num_splits(1, 8, 64, 132) == (1, 64)  # one tile: one split
    for b in (1, 2, 4, 8):
        for n in (1024, 6144, 9000, 12800):
            s, chunk = dk.num_splits(b, 8, n, 132)
            assert chunk % 64 == 0 and (s - 1) * chunk < n <= s * chunk
            assert min(132, b * 8 * -(-n // 64)) <= b * 8 * s <= 2 * 132 + b * 8, (b, n, s)  # at most 1 split a tile


@here
def test_bad_shapes_are_refused():
    q, kc, vc = _inputs(2, torch.float32)
    with pytest.raises(ValueError, match=r"decode_attention: q \(1, 2, 8, 32\) does not fit k \(2, 2, 160, 16\)"):
        dk.decode_attention(q, kc[..., :16], vc[..., :16], torch.tensor([3], device=DEVICE))


@pytest.fixture(scope="module")
def tiny_engine():
    return tiny_mcore_engine(seed=3)


@here
@pytest.mark.skipif(DEVICE.type == "cuda", reason="the tiny engine runs on CPU (Triton's interpreter)")
def test_engine_triton_attention_decodes_as_sdpa(tiny_engine):
    """Greedy decoding of 2 prompts through length buckets 64 and 80 (sampling in the step, as +triton-attn): the
    same tokens as SDPA and every logit within 1e-5 (fp32)."""
    eng = tiny_engine
    prompt = torch.randint(0, 64000, (2, 48), generator=torch.Generator().manual_seed(4))
    opts = gen.DecodeOptions(step_mode="static", bucket=16, sample_in_graph=True)
    runs = {}
    for mode in ("sdpa", "triton", "triton+write"):
        seen = {}
        eng.decode_attention = mode.split("+")[0]
        eng.fused_cache_write = mode.endswith("+write")
        try:
            out, _ = gen.generate_tokens(
                eng,
                prompt,
                68,
                SamplingConfig(temperature=0.0),
                on_logits=lambda p, lg, seen=seen: seen.__setitem__(p, lg.clone()),
                options=opts,
            )
        finally:
            eng.decode_attention, eng.fused_cache_write = "sdpa", False
        runs[mode] = out, seen
    (a, la) = runs["sdpa"]
    for mode in ("triton", "triton+write"):
        b, lb = runs[mode]
        assert a.shape == (2, 68) and torch.equal(a, b), mode
        assert sorted(la) == sorted(lb) == list(range(48, 68))
        assert max((la[p] - lb[p]).abs().max().item() for p in la) < 1e-5, mode


@pytest.mark.skipif(HERE, reason="the tests ran in this process")
def test_in_the_interpreter():
    """This file's tests in a child pytest that sets TRITON_INTERPRET=1 before anything imports Triton: all pass."""
    summary = run_in_triton_interpreter(__file__)
    assert re.fullmatch(r"=* ?31 passed, 1 skipped in [\d.]+s( \([\d:]+\))? ?=*", summary), summary
