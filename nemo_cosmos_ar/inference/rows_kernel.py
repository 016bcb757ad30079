"""The speculative verify forward's products for a few rows, ``y = x W^T`` with ``x [M, K]``, M = 1..64, as one
Triton kernel (CUDA; the interpreter on CPU for tests).

Why: a verify forward (``engine.verify``) runs the window's M = L + 1 positions through every projection. At these M
a product still only has to read ``W`` once (M = 64 is 64 FLOP a weight byte, a fifth of what the H200's tensor
cores could use), so its floor is the weight stream, ~1.7 ms a step for the 4B's 7.5 GB. cuBLAS took 2.12-2.26 ms a
step at M = 17-65 (its tiles and split-K reduce kernels; the twenty-third session's profile in BENCHMARKS.md, issue
13), against 1.84 ms for the one-token decode's Triton products (``gemv.py``) -- ~0.4 ms of a ~3.4 ms step.

How: a program owns ``BLOCK_N`` rows of ``W`` (contiguous reads) and all M rows of ``x`` (``BLOCK_M``: M rounded up to
a power of two, at least 16, the smallest tensor-core tile), walks its K range in ``BLOCK_K`` steps and accumulates
``x_tile @ w_tile^T`` in fp32 on the tensor cores. Every program also reads the ``x`` tiles (from L2), so ``BLOCK_N``
stays large (M / BLOCK_N is the extra traffic a weight byte) and the products with few rows of ``W`` (the 4B's QKV,
attention-out and fc2: N = 4,096-6,144) split K over ``SPLIT_K`` programs to fill the GPU. A split program writes
its fp32 partial to a workspace and counts itself in on a per-tile counter; the last of a tile's programs to arrive
sums the ``SPLIT_K`` partials in split order (so the result does not depend on arrival order: deterministic, the
same in a CUDA graph replay), writes the output in x's dtype and sets the counter back to zero for the next call.
No second launch.

The rounding differs from cuBLAS's only by the order of the fp32 sums (one rounding to x's dtype at the end, as
``F.linear``). Launch choices per 4B shape: ``CONFIGS`` (swept by ``bench/bench_rows.py``); ``COSMOS_AR_ROWS_CONFIGS``
names a JSON file of ``{"N,K": {...}}`` entries that override them (a sweep on another GPU: ``bench_rows.py
--write``).
"""

from __future__ import annotations

import functools
import json
import os

import torch

MAX_ROWS = 64  # the largest M: one tensor-core tile of rows (L = 63); larger windows go to cuBLAS
# BLOCK_N x BLOCK_K, SPLIT_K, warps, stages. A first guess for the H200 from the arithmetic above: 128-row W tiles
# (x re-read at M / 128 of the weight bytes) and enough programs for ~2 per SM; replaced by the sweep's best.
DEFAULT = {"BLOCK_N": 128, "BLOCK_K": 64, "SPLIT_K": 1, "num_warps": 4, "num_stages": 4}
CONFIGS: dict[tuple[int, int], dict] = {
    (6144, 4096): {"BLOCK_N": 128, "BLOCK_K": 64, "SPLIT_K": 4, "num_warps": 4, "num_stages": 4},  # QKV
    (4096, 4096): {"BLOCK_N": 128, "BLOCK_K": 64, "SPLIT_K": 8, "num_warps": 4, "num_stages": 4},  # attention out
    (28672, 4096): {"BLOCK_N": 128, "BLOCK_K": 64, "SPLIT_K": 1, "num_warps": 4, "num_stages": 4},  # fc1
    (4096, 14336): {"BLOCK_N": 128, "BLOCK_K": 64, "SPLIT_K": 8, "num_warps": 4, "num_stages": 4},  # fc2
    (64000, 4096): {"BLOCK_N": 128, "BLOCK_K": 64, "SPLIT_K": 1, "num_warps": 4, "num_stages": 4},  # output layer
}
ENV = "COSMOS_AR_ROWS_CONFIGS"
_KERNEL: list = []
_COUNTERS: dict = {}  # per device: int32 zeros the split programs count on (each call leaves them zero)
COUNTERS = 1 << 14  # output tiles a call may split: N / BLOCK_N <= this


