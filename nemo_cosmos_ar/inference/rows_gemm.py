"""``y[M, N] = x[M, K] @ w[N, K]^T`` for a few rows M (1..128) of one sequence, as Triton kernels that read each
weight element once for all M rows.

A speculative verify forward runs M = L + 1 positions (17, 33, 65) through every projection: with such small M the
product is bound by streaming the bf16 weight from HBM, and cuBLAS (``F.linear``) took 2.12 ms a 4B forward at
M = 17 on the H200 against ~1.7 ms of weight bytes at ~4.5 TB/s. Here:

1. ``rows_kernel``, grid ``(N tiles, K splits)``, "swap AB": the weight tile ``[BLOCK_N, BLOCK_K]`` is the MMA's
   M dimension (>= 64 rows, what Hopper's wgmma wants) and ``x^T [BLOCK_K, BLOCK_M]`` its N dimension (``BLOCK_M``
   = M rounded up to a power of two >= 16, the smallest dot), so no MMA row is wasted on padding of M. Each
   program walks its run of whole K tiles; the weight tile is read along K (contiguous rows: coalesced, 16-byte
   vectors) and the loop's loads are software-pipelined ``num_stages`` deep (x's tile, a few KB from L2, rides
   along). One split: the fp32 accumulator is rounded once to bf16 into ``y``. Several: it is stored unrounded as
   split ``s``'s fp32 partial ``[S, M, N]``.
2. ``reduce_kernel`` (splits > 1 only): sums the S partials of each output in the fixed order 0..S-1 and rounds
   once. No atomics: every call gives the same bits. Split-K is for the shapes whose N tiles alone are too few
   programs for the SMs (the 4B's qkv, attention-out and fc2); the partials (S x M x N fp32, a few MB) stay in L2.

Shapes are all host-side (no sync, no data-dependent shape; the workspace comes from torch's allocator), so a call
is capturable in a CUDA graph. Triton is imported on first use; on CPU tensors the kernels run in Triton's
interpreter (tests, ``TRITON_INTERPRET=1``). ``rows_gemm_reference`` is the fp32 yardstick; ``fits`` says which
inputs the kernel serves (callers fall back to ``F.linear`` for the rest).
"""

from __future__ import annotations

import functools
import os

import torch

MAX_M = 128  # rows per call: x^T [BLOCK_K, BLOCK_M] is the dot's N dimension, and the fp32 accumulator grows with it
# Launch choices unless told otherwise (not measured yet: bench/bench_rows_gemm.py sweeps them). split_k = 0: the
# fewest splits in 1, 2, 4, 8 that give about ``waves`` programs per SM; num_warps = 0: 4 warps while the fp32
# accumulator is <= 64 registers a thread at 4 warps, else 8; num_stages = 0: as many as 4 as the device's shared
# memory holds ((BLOCK_N + BLOCK_M) x BLOCK_K bf16 a stage). pdl: the reduce kernel is launched with programmatic
# dependent launch (Hopper+), so its launch overlaps the product's tail.
DEFAULTS = {"block_n": 128, "block_k": 128, "split_k": 0, "waves": 1.0, "num_warps": 0, "num_stages": 0, "pdl": False}
# Per-shape choices over DEFAULTS, keyed by (N, K, BLOCK_M): filled from bench_rows_gemm.py --save-tuned's table on
# the H200 (``load_tuned`` reads such a file at run time; a keyword given to ``rows_gemm`` still wins).
TUNED: dict[tuple[int, int, int], dict] = {}
REDUCE_BLOCK = 1024
_KERNELS: list[tuple] = []  # (rows kernel, reduce kernel) once built


