"""The int8 batch-1 decode product as a hand-written CUDA kernel (NVRTC, no compiler needed at install time).

Why: the Triton int8 kernel (``gemv.gemv(..., scale=)``) reads the 4B's int8 rows at 2.1-3.4 TB/s where its bf16
twin reaches 4.3; neither fewer instructions per weight (dp4a, int8 tensor cores) nor a Triton-level prefetch
moved it (BENCHMARKS.md, issue 13), so the limit looked like how many weight bytes each SM keeps in flight. Here
that number is explicit: every lane issues ``ROWS x UNROLL`` 16-byte loads (``ld.global.nc``, no L1 allocation)
before it uses any of them, and blocks loop over row groups so the input row is staged in shared memory once per
block, not once per row group.

What it computes is ``gemv(x, weight, scale=scale)``: ``y[n] = scale[n] * sum_k weight[n, k] x[k]`` for one bf16
row ``x [K]``, int8 ``weight [N, K]`` (row-major, ``K % 16 == 0``, 16-byte aligned) and fp32 ``scale [N]``; the
products accumulate in fp32 (per lane, then a warp reduction), and ``y`` is rounded to bf16 once. The int8 bytes
become floats without the int-to-float instruction: a byte permute puts each (sign-flipped) byte under the
exponent of 2^23, and one subtraction leaves its value exactly.

``pdl``: programmatic dependent launch, as ``gemv``'s: the first weight loads are issued before
``griddepcontrol.wait`` (the kernel before may still be writing x), and the next kernel may launch once x is staged.
The launch goes through ``cuLaunchKernelEx`` (ctypes, the driver torch already loaded), so it can carry that
attribute and be captured in a CUDA graph. CUDA only (sm_90+ for ``pdl``); nothing here runs on CPU.

Compile-time options fold the decode step's small operations in (``gemv_int8``'s ``norm``, ``residual``, ``glu``;
used by ``fused_int8.py``): an RMSNorm while the input row is staged, a residual add or fc1's SwiGLU (rows stored as
gate/up pairs) when the row sums are written.

Measured on the H200 (BENCHMARKS.md, issue 13, sixth session): a 4B layer's four int8 products 71.8 -> 64.7 us
(the Triton kernel with PDL against this one), the output layer 68.7 -> 61.4 us, the batch-1 int8 decode 553 ->
606-609 tokens/s, with the same bf16 outputs as the Triton kernel for 99.98-100% of the rows.
"""

from __future__ import annotations

import ctypes

import torch

# (ROWS per warp, UNROLL loads per lane per row, WARPS per block, BLOCKS per SM of the grid, 0 = one block per
# row group and no loop). bench/bench_gemv_cuda.py's 54-choice sweep on the H200 (call b7): 2 x 2 x 4 warps was the
# best for fc1 and the output layer (30.0 and 61.5 us, 3.9 and 4.3 TB/s); the others' bests are below. Two variants
# measured and dropped (BENCHMARKS.md; code in commit a93c029): x read from global memory where it is used, and the
# PDL trigger after the rows -- each faster for the products alone, slower in the whole decode step.
DEFAULT_CONFIG = (2, 2, 4, 0)
SHAPE_CONFIGS: dict[tuple[int, int], tuple[int, int, int, int]] = {
    (6144, 4096): (2, 2, 4, 8),  # QKV: 9.3 us (2.70 TB/s) against the Triton kernel's 10.6 with PDL
    (4096, 4096): (1, 2, 4, 0),  # attention out: 7.2 against 6.9
    (4096, 14336): (1, 4, 8, 8),  # fc2: 18.4 against 21.1
}