def _build():
    if _KERNEL:
        return _KERNEL[0]
    import triton
    import triton.language as tl

    @triton.jit
    def rows_kernel(
        x_ptr, w_ptr, y_ptr, part_ptr, count_ptr, M, N, K, stride_x, stride_w, stride_y, k_chunk,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, SPLIT_K: tl.constexpr,
        EVEN: tl.constexpr, F32_DOT: tl.constexpr,
    ):  # fmt: skip
        """Program (n tile, split): rows ``n0 .. n0 + BLOCK_N`` of W over columns ``split * k_chunk`` onward.
        ``EVEN``: N and every split's range are whole tiles (no column or row masks on W). ``F32_DOT``: the products
        in fp32 (Triton's interpreter: its bf16 dot is not exact)."""
        tile, split = tl.program_id(0), tl.program_id(1)
        m = tl.arange(0, BLOCK_M)
        m_ok = m < M
        n = tile * BLOCK_N + tl.arange(0, BLOCK_N)
        n_ok = n < N
        cols = tl.arange(0, BLOCK_K)
        k_lo = split * k_chunk
        k_hi = tl.minimum(k_lo + k_chunk, K)
        x_rows = x_ptr + m[:, None] * stride_x
        w_rows = w_ptr + n[:, None].to(tl.int64) * stride_w
        acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
        for k0 in range(k_lo, k_hi, BLOCK_K):
            k = k0 + cols
            if EVEN:
                w = tl.load(w_rows + k[None, :])
                x = tl.load(x_rows + k[None, :], mask=m_ok[:, None], other=0.0)
            else:
                k_ok = k < k_hi
                w = tl.load(w_rows + k[None, :], mask=n_ok[:, None] & k_ok[None, :], other=0.0)
                x = tl.load(x_rows + k[None, :], mask=m_ok[:, None] & k_ok[None, :], other=0.0)
            if F32_DOT:
                acc = tl.dot(x.to(tl.float32), tl.trans(w.to(tl.float32)), acc, input_precision="ieee")
            else:
                acc = tl.dot(x, tl.trans(w), acc)
        out = y_ptr + m[:, None] * stride_y + n[None, :]
        out_ok = m_ok[:, None] & n_ok[None, :]
        if SPLIT_K == 1:
            tl.store(out, acc.to(y_ptr.dtype.element_ty), mask=out_ok)
        else:
            # workspace [tiles, SPLIT_K, BLOCK_M, BLOCK_N] fp32: this program's partial, then count in
            own = part_ptr + tile.to(tl.int64) * (SPLIT_K * BLOCK_M * BLOCK_N)
            at = m[:, None] * BLOCK_N + tl.arange(0, BLOCK_N)[None, :]
            tl.store(own + split * BLOCK_M * BLOCK_N + at, acc)
            tl.debug_barrier()  # every thread's partial stored before the (releasing) count
            arrived = tl.atomic_add(count_ptr + tile, 1, sem="acq_rel")
            if arrived == SPLIT_K - 1:  # the last one: every partial is visible (acquire); sum them in split order
                total = tl.load(own + at, cache_modifier=".cg")
                for s in tl.static_range(1, SPLIT_K):
                    total += tl.load(own + s * BLOCK_M * BLOCK_N + at, cache_modifier=".cg")
                tl.store(out, total.to(y_ptr.dtype.element_ty), mask=out_ok)
                tl.atomic_xchg(count_ptr + tile, 0)  # ready for the next call (a graph replay included)

    _KERNEL.append(rows_kernel)
    return rows_kernel