def _build() -> tuple:
    """The two kernels, decorated on first use (whether they run in Triton's interpreter is decided at ``@triton.jit``
    time, from ``TRITON_INTERPRET=1`` in the environment)."""
    if _KERNELS:
        return _KERNELS[0]
    import triton
    import triton.language as tl

    # M and the tiles per split are not specialised on (== 1, divisible by 16): one binary serves M = 17, 33, 65
    # at the same BLOCK_M, and the split count does not multiply the compiles.
    @triton.jit(do_not_specialize=["M", "tiles_per_split"])
    def rows_kernel(
        x_ptr, w_ptr, out_ptr, M, N, K, stride_xm, stride_wn, tiles_per_split,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, EVEN_K: tl.constexpr,
        PARTIAL: tl.constexpr, F32_DOT: tl.constexpr, TRIGGER: tl.constexpr,
    ):  # fmt: skip
        if TRIGGER:  # a reduce launched with PDL may be scheduled now; it waits for this grid's end before reading
            tl.extra.cuda.gdc_launch_dependents()
        tl.assume(M > 0)
        tl.assume(N > 0)
        tl.assume(K > 0)
        tl.assume(stride_xm > 0)
        tl.assume(stride_wn > 0)
        tl.assume(tiles_per_split > 0)
        pid_n = tl.program_id(0)
        split = tl.program_id(1)
        rows = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        ms = tl.arange(0, BLOCK_M)
        # Rows past N / M read row N-1 / M-1 again instead of being masked (their results are never stored): the
        # weight and x loads need no row mask, so they stay plain full-width vector loads the pipeliner can issue.
        w_rows = tl.where(rows < N, rows, N - 1)
        x_rows = tl.where(ms < M, ms, M - 1)
        cols = tl.max_contiguous(tl.multiple_of(tl.arange(0, BLOCK_K), BLOCK_K), BLOCK_K)
        k_lo = split * tiles_per_split * BLOCK_K
        n_tiles = tl.minimum(tiles_per_split, tl.cdiv(K - k_lo, BLOCK_K))  # the host makes every split non-empty
        w_ptrs = w_ptr + w_rows[:, None].to(tl.int64) * stride_wn + (k_lo + cols)[None, :]
        x_ptrs = x_ptr + x_rows[:, None].to(tl.int64) * stride_xm + (k_lo + cols)[None, :]
        acc = tl.zeros([BLOCK_N, BLOCK_M], dtype=tl.float32)
        for t in range(n_tiles):
            if EVEN_K:
                w = tl.load(w_ptrs)
                x = tl.load(x_ptrs)
            else:  # both masked: a column past K may hold anything (NaN * 0 is NaN)
                k_ok = (k_lo + t * BLOCK_K + cols) < K
                w = tl.load(w_ptrs, mask=k_ok[None, :], other=0.0)
                x = tl.load(x_ptrs, mask=k_ok[None, :], other=0.0)
            if F32_DOT:  # the interpreter: its bf16 dot is wrong; bf16 x bf16 products are exact in fp32 anyway
                acc += tl.dot(w.to(tl.float32), tl.trans(x.to(tl.float32)), input_precision="ieee")
            else:
                acc = tl.dot(w, tl.trans(x), acc)  # [BLOCK_N, BLOCK_K] @ [BLOCK_K, BLOCK_M], fp32 accumulate
            w_ptrs += BLOCK_K
            x_ptrs += BLOCK_K
        ok = (rows < N)[:, None] & (ms < M)[None, :]
        if PARTIAL:  # split ``split``'s fp32 partial, out = [S, M, N]
            offs = (split * M + ms)[None, :].to(tl.int64) * N + rows[:, None]
            tl.store(out_ptr + offs, acc, mask=ok)
        else:
            offs = ms[None, :].to(tl.int64) * N + rows[:, None]
            tl.store(out_ptr + offs, acc.to(out_ptr.dtype.element_ty), mask=ok)

    @triton.jit
    def reduce_kernel(part_ptr, y_ptr, total, splits, BLOCK: tl.constexpr, PDL: tl.constexpr):
        if PDL:  # launched early: wait until the product's partials are all written
            tl.extra.cuda.gdc_wait()
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        ok = offs < total
        ptrs = part_ptr + offs
        acc = tl.load(ptrs, mask=ok, other=0.0)
        for _ in range(1, splits):  # a fixed order: the same sum, bit for bit, on every call
            ptrs += total  # the next split's partial (64-bit pointer arithmetic: no int32 overflow)
            acc += tl.load(ptrs, mask=ok, other=0.0)
        tl.store(y_ptr + offs, acc.to(y_ptr.dtype.element_ty), mask=ok)

    _KERNELS.append((rows_kernel, reduce_kernel))
    return _KERNELS[0]


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