# The device helpers, shared with bench/bench_persistent_chain.py (a "%"-template like the kernel: asm operands
# are written %%0).
HELPERS = r"""
__device__ __forceinline__ float bf16_lo(unsigned int u) { return __uint_as_float(u << 16); }
__device__ __forceinline__ float bf16_hi(unsigned int u) { return __uint_as_float(u & 0xffff0000u); }
// f rounded to bf16 (nearest even; finite values): its bits, and its value
__device__ __forceinline__ unsigned short bf16_bits(float f) {
    unsigned int bits = __float_as_uint(f);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (unsigned short)(bits >> 16);
}
__device__ __forceinline__ float bf16_round(float f) { return __uint_as_float((unsigned int)bf16_bits(f) << 16); }

__device__ __forceinline__ int4 load_stream(const int4* p) {
    int4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.s32 {%%0, %%1, %%2, %%3}, [%%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
}

// acc += sum of the 4 signed bytes of w times x0..x3. w ^ 0x80808080 makes each byte b + 128; placed under the
// bits of 2^23 (0x4B000000) it reads as 2^23 + b + 128, so subtracting 8388736 gives b exactly.
__device__ __forceinline__ float dot4(unsigned int w, float x0, float x1, float x2, float x3, float acc) {
    const unsigned int u = w ^ 0x80808080u;
    acc = fmaf(__uint_as_float(__byte_perm(u, 0x4B000000u, 0x7540)) - 8388736.0f, x0, acc);
    acc = fmaf(__uint_as_float(__byte_perm(u, 0x4B000000u, 0x7541)) - 8388736.0f, x1, acc);
    acc = fmaf(__uint_as_float(__byte_perm(u, 0x4B000000u, 0x7542)) - 8388736.0f, x2, acc);
    acc = fmaf(__uint_as_float(__byte_perm(u, 0x4B000000u, 0x7543)) - 8388736.0f, x3, acc);
    return acc;
}

"""

# The fusions' helpers: the squares of 8 bf16 values, and 8 values normalised (x * rs * weight, one rounding).
FUSION_HELPERS = r"""
__device__ __forceinline__ float sq8(uint4 a) {
    float s = 0.0f;
    const unsigned int u[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) s = fmaf(bf16_hi(u[j]), bf16_hi(u[j]), fmaf(bf16_lo(u[j]), bf16_lo(u[j]), s));
    return s;
}
__device__ __forceinline__ unsigned int norm2(unsigned int a, unsigned int g, float rs) {
    return (unsigned int)bf16_bits(bf16_lo(a) * rs * bf16_lo(g))
           | ((unsigned int)bf16_bits(bf16_hi(a) * rs * bf16_hi(g)) << 16);
}
__device__ __forceinline__ uint4 norm8(uint4 a, uint4 g, float rs) {
    return make_uint4(norm2(a.x, g.x, rs), norm2(a.y, g.y, rs), norm2(a.z, g.z, rs), norm2(a.w, g.w, rs));
}

"""