@functools.cache
def _overrides(path: str) -> dict:
    """The ``COSMOS_AR_ROWS_CONFIGS`` file's entries, keyed ``(N, K)``."""
    try:
        with open(path) as f:
            raw = json.load(f)
        return {tuple(int(v) for v in key.split(",")): dict(cfg) for key, cfg in raw.items()}
    except (OSError, ValueError, AttributeError) as e:
        raise ValueError(f'{ENV}={path}: not a JSON object of "N,K": {{launch choices}} entries ({e})') from e


def config_for(n: int, k: int) -> dict:
    """The launch choices for a ``[n, k]`` weight: the override file's, else ``CONFIGS``', else ``DEFAULT``."""
    path = os.environ.get(ENV)
    if path:
        found = _overrides(path).get((n, k))
        if found is not None:
            return found
    return CONFIGS.get((n, k), DEFAULT)


def supported(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether ``rows_linear`` takes these: 1..``MAX_ROWS`` rows, a 16-bit float weight of x's dtype on x's device."""
    rows = x.numel() // max(x.shape[-1], 1)
    return (
        weight.ndim == 2
        and weight.dtype in (torch.bfloat16, torch.float16)
        and x.dtype == weight.dtype
        and x.device == weight.device
        and x.shape[-1] == weight.shape[1]
        and 1 <= rows <= MAX_ROWS
        and weight.stride(1) == 1
    )


def _counters(device: torch.device) -> torch.Tensor:
    key = str(device)
    if key not in _COUNTERS:
        _COUNTERS[key] = torch.zeros(COUNTERS, dtype=torch.int32, device=device)
    return _COUNTERS[key]


def rows_linear(x: torch.Tensor, weight: torch.Tensor, config: dict | None = None) -> torch.Tensor:
    """``F.linear(x, weight)`` for ``x [..., K]`` of at most ``MAX_ROWS`` rows, ``weight [N, K]`` (bf16 or fp16,
    x's dtype): ``[..., N]`` in x's dtype, fp32 accumulation, deterministic. ``config`` overrides ``config_for``."""
    if not supported(x, weight):
        raise ValueError(
            f"rows_linear: x {tuple(x.shape)} {x.dtype} on {x.device} against weight {tuple(weight.shape)} "
            f"{weight.dtype} on {weight.device}: needs 1..{MAX_ROWS} rows of K = weight.shape[1], the same 16-bit "
            "float dtype and device, and a weight with contiguous rows"
        )
    if x.device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError("rows_linear: CPU tensors run in Triton's interpreter: set TRITON_INTERPRET=1 first")
    n, k = weight.shape
    x2 = x.reshape(-1, k)
    if x2.stride(1) != 1:
        x2 = x2.contiguous()
    rows = x2.shape[0]
    cfg = dict(config or config_for(n, k))
    bn, bk, splits = int(cfg.pop("BLOCK_N")), int(cfg.pop("BLOCK_K")), int(cfg.pop("SPLIT_K"))
    bm = max(16, 1 << (rows - 1).bit_length())
    tiles = -(-n // bn)
    chunk = -(-k // (splits * bk)) * bk  # each split's columns: whole K tiles
    splits = -(-k // chunk)  # no empty split
    if splits > 1 and tiles > COUNTERS:
        raise ValueError(f"rows_linear: {tiles} output tiles exceed the {COUNTERS} split counters; raise BLOCK_N")
    even = n % bn == 0 and k % chunk == 0
    y = torch.empty((*x.shape[:-1], n), dtype=x.dtype, device=x.device)
    part = torch.empty(tiles * splits * bm * bn if splits > 1 else 1, dtype=torch.float32, device=x.device)
    count = _counters(x.device) if splits > 1 else part
    if x.device.type != "cuda":
        cfg = {}  # the interpreter ignores warps and stages
    _build()[(tiles, splits)](
        x2, weight, y, part, count, rows, n, k, x2.stride(0), weight.stride(0), n, chunk,
        BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, SPLIT_K=splits, EVEN=even, F32_DOT=x.device.type != "cuda", **cfg,
    )  # fmt: skip
    return y
