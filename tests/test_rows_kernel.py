"""The verify forward's few-row products (``rows_kernel.rows_linear``) against float64, and the engine's verify on them.

Without a GPU the kernel runs in Triton's interpreter: those tests run in a child pytest with ``TRITON_INTERPRET=1``
set from the start (``test_in_the_interpreter``) and skip in the parent. The interpreter rounds fp32 to bf16 / fp16
towards zero (a GPU rounds to nearest), so the bound below is one unit in the last place of the exact product, which
holds for both.
"""

import json
import os
import re

import pytest
import torch

pytest.importorskip("triton")

from conftest import run_in_triton_interpreter  # noqa: E402
from gen_assets import tiny_mcore_engine  # noqa: E402
from nemo_cosmos_ar.inference import engine as en  # noqa: E402
from nemo_cosmos_ar.inference import rows_kernel as rk  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
HERE = DEVICE.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"
here = pytest.mark.skipif(not HERE, reason="runs in the child pytest with TRITON_INTERPRET=1")
MANTISSA = {torch.bfloat16: 8, torch.float16: 11}  # significand bits


def _pair(m: int, n: int, k: int, dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m, k, generator=g).to(DEVICE, dtype), torch.randn(n, k, generator=g).to(DEVICE, dtype)


def _within_one_ulp(y: torch.Tensor, x: torch.Tensor, w: torch.Tensor) -> None:
    exact = x.double() @ w.double().T
    ulp = exact.abs() * 2.0 ** (1 - MANTISSA[y.dtype]) + 1e-6 * x.shape[1]  # + the fp32 sums' own error
    excess = ((y.double() - exact).abs() - ulp).max().item()
    assert excess <= 0, f"off by more than one unit in the last place (excess {excess:.3g})"


# K = 100 in 16-column tiles over 3 splits: chunks of 48, 48 and 4 columns (a ragged last split, masked loads);
# N = 80 in 32-row tiles: the last tile half empty.
@here
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize(("m", "n", "k"), [(1, 64, 64), (5, 80, 100), (17, 96, 128), (64, 32, 48)])
@pytest.mark.parametrize("splits", [1, 3])
def test_matches_float64(dtype, m, n, k, splits):
    x, w = _pair(m, n, k, dtype)
    y = rk.rows_linear(x, w, {"BLOCK_N": 32, "BLOCK_K": 16, "SPLIT_K": splits})
    assert y.shape == (m, n) and y.dtype == dtype
    _within_one_ulp(y, x, w)


@here
def test_split_sums_are_deterministic_and_leave_the_counters_at_zero():
    x, w = _pair(33, 96, 160, torch.bfloat16, seed=1)
    cfg = {"BLOCK_N": 32, "BLOCK_K": 16, "SPLIT_K": 4}
    first = rk.rows_linear(x, w, cfg)
    assert torch.equal(first, rk.rows_linear(x, w, cfg))
    assert int(rk._counters(DEVICE).abs().sum()) == 0  # ready for the next call (a graph replay)
    _within_one_ulp(first, x, w)


@here
def test_leading_dims_and_strided_rows():
    x, w = _pair(6, 48, 64, torch.bfloat16, seed=2)
    wide = torch.zeros(6, 80, dtype=x.dtype, device=DEVICE)
    wide[:, 8:72] = x  # rows with a stride of 80 (a view, as a split of a larger activation)
    got = rk.rows_linear(wide[:, 8:72].view(1, 6, 64), w, {"BLOCK_N": 16, "BLOCK_K": 16, "SPLIT_K": 2})
    assert got.shape == (1, 6, 48)
    assert torch.equal(got[0], rk.rows_linear(x, w, {"BLOCK_N": 16, "BLOCK_K": 16, "SPLIT_K": 2}))