_SOURCE = (
    r"""
#define ROWS %(rows)d
#define UNROLL %(unroll)d
#define WARPS %(warps)d
#define PDL %(pdl)d
#define NORM %(norm)d
#define RES %(res)d
#define GLU %(glu)d
#if GLU && ROWS != 2
#error "GLU needs ROWS == 2: a warp's two rows are a gate row and its up row"
#endif
"""
    + HELPERS
    + FUSION_HELPERS
    + r"""extern "C" __global__ void __launch_bounds__(WARPS * 32)
gemv_int8(const int4* __restrict__ w, const uint4* __restrict__ x, const float* __restrict__ scale,
          unsigned short* __restrict__ y, int n, int k, const uint4* __restrict__ nw,
          const unsigned short* __restrict__ res, float eps) {
    extern __shared__ uint4 xs[];  // the input row, bf16, 8 values per uint4
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int kv = k >> 4;  // 16-byte weight vectors per row
    const int step = gridDim.x * WARPS * ROWS;
    int row = (blockIdx.x * WARPS + warp) * ROWS;
    int4 v[ROWS][UNROLL];
#pragma unroll
    for (int r = 0; r < ROWS; ++r)
#pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
            const int c = lane + 32 * u;
            v[r][u] = (row + r < n && c < kv) ? load_stream(w + (long long)(row + r) * kv + c) : make_int4(0, 0, 0, 0);
        }
#if PDL
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
#if NORM
    {  // x is the residual stream: stage rms_norm(x) * nw; every block sums the squares in the same order
        __shared__ float part[WARPS];
        float ss = 0.0f;
        for (int i = threadIdx.x; i < (k >> 3); i += WARPS * 32) {
            const uint4 a = x[i];
            xs[i] = a;
            ss += sq8(a);
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
        if (lane == 0) part[warp] = ss;
        __syncthreads();
        float tot = 0.0f;
#pragma unroll
        for (int i = 0; i < WARPS; ++i) tot += part[i];
        const float rs = rsqrtf(tot / (float)k + eps);
        for (int i = threadIdx.x; i < (k >> 3); i += WARPS * 32) xs[i] = norm8(xs[i], nw[i], rs);
    }
#else
    for (int i = threadIdx.x; i < (k >> 3); i += WARPS * 32) xs[i] = x[i];
#endif
    __syncthreads();
#if PDL
    asm volatile("griddepcontrol.launch_dependents;");
#endif
    for (; row < n; row += step) {
        float acc[ROWS];
#pragma unroll
        for (int r = 0; r < ROWS; ++r) acc[r] = 0.0f;
        for (int c0 = 0; c0 < kv; c0 += 32 * UNROLL) {
            if (c0 > 0) {
#pragma unroll
                for (int r = 0; r < ROWS; ++r)
#pragma unroll
                    for (int u = 0; u < UNROLL; ++u) {
                        const int c = c0 + lane + 32 * u;
                        v[r][u] = (row + r < n && c < kv) ? load_stream(w + (long long)(row + r) * kv + c)
                                                          : make_int4(0, 0, 0, 0);
                    }
            }
#pragma unroll
            for (int u = 0; u < UNROLL; ++u) {
                const int c = c0 + lane + 32 * u;
                if (c < kv) {
                    const uint4 a = xs[2 * c], b = xs[2 * c + 1];
                    const float x0 = bf16_lo(a.x), x1 = bf16_hi(a.x), x2 = bf16_lo(a.y), x3 = bf16_hi(a.y);
                    const float x4 = bf16_lo(a.z), x5 = bf16_hi(a.z), x6 = bf16_lo(a.w), x7 = bf16_hi(a.w);
                    const float x8 = bf16_lo(b.x), x9 = bf16_hi(b.x), xa = bf16_lo(b.y), xb = bf16_hi(b.y);
                    const float xc = bf16_lo(b.z), xd = bf16_hi(b.z), xe = bf16_lo(b.w), xf = bf16_hi(b.w);
#pragma unroll
                    for (int r = 0; r < ROWS; ++r) {
                        float s = acc[r];
                        s = dot4((unsigned int)v[r][u].x, x0, x1, x2, x3, s);
                        s = dot4((unsigned int)v[r][u].y, x4, x5, x6, x7, s);
                        s = dot4((unsigned int)v[r][u].z, x8, x9, xa, xb, s);
                        s = dot4((unsigned int)v[r][u].w, xc, xd, xe, xf, s);
                        acc[r] = s;
                    }
                }
            }
        }
#pragma unroll
        for (int r = 0; r < ROWS; ++r) {
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], o);
        }
#if GLU
        if (lane == 0 && row < n) {  // rows row and row + 1: gate j and up j, j = row / 2
            const float g = bf16_round(acc[0] * scale[row]), u = bf16_round(acc[1] * scale[row + 1]);
            y[row >> 1] = bf16_bits(g / (1.0f + expf(-g)) * u);
        }
#else
#pragma unroll
        for (int r = 0; r < ROWS; ++r) {
            if (lane == 0 && row + r < n) {
#if RES
                const float sum = bf16_round(acc[r] * scale[row + r]) + bf16_lo((unsigned int)res[row + r]);
                y[row + r] = bf16_bits(sum);
#else
                y[row + r] = bf16_bits(acc[r] * scale[row + r]);
#endif
            }
        }
#endif
        if (row + step < n) {  // the next row group's first loads, before this warp's reduction is consumed
#pragma unroll
            for (int r = 0; r < ROWS; ++r)
#pragma unroll
                for (int u = 0; u < UNROLL; ++u) {
                    const int c = lane + 32 * u;
                    v[r][u] = (row + step + r < n && c < kv) ? load_stream(w + (long long)(row + step + r) * kv + c)
                                                             : make_int4(0, 0, 0, 0);
                }
        }
    }
}
"""
)

_KERNELS: dict[tuple[int, int, int, bool], object] = {}
_SM_COUNT: list[int] = []


class _LaunchAttr(ctypes.Structure):  # CUlaunchAttribute: id, padding to 8 bytes, a 64-byte value union
    # The union as integers: a c_char array field would read back as a bytes copy, and writing through that copy
    # would corrupt Python's own objects.
    _fields_ = [("id", ctypes.c_uint), ("pad", ctypes.c_uint), ("value", ctypes.c_ulonglong * 8)]


class _LaunchConfig(ctypes.Structure):  # CUlaunchConfig
    _fields_ = [
        ("grid", ctypes.c_uint * 3),
        ("block", ctypes.c_uint * 3),
        ("shared", ctypes.c_uint),
        ("stream", ctypes.c_void_p),
        ("attrs", ctypes.POINTER(_LaunchAttr)),
        ("num_attrs", ctypes.c_uint),
    ]


