"""The Triton few-rows product (``rows_gemm.rows_gemm``: y = x @ w.T for M <= 128 rows, split-K with a fixed-order
reduce).

Needs Triton. Without a GPU the kernels run in Triton's interpreter, which must be chosen before Triton is first
imported, so under a plain pytest this module's kernel tests run in a child pytest with ``TRITON_INTERPRET=1``
(``test_in_the_interpreter``) and skip here, as test_verify_kernel.py's.

Tolerance (``_assert_close``): elementwise |a - b| <= ulp + K * 2^-24 * (|x| @ |w|^T), where ulp is one bf16 unit in
the last place of max(|a|, |b|) (2^(e - 7) for a magnitude in [2^e, 2^(e+1))): two fp32 sums of the same products
in different orders differ by at most the second term (the worst-case bound of K-term fp32 summation), and each is
rounded once to bf16, which moves them apart by at most one ulp more. Away from cancellation that is 1 bf16 ulp.
"""

import os
import re

import pytest
import torch

pytest.importorskip("triton")

from conftest import run_in_triton_interpreter  # noqa: E402
from nemo_cosmos_ar.inference import rows_gemm as R  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
HERE = DEVICE.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"
here = pytest.mark.skipif(not HERE, reason="runs in the child pytest with TRITON_INTERPRET=1")
BF16 = torch.bfloat16