def test_refuses_what_it_cannot_run():
    w = torch.zeros(32, 16, dtype=torch.bfloat16)
    bad = [
        (torch.zeros(65, 16, dtype=torch.bfloat16), w),  # more rows than one tile
        (torch.zeros(4, 16), w.float()),  # fp32
        (torch.zeros(4, 8, dtype=torch.bfloat16), w),  # K mismatch
        (torch.zeros(4, 16, dtype=torch.float16), w),  # dtypes differ
    ]
    for x, weight in bad:
        assert not rk.supported(x, weight)
        with pytest.raises(ValueError, match=r"rows_linear: x \(\d+, \d+\)"):
            rk.rows_linear(x, weight)
    assert rk.supported(torch.zeros(1, 64, 16, dtype=torch.bfloat16), w)


def test_launch_choices_from_the_override_file(tmp_path, monkeypatch):
    mine = {"BLOCK_N": 64, "BLOCK_K": 128, "SPLIT_K": 2, "num_warps": 8, "num_stages": 3}
    path = tmp_path / "rows.json"
    path.write_text(json.dumps({"4096,4096": mine}))
    monkeypatch.setenv(rk.ENV, str(path))
    assert rk.config_for(4096, 4096) == mine
    assert rk.config_for(6144, 4096) == rk.CONFIGS[(6144, 4096)]  # not in the file: the table's
    assert rk.config_for(7, 9) == rk.DEFAULT
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    monkeypatch.setenv(rk.ENV, str(bad))
    with pytest.raises(ValueError, match=rf"{rk.ENV}=.*bad.json: not a JSON object"):
        rk.config_for(4096, 4096)


def test_configure_decode_picks_the_verify_products():
    eng = tiny_mcore_engine(seed=0)
    en.configure_decode(eng)  # CPU: no fused step, no matrix-vector decode
    assert eng.verify_rows is False
    with pytest.raises(ValueError, match="--verify-products triton needs the fused step"):
        en.configure_decode(eng, fused="off", verify="triton")
    en.configure_decode(eng, fused="on", verify="triton")
    assert eng.verify_rows is True
    with pytest.raises(ValueError, match="verify products must be one of auto, cublas, triton"):
        en.configure_decode(eng, verify="cutlass")


@here
@pytest.mark.skipif(DEVICE.type == "cuda", reason="the tiny engine runs on CPU (Triton's interpreter)")
def test_engine_verify_on_the_kernel(monkeypatch):
    """The fused verify forward in bf16 with ``verify_rows``: every projection (4 a layer) and the output layer go
    through the kernel, and the logits stay within bf16 rounding of cuBLAS's (both against the same fp32 model)."""
    eng = tiny_mcore_engine(seed=3)
    eng.model.to(torch.bfloat16)
    eng.dtype, eng.cos, eng.sin = torch.bfloat16, eng.cos.bfloat16(), eng.sin.bfloat16()
    eng.fused_step = True
    calls = []
    real = rk.rows_linear
    monkeypatch.setattr(rk, "rows_linear", lambda x, w, config=None: calls.append(x.shape) or real(x, w, config))
    total = eng.cfg.latent_shape[0] * eng.cfg.latent_shape[1] * eng.cfg.latent_shape[2]
    tokens = torch.randint(0, eng.vocab_size, (1, 48), generator=torch.Generator().manual_seed(5))
    got = {}
    for rows in (False, True):
        eng.verify_rows = rows
        cache = eng.new_cache(1, total + 8)
        eng.prefill(tokens[:, :40], cache)
        got[rows] = eng.verify(tokens[:, 40:48], torch.tensor([40]), cache, total + 8).float()
    assert len(calls) == 4 * len(eng.layers) + 1 and all(s[-2] == 8 for s in calls)
    scale = got[False].abs().max().item()
    assert got[True].shape == (8, eng.vocab_size)
    assert (got[True] - got[False]).abs().max().item() <= 0.02 * scale


@pytest.mark.skipif(HERE, reason="the tests ran in this process")
def test_in_the_interpreter():
    """This file's tests in a child pytest that sets TRITON_INTERPRET=1 before anything imports Triton: all pass."""
    summary = run_in_triton_interpreter(__file__)
    assert re.fullmatch(r"=* ?22 passed, 1 skipped in [\d.]+s( \([\d:]+\))? ?=*", summary), summary