_PROGRAMMATIC_STREAM_SERIALIZATION = 6  # CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION


def available(device: torch.device, pdl: bool) -> bool:
    """Whether the kernel compiles and loads here (NVRTC found, a CUDA device; ``pdl``: compute capability 9.0+);
    compiles the default block choice once as a side effect."""
    if device.type != "cuda" or (pdl and torch.cuda.get_device_capability(device)[0] < 9):
        return False
    try:
        with torch.cuda.device(device):
            kernel(*DEFAULT_CONFIG[:3], pdl)
    except Exception:  # noqa: BLE001 - no NVRTC library, an old driver: the Triton kernel serves instead
        return False
    return True


def pick(mode: str, device: torch.device, pdl: bool) -> str:
    """``--decode-int8-kernel``: "triton" stays; "cuda" and "fused" where ``available`` (else a one-line error);
    "auto" = cuda where available, else triton."""
    if mode == "triton":
        return "triton"
    if available(device, pdl):
        return "cuda" if mode == "auto" else mode
    if mode in ("cuda", "fused"):
        raise ValueError(
            f"--decode-int8-kernel {mode}: the CUDA kernel does not compile here (it needs a CUDA GPU and torch's "
            "NVRTC library); use --decode-int8-kernel triton"
        )
    return "triton"


def fits(x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor | None) -> bool:
    """Whether ``gemv_int8`` takes these operands (else the caller uses ``gemv.gemv``)."""
    n, k = weight.shape
    return (
        scale is not None
        and weight.is_cuda
        and weight.dtype == torch.int8
        and x.dtype == torch.bfloat16
        and x.numel() == k
        and k % 16 == 0
        and weight.stride() == (k, 1)
        and weight.data_ptr() % 16 == 0
    )


def source(
    rows: int, unroll: int, warps: int, pdl: bool, norm: bool = False, res: bool = False, glu: bool = False
) -> str:
    """The kernel's CUDA source for one block shape and fusion choice."""
    flags = dict(pdl=int(pdl), norm=int(norm), res=int(res), glu=int(glu))
    return _SOURCE % dict(rows=rows, unroll=unroll, warps=warps, **flags)


def kernel(rows: int, unroll: int, warps: int, pdl: bool, norm: bool = False, res: bool = False, glu: bool = False):
    """The compiled kernel for one block shape and fusion choice (NVRTC, once per process)."""
    key = (rows, unroll, warps, pdl, norm, res, glu)
    if key not in _KERNELS:
        _KERNELS[key] = torch.cuda._compile_kernel(source(*key), "gemv_int8")
    return _KERNELS[key]


def _launch(fn, grid: int, block: int, shared: int, args: list, pdl: bool) -> None:
    libcuda = torch.cuda._utils._get_gpu_runtime_library()
    keep = [
        ctypes.c_void_p(a.data_ptr())
        if isinstance(a, torch.Tensor)
        else (ctypes.c_float(a) if isinstance(a, float) else ctypes.c_int(a))
        for a in args
    ]
    params = (ctypes.c_void_p * len(keep))(*[ctypes.cast(ctypes.byref(p), ctypes.c_void_p) for p in keep])
    cfg = _LaunchConfig()
    cfg.grid[:] = (grid, 1, 1)
    cfg.block[:] = (block, 1, 1)
    cfg.shared = shared
    cfg.stream = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
    attr = _LaunchAttr()
    if pdl:
        attr.id = _PROGRAMMATIC_STREAM_SERIALIZATION
        attr.value[0] = 1  # programmaticStreamSerializationAllowed, the union's first int (little-endian)
        cfg.attrs, cfg.num_attrs = ctypes.pointer(attr), 1
    err = libcuda.cuLaunchKernelEx(ctypes.byref(cfg), fn.func, params, None)
    if err:
        torch.cuda._utils._check_cuda(err)