def _inputs(m: int, n: int, k: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((m, k), generator=g).to(DEVICE, BF16)
    w = torch.randn((n, k), generator=g).to(DEVICE, BF16)
    return x, w


def _ulp(t: torch.Tensor) -> torch.Tensor:
    """One bf16 unit in the last place at magnitude |t| (8 significant bits), for |t| >= 2^-100."""
    return torch.exp2(torch.floor(torch.log2(t.abs().clamp_min(2.0**-100))) - 7)


def _assert_close(a: torch.Tensor, b: torch.Tensor, x: torch.Tensor, w: torch.Tensor) -> None:
    a, b = a.float(), b.float()
    bound = x.float().abs() @ w.float().abs().T
    tol = _ulp(torch.maximum(a.abs(), b.abs())) + x.shape[1] * 2.0**-24 * bound
    bad = (a - b).abs() > tol
    assert not bad.any(), f"{int(bad.sum())} outputs off, max |a - b| {(a - b).abs().max().item():.3g}"


def test_tolerance_has_teeth():
    """The tolerance passes the reference against itself and fails one output moved by 2 ulps (runs here too)."""
    x, w = torch.randn(5, 64, dtype=BF16), torch.randn(30, 64, dtype=BF16)
    ref = R.rows_gemm_reference(x, w)
    _assert_close(ref, ref, x, w)
    off = ref.float()
    i = off.abs().argmax()  # the largest output: there the fp32 term is far below an ulp
    off.view(-1)[i] += 2 * _ulp(off.view(-1)[i])
    with pytest.raises(AssertionError, match="1 outputs off"):
        _assert_close(off, ref, x, w)


# N = 200 and 77 are no multiple of block_n 64 / 32; K = 96 is no multiple of block_k 64 (a 32-column last tile),
# K = 50 none of 16 either (a 2-column last tile, rows not 16-byte aligned). split_k 3 over K = 96 / 32: tiles 1 + 1 + 1.
@here
@pytest.mark.parametrize("m", [1, 5, 17, 33, 65])
@pytest.mark.parametrize(
    ("n", "k", "opts"),
    [
        (200, 96, dict(block_n=64, block_k=64, split_k=1)),
        (200, 96, dict(block_n=64, block_k=32, split_k=3)),
        (77, 50, dict(block_n=32, block_k=16, split_k=2)),
    ],
    ids=["direct", "split3", "ragged-split2"],
)
def test_matches_reference(m, n, k, opts):
    """Every output within the tolerance of the fp32 product rounded once, with and without split-K."""
    x, w = _inputs(m, n, k, seed=m)
    y = R.rows_gemm(x, w, **opts)
    assert y.shape == (m, n) and y.dtype == BF16 and y.device == x.device
    _assert_close(y, R.rows_gemm_reference(x, w), x, w)


@here
@pytest.mark.parametrize("m", [3, 33])
def test_splits_agree(m):
    """K = 256 in 8 tiles of 32 cut into 1, 2, 4, 5 (-> 4 of 2 tiles), 8 and 16 (-> 8) splits: all within the
    tolerance of the unsplit product and of the reference."""
    x, w = _inputs(m, 96, 256, seed=10 + m)
    one = R.rows_gemm(x, w, block_n=32, block_k=32, split_k=1)
    ref = R.rows_gemm_reference(x, w)
    for split in (2, 4, 5, 8, 16):
        y = R.rows_gemm(x, w, block_n=32, block_k=32, split_k=split)
        _assert_close(y, one, x, w)
        _assert_close(y, ref, x, w)


@here
@pytest.mark.parametrize("split", [1, 4])
def test_deterministic(split):
    """The same call twice gives the same bits (the partials are summed in a fixed order, no atomics)."""
    x, w = _inputs(17, 130, 192, seed=3)
    a = R.rows_gemm(x, w, block_n=32, block_k=32, split_k=split)
    b = R.rows_gemm(x, w, block_n=32, block_k=32, split_k=split)
    assert torch.equal(a, b)


@here
def test_default_launch():
    """No launch keywords: ``DEFAULTS`` (128 x 128 tiles, the split count from the shape), M = 17."""
    x, w = _inputs(17, 300, 512, seed=4)
    _assert_close(R.rows_gemm(x, w), R.rows_gemm_reference(x, w), x, w)


@here
def test_strided_operands_and_nothing_read_outside():
    """w a block of a bigger matrix (row stride 160, columns 16..111), x rows of a wider buffer (row stride 130):
    the same result as contiguous copies, and NaN in every weight element outside the block (rows before / after,
    columns before / after, on the sides of the ragged last N and K tiles) changes no bit."""
    big = torch.full((240, 160), float("nan"), dtype=BF16, device=DEVICE)
    x_buf = torch.full((9, 130), float("nan"), dtype=BF16, device=DEVICE)
    x, w = _inputs(9, 200, 96, seed=5)
    big[20:220, 16:112] = w
    x_buf[:, :96] = x
    wv, xv = big[20:220, 16:112], x_buf[:, :96]
    assert wv.stride() == (160, 1) and xv.stride() == (130, 1)
    for opts in (
        dict(block_n=64, block_k=64, split_k=1),
        dict(block_n=64, block_k=64, split_k=2),
        dict(block_n=64, block_k=32, split_k=3),
    ):
        y = R.rows_gemm(xv, wv, **opts)
        assert torch.isfinite(y).all()
        assert torch.equal(y, R.rows_gemm(x, w, **opts))


def test_fits_refuses():
    """``fits`` takes 2-D bf16 x [M <= 128, K] and w [N, K] with contiguous rows on one device, and refuses the rest;
    ``rows_gemm`` raises ValueError with the reason (checked before any kernel, so this runs in both processes)."""
    ok_device = HERE  # CPU tensors only under the interpreter
    x, w = torch.zeros(17, 64, dtype=BF16), torch.zeros(40, 64, dtype=BF16)
    assert R.fits(x, w) is ok_device
    refused = [
        (x.float(), w),  # fp32 x
        (x, w.half()),  # fp16 w
        (x, w.float()),
        (torch.zeros(129, 64, dtype=BF16), w),  # M > 128
        (torch.zeros(0, 64, dtype=BF16), w),  # M = 0
        (x, torch.zeros(40, 48, dtype=BF16)),  # K mismatch
        (x[None], w),  # 3-D x
        (x, torch.zeros(64, 40, dtype=BF16).T),  # w with column stride 40 (a transposed view)
        (x, torch.zeros(40, 128, dtype=BF16)[:, ::2]),  # w with column stride 2
        (x, torch.zeros(40, 64, dtype=BF16, device="meta")),  # another device
    ]
    for xa, wa in refused:
        assert not R.fits(xa, wa), (xa.shape, xa.dtype, wa.shape, wa.dtype, wa.stride())
        with pytest.raises(ValueError, match="rows_gemm: "):
            R.rows_gemm(xa, wa)
    assert R.fits(torch.zeros(128, 64, dtype=BF16), w) is ok_device  # M = 128 is the largest
    assert R.fits(torch.zeros(1, 64, dtype=BF16), w[:1]) is ok_device
    if not ok_device:
        with pytest.raises(ValueError, match="TRITON_INTERPRET=1"):
            R.rows_gemm(x, w)


def test_launch_plan():
    """The grid of a call, a pure function of the shape: the 4B's products on 132 SMs with the defaults (split so
    that the N tiles x splits reach one wave), and explicit splits clipped to whole non-empty runs of K tiles."""
    d = R.DEFAULTS

    def plan(m, n, k, **kw):
        p = R.launch_plan(m, n, k, {**d, **kw}, 132)
        return p["block_m"], p["n_tiles"], p["splits"], p["tiles_per_split"]

    assert plan(17, 6144, 4096) == (32, 48, 4, 8)  # qkv: 48 tiles x 4 = 192 programs
    assert plan(17, 4096, 4096) == (32, 32, 8, 4)  # proj
    assert plan(33, 4096, 14336) == (64, 32, 8, 14)  # fc2
    assert plan(65, 28672, 4096) == (128, 224, 1, 32)  # fc1: enough tiles
    assert plan(1, 64000, 4096) == (16, 500, 1, 32)  # output layer
    assert plan(5, 100, 256, block_k=32, split_k=5) == (16, 1, 4, 2)  # 8 tiles in 5 -> 4 runs of 2
    assert plan(5, 100, 100, block_k=32, split_k=16) == (16, 1, 4, 1)  # never more splits than K tiles
    assert R.launch_plan(17, 64, 64, d, 4)["num_warps"] == 4  # 128 x 32 accumulator: 32 registers a thread
    assert R.launch_plan(65, 64, 64, d, 4)["num_warps"] == 8  # 128 x 128: 128 at 4 warps, 64 at 8
    # the deepest pipeline (<= 4) within shared memory: 128 x 128 tiles with x's 32 / 128 rows are 40 / 64 KB a stage
    assert R.launch_plan(17, 64, 64, d, 4, 227 * 1024)["num_stages"] == 4
    assert R.launch_plan(65, 64, 64, d, 4, 227 * 1024)["num_stages"] == 3
    assert R.launch_plan(65, 64, 64, d, 4, 163 * 1024)["num_stages"] == 2
    assert R.launch_plan(65, 64, 64, {**d, "num_stages": 5}, 4)["num_stages"] == 5  # as told


@pytest.mark.skipif(HERE, reason="the tests ran in this process")
def test_in_the_interpreter():
    """This file's tests in a child pytest that sets TRITON_INTERPRET=1 before anything imports Triton: all pass."""
    summary = run_in_triton_interpreter(__file__)
    assert re.fullmatch(r"=* ?24 passed, 1 skipped in [\d.]+s( \([\d:]+\))? ?=*", summary), summary
