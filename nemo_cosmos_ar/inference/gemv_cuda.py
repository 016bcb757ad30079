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

_SOURCE = (
    r"""
#define ROWS %(rows)d
#define UNROLL %(unroll)d
#define WARPS %(warps)d
#define PDL %(pdl)d
"""
    + HELPERS
    + r"""extern "C" __global__ void __launch_bounds__(WARPS * 32)
gemv_int8(const int4* __restrict__ w, const uint4* __restrict__ x, const float* __restrict__ scale,
          unsigned short* __restrict__ y, int n, int k) {
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
    for (int i = threadIdx.x; i < (k >> 3); i += WARPS * 32) xs[i] = x[i];
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
            float s = acc[r];
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
            if (lane == 0 && row + r < n) {
                unsigned int bits = __float_as_uint(s * scale[row + r]);
                bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest even (finite values)
                y[row + r] = (unsigned short)(bits >> 16);
            }
        }
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
    """``--decode-int8-kernel``: "triton" stays; "cuda" where ``available`` (else a one-line error); "auto" = cuda
    where available, else triton."""
    if mode == "triton":
        return "triton"
    if available(device, pdl):
        return "cuda"
    if mode == "cuda":
        raise ValueError(
            "--decode-int8-kernel cuda: the CUDA kernel does not compile here (it needs a CUDA GPU and torch's NVRTC "
            "library); use --decode-int8-kernel triton"
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


def kernel(rows: int, unroll: int, warps: int, pdl: bool):
    """The compiled kernel for one block shape (NVRTC, once per process)."""
    key = (rows, unroll, warps, pdl)
    if key not in _KERNELS:
        src = _SOURCE % dict(rows=rows, unroll=unroll, warps=warps, pdl=int(pdl))
        _KERNELS[key] = torch.cuda._compile_kernel(src, "gemv_int8")
    return _KERNELS[key]


def _launch(fn, grid: int, block: int, shared: int, args: list, pdl: bool) -> None:
    libcuda = torch.cuda._utils._get_gpu_runtime_library()
    keep = [ctypes.c_void_p(a.data_ptr()) if isinstance(a, torch.Tensor) else ctypes.c_int(a) for a in args]
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
    x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor, *, pdl: bool = False, config=None
) -> torch.Tensor:
    """``gemv.gemv(x, weight, scale=scale)`` (one bf16 row; see the module docstring) by the CUDA kernel."""
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
    rows, unroll, warps, per_sm = config or SHAPE_CONFIGS.get((n, k), DEFAULT_CONFIG)
    groups = -(-n // (rows * warps))
    if per_sm:
        if not _SM_COUNT:
            _SM_COUNT.append(torch.cuda.get_device_properties(weight.device).multi_processor_count)
        groups = min(groups, per_sm * _SM_COUNT[0])
    xv = x.reshape(k).contiguous()
    y = torch.empty((*x.shape[:-1], n), dtype=torch.bfloat16, device=x.device)
    _launch(kernel(rows, unroll, warps, pdl), groups, 32 * warps, 2 * k, [weight, xv, scale, y, n, k], pdl)
    return y