def gemv_int8(
    x: torch.Tensor,
    weight: torch.Tensor,
    scale: torch.Tensor,
    *,
    pdl: bool = False,
    config=None,
    norm: tuple[torch.Tensor, float] | None = None,
    residual: torch.Tensor | None = None,
    glu: bool = False,
) -> torch.Tensor:
    """``gemv.gemv(x, weight, scale=scale)`` (one bf16 row; see the module docstring) by the CUDA kernel, with the
    decode step's small operations optionally folded in (``fused_int8.py``; ``reference`` computes the same):

    * ``norm=(w, eps)``: ``x`` is the residual stream and the product's input is ``rms_norm(x) * w`` (bf16 ``w [K]``;
      the squares summed in fp32, the normalised row rounded once to bf16);
    * ``residual`` (bf16, N values): the output is ``residual + product`` (the product rounded to bf16 first, as the
      unfused add sees it);
    * ``glu``: ``weight``'s rows are gate and up rows interleaved (``quant.interleave_glu``) and the output is
      ``silu(gate) * up`` of N / 2 values (gate and up rounded to bf16 first, one more rounding at the end).
    """
    n, k = weight.shape
    if weight.dtype != torch.int8 or x.dtype != torch.bfloat16 or scale.dtype != torch.float32:
        raise ValueError(
            f"gemv_int8: needs int8 weight, bf16 x, fp32 scale; got {weight.dtype}, {x.dtype}, {scale.dtype}"
        )
    if k % 16 or weight.stride() != (k, 1) or weight.data_ptr() % 16 or x.numel() != k or scale.numel() != n:
        raise ValueError(
            f"gemv_int8: weight {tuple(weight.shape)} must be contiguous with K % 16 == 0 and 16-byte aligned, x one "
            f"row of {k}, scale {n} values; got x {tuple(x.shape)}, scale {tuple(scale.shape)}"
        )
    if not weight.is_cuda:
        raise ValueError("gemv_int8: CUDA tensors only")
    _check_fusions(n, k, norm, residual, glu, torch.bfloat16)
    rows, unroll, warps, per_sm = config or SHAPE_CONFIGS.get((n, k), DEFAULT_CONFIG)
    if glu and rows != 2:
        raise ValueError(f"gemv_int8: glu needs 2 rows per warp (a gate row and its up row), got config {config}")
    groups = -(-n // (rows * warps))
    if per_sm:
        if not _SM_COUNT:
            _SM_COUNT.append(torch.cuda.get_device_properties(weight.device).multi_processor_count)
        groups = min(groups, per_sm * _SM_COUNT[0])
    xv = x.reshape(k).contiguous()
    y = torch.empty((*x.shape[:-1], n // 2 if glu else n), dtype=torch.bfloat16, device=x.device)
    nw, eps = (norm[0].contiguous(), float(norm[1])) if norm is not None else (xv, 0.0)
    res = residual.reshape(n).contiguous() if residual is not None else xv
    fn = kernel(rows, unroll, warps, pdl, norm is not None, residual is not None, glu)
    _launch(fn, groups, 32 * warps, 2 * k, [weight, xv, scale, y, n, k, nw, res, eps], pdl)
    return y


def _check_fusions(n: int, k: int, norm, residual, glu: bool, dtype: torch.dtype) -> None:
    if norm is not None and (norm[0].dtype != dtype or norm[0].numel() != k or norm[1] is None):
        raise ValueError(f"gemv_int8: norm needs a {dtype} weight of {k} values and a float eps")
    if residual is not None and (residual.dtype != dtype or residual.numel() != n or glu):
        raise ValueError(f"gemv_int8: residual needs {n} {dtype} values (and no glu)")
    if glu and n % 2:
        raise ValueError(f"gemv_int8: glu needs an even number of rows, got {n}")


def reference(
    x: torch.Tensor,
    weight: torch.Tensor,
    scale: torch.Tensor,
    *,
    norm: tuple[torch.Tensor, float] | None = None,
    residual: torch.Tensor | None = None,
    glu: bool = False,
) -> torch.Tensor:
    """What ``gemv_int8`` computes, in torch (any device; fp32 products, the kernel's roundings to ``x``'s dtype,
    none for fp32). The fused decode step runs this where the kernel cannot (CPU tests), and the GPU tier compares
    the kernel with it."""
    n, k = weight.shape
    _check_fusions(n, k, norm, residual, glu, x.dtype)

    def rnd(t):
        return t.to(x.dtype).float()

    xf = x.reshape(k).float()
    if norm is not None:
        rs = torch.rsqrt(xf.square().sum() / k + norm[1])
        xf = rnd(xf * rs * norm[0].float())
    y = rnd((weight.float() @ xf) * scale)
    if glu:
        g, u = y[0::2], y[1::2]
        y = g / (1.0 + torch.exp(-g)) * u
    elif residual is not None:
        y = y + residual.reshape(n).float()
    return y.to(x.dtype).reshape(*x.shape[:-1], -1)