@functools.cache
def _sm_count(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return 4  # CPU (interpreter): a few programs


@functools.cache
def _smem(device: torch.device) -> int:
    if device.type == "cuda":  # the opt-in maximum a block may use (227 KB on Hopper, 163 KB on A100)
        return getattr(torch.cuda.get_device_properties(device), "shared_memory_per_block_optin", 163 * 1024)
    return 227 * 1024


@functools.cache
def _capability(device: torch.device) -> tuple[int, int]:
    return torch.cuda.get_device_capability(device) if device.type == "cuda" else (0, 0)


def launch_plan(m: int, n: int, k: int, opts: dict, sms: int, smem: int = 227 * 1024) -> dict:
    """The launch of one call, a pure function of the shape (so one per CUDA graph): ``block_m``, the grid's N tiles
    and K ``splits`` (every split non-empty: ``splits * tiles_per_split`` covers the K tiles, the last one partly),
    ``tiles_per_split``, ``num_warps`` and ``num_stages`` (``smem``: bytes of shared memory a block may have)."""
    block_m = max(16, _next_pow2(m))
    bn, bk = opts["block_n"], opts["block_k"]
    n_tiles, k_tiles = -(-n // bn), -(-k // bk)
    split = opts["split_k"]
    if not split:
        target = opts["waves"] * sms
        split = next((s for s in (1, 2, 4, 8) if n_tiles * s >= target), 8)
    split = max(1, min(split, k_tiles))
    per = -(-k_tiles // split)
    warps = opts["num_warps"] or (4 if bn * block_m <= 64 * 32 * 4 else 8)
    stages = opts["num_stages"] or max(2, min(4, smem // ((bn + block_m) * bk * 2)))
    return {
        "block_m": block_m,
        "n_tiles": n_tiles,
        "splits": -(-k_tiles // per),
        "tiles_per_split": per,
        "num_warps": warps,
        "num_stages": stages,
    }


def why_not(x: torch.Tensor, w: torch.Tensor) -> str | None:
    """Why ``rows_gemm`` cannot take these inputs, or None if it can."""
    if x.dim() != 2 or w.dim() != 2:
        return f"x {tuple(x.shape)} and w {tuple(w.shape)} must be 2-D"
    if x.dtype != torch.bfloat16 or w.dtype != torch.bfloat16:
        return f"x ({x.dtype}) and w ({w.dtype}) must be bfloat16"
    (m, k), (n, kw) = x.shape, w.shape
    if kw != k or k < 1 or n < 1:
        return f"x {tuple(x.shape)} does not fit w {tuple(w.shape)}"
    if not 1 <= m <= MAX_M:
        return f"M = {m} rows: 1 to {MAX_M} only"
    if w.stride(1) != 1 or (n > 1 and w.stride(0) < k):
        return f"w's rows must be contiguous (strides {w.stride()})"
    if x.device != w.device:
        return f"x is on {x.device}, w on {w.device}"
    if x.device.type == "cuda":
        return None if _capability(x.device) >= (8, 0) else "bf16 dots need compute capability 8.0 or later"
    if x.device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1":
        return None
    return f"{x.device.type} tensors: CUDA only (CPU under TRITON_INTERPRET=1, Triton's interpreter)"


def fits(x: torch.Tensor, w: torch.Tensor) -> bool:
    """Whether ``rows_gemm(x, w)`` serves these inputs: 2-D bf16 x [M, K] (1 <= M <= 128) and w [N, K] with
    contiguous rows on one CUDA device of compute capability >= 8.0 (or CPU in Triton's interpreter)."""
    return why_not(x, w) is None


def rows_gemm(
    x: torch.Tensor,
    w: torch.Tensor,
    *,
    block_n: int | None = None,
    block_k: int | None = None,
    split_k: int | None = None,
    num_warps: int | None = None,
    num_stages: int | None = None,
    pdl: bool | None = None,
) -> torch.Tensor:
    """``x @ w.T`` as ``[M, N]`` bf16: fp32 accumulation, rounded once. x ``[M, K]`` bf16 (1 <= M <= 128), w
    ``[N, K]`` bf16 with contiguous rows (``fits``). The keywords are launch choices (None: ``DEFAULTS``); any
    choice gives results within bf16 rounding of the others, and the same choice the same bits on every call."""
    given = {
        "block_n": block_n,
        "block_k": block_k,
        "split_k": split_k,
        "num_warps": num_warps,
        "num_stages": num_stages,
        "pdl": pdl,
    }
    reason = why_not(x, w)
    if reason:
        raise ValueError(f"rows_gemm: {reason}")
    tuned = TUNED.get((w.shape[0], w.shape[1], max(16, _next_pow2(x.shape[0]))), {})
    opts = {**DEFAULTS, **tuned, **{key: val for key, val in given.items() if val is not None}}
    if x.stride(1) != 1:
        x = x.contiguous()
    (m, k), n = x.shape, w.shape[0]
    plan = launch_plan(m, n, k, opts, _sm_count(x.device), _smem(x.device))
    splits = plan["splits"]
    cuda = x.device.type == "cuda"
    rows_kernel, reduce_kernel = _build()
    y = torch.empty((m, n), dtype=torch.bfloat16, device=x.device)
    out = torch.empty((splits, m, n), dtype=torch.float32, device=x.device) if splits > 1 else y
    pdl = bool(opts["pdl"]) and cuda and splits > 1 and _capability(x.device) >= (9, 0)
    rows_kernel[(plan["n_tiles"], splits)](
        x, w, out, m, n, k, x.stride(0), w.stride(0), plan["tiles_per_split"],
        BLOCK_M=plan["block_m"], BLOCK_N=opts["block_n"], BLOCK_K=opts["block_k"], EVEN_K=k % opts["block_k"] == 0,
        PARTIAL=splits > 1, F32_DOT=not cuda, TRIGGER=pdl, num_warps=plan["num_warps"], num_stages=plan["num_stages"],
    )  # fmt: skip
    if splits > 1:  # the fixed-order sum of the partials, rounded once
        launch = {"launch_pdl": True} if pdl else {}
        reduce_kernel[(-(-m * n // REDUCE_BLOCK),)](
            out, y, m * n, splits, BLOCK=REDUCE_BLOCK, PDL=pdl, num_warps=4, **launch
        )  # fmt: skip
    return y


def rows_gemm_reference(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The same product in fp32 torch ops, rounded once to bf16."""
    return (x.float() @ w.float().T).to(torch.bfloat16)


def load_tuned(path) -> int:
    """Add the launch choices of ``bench_rows_gemm.py --save-tuned PATH`` (a JSON list of ``{"n", "k", "block_m",
    "choice"}``) to ``TUNED``; returns how many entries were read."""
    import json

    entries = json.loads(open(path).read())
    for e in entries:
        unknown = set(e["choice"]) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"{path}: unknown rows_gemm launch choices {sorted(unknown)}")
        TUNED[(int(e["n"]), int(e["k"]), int(e["block_m"]))] = dict(e["choice"])
    return len(entries)
