"""The int8 batch-1 decode product on the tensor cores (``mma.sync`` m16n8k16, fp16 in, fp32 accumulate), NVRTC.

Why: ``gemv_cuda``'s kernel turns every weight byte into a float and multiplies it with an fp32 FMA, about 4
instructions per weight byte. On the H200 that is ~8 M warp instructions for fc2 (58.7 MB) against ~14 us of weight
stream, so issue time competes with the loads, and the int8 products read at 3.2-3.9 TB/s where bf16 reaches
4.3. Here two signed bytes become an exact half2 with one byte permute and one half2 subtraction, and a warp's
``mma.sync`` takes 256 weights per instruction: ~1.3 instructions per weight byte.

The trick that makes a tensor-core product out of a matrix-vector one: an m16n8k16 multiply sums over its 16 k
positions in any order, so the 16 logical k positions can stand for any 16 real columns as long as A (the weights)
and B (x) agree. Lane ``(g, t)`` (``g = lane / 4``, ``t = lane % 4``) loads 16 contiguous weight bytes of rows ``g``
and ``g + 8`` at column ``c0 + 16 t``; its word ``j`` (4 bytes) feeds the logical positions ``2t, 2t+1, 2t+8,
2t+9`` of the j-th multiply, and B's lane ``t`` holds x at the same real columns. Only B's column 0 (and the output
column 0) matters; the other seven columns compute copies and are dropped. The warps of a block split K and their
partial sums meet in shared memory in a fixed order.

x (bf16) is staged in shared memory as fp16 scaled by a power of two, ``2^(14 - E)`` with ``E`` the exponent of
``max |x|``: every bf16 value (8 significant bits) is then exact in fp16 unless it is 2^-31 of the largest or
smaller, and fc2's inputs (SwiGLU outputs, which can pass fp16's 65,504) cannot overflow. The products of exact
fp16 operands are exact; the sums are fp32 (the tensor cores' order), scaled back by ``2^(E - 14)``, then by the
row's scale, then rounded to bf16 once: the same arithmetic as ``gemv_cuda``'s in a different summation order.

``pdl``: the first weight loads are issued before ``griddepcontrol.wait`` and the next kernel may launch once x is
staged, as in ``gemv_cuda``. CUDA only (sm_80+ for ``mma.sync`` f16; sm_90+ for ``pdl``).
"""

from __future__ import annotations

import torch

from nemo_cosmos_ar.inference import gemv_cuda

# (16-row tiles per block, 64-column chunks in flight per warp, warps per block): bench/bench_gemv_mma.py's sweep.
DEFAULT_CONFIG = (1, 4, 8)
SHAPE_CONFIGS: dict[tuple[int, int], tuple[int, int, int]] = {}

_SOURCE = r"""
#define RT %(rt)d
#define U %(unroll)d
#define WARPS %(warps)d
#define PDL %(pdl)d

__device__ __forceinline__ uint4 load_stream(const uint4* p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%%0, %%1, %%2, %%3}, [%%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
}

// Bytes 0,1 (sel 0x4140) or 2,3 (sel 0x4342) of u = w ^ 0x80808080 (each byte b + 128) placed under fp16's 0x64
// (1024 + b + 128, exact), then 1152 subtracted: the two signed bytes as an exact half2.
__device__ __forceinline__ unsigned int i8x2(unsigned int u, unsigned int sel) {
    unsigned int h = __byte_perm(u, 0x64646464u, sel), r;
    asm("sub.rn.f16x2 %%0, %%1, %%2;" : "=r"(r) : "r"(h), "r"(0x64806480u));
    return r;
}

__device__ __forceinline__ void mma(float* c, unsigned int a0, unsigned int a1, unsigned int a2, unsigned int a3,
                                    unsigned int b0, unsigned int b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%%0, %%1, %%2, %%3}, {%%4, %%5, %%6, %%7}, "
                 "{%%8, %%9}, {%%0, %%1, %%2, %%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

__device__ __forceinline__ unsigned int f16x2(float lo, float hi) {
    unsigned int r;
    asm("cvt.rn.f16x2.f32 %%0, %%1, %%2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

extern "C" __global__ void __launch_bounds__(WARPS * 32)
gemv_int8_mma(const uint4* __restrict__ w, const uint4* __restrict__ x, const float* __restrict__ scale,
              unsigned short* __restrict__ y, int n, int k) {
    extern __shared__ uint4 xs[];  // x as fp16 (scaled), 8 values per uint4
    __shared__ float red[WARPS][16 * RT];
    __shared__ unsigned int wmax[WARPS];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int kv = k >> 4, chunks = k >> 6;
    const int c_begin = warp * chunks / WARPS, c_end = (warp + 1) * chunks / WARPS;
    const int row0 = blockIdx.x * 16 * RT;
    uint4 v[U][RT][2];
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
        for (int r = 0; r < RT; ++r)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int row = row0 + 16 * r + g + 8 * h, c = c_begin + u;
                v[u][r][h] = (row < n && c < c_end) ? load_stream(w + (long long)row * kv + 4 * c + t)
                                                    : make_uint4(0, 0, 0, 0);
            }
#if PDL
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
    // x's largest magnitude (bf16 bits without the sign order as the values do), then x scaled into fp16
    unsigned int m = 0;
    for (int i = threadIdx.x; i < (k >> 3); i += WARPS * 32) {
        const uint4 a = x[i];
        m = max(m, max(max(a.x & 0x7fffu, a.x >> 16 & 0x7fffu), max(a.y & 0x7fffu, a.y >> 16 & 0x7fffu)));
        m = max(m, max(max(a.z & 0x7fffu, a.z >> 16 & 0x7fffu), max(a.w & 0x7fffu, a.w >> 16 & 0x7fffu)));
    }
    m = __reduce_max_sync(0xffffffffu, m);
    if (lane == 0) wmax[warp] = m;
    __syncthreads();
    m = 0;
#pragma unroll
    for (int i = 0; i < WARPS; ++i) m = max(m, wmax[i]);
    int e = (int)(m >> 7) - 127;                 // max |x| in [2^e, 2^(e+1))
    e = m ? min(max(e, -100), 110) : 0;
    const float up = __int_as_float((127 + 14 - e) << 23), down = __int_as_float((127 - 14 + e) << 23);
    for (int i = threadIdx.x; i < (k >> 3); i += WARPS * 32) {
        const uint4 a = x[i];
        uint4 o;
        o.x = f16x2(__uint_as_float(a.x << 16) * up, __uint_as_float(a.x & 0xffff0000u) * up);
        o.y = f16x2(__uint_as_float(a.y << 16) * up, __uint_as_float(a.y & 0xffff0000u) * up);
        o.z = f16x2(__uint_as_float(a.z << 16) * up, __uint_as_float(a.z & 0xffff0000u) * up);
        o.w = f16x2(__uint_as_float(a.w << 16) * up, __uint_as_float(a.w & 0xffff0000u) * up);
        xs[i] = o;
    }
    __syncthreads();
#if PDL
    asm volatile("griddepcontrol.launch_dependents;");
#endif
    float acc[RT][4];
#pragma unroll
    for (int r = 0; r < RT; ++r) acc[r][0] = acc[r][1] = acc[r][2] = acc[r][3] = 0.0f;
    for (int c0 = c_begin; c0 < c_end; c0 += U) {
        if (c0 > c_begin) {
#pragma unroll
            for (int u = 0; u < U; ++u)
#pragma unroll
                for (int r = 0; r < RT; ++r)
#pragma unroll
                    for (int h = 0; h < 2; ++h) {
                        const int row = row0 + 16 * r + g + 8 * h, c = c0 + u;
                        v[u][r][h] = (row < n && c < c_end) ? load_stream(w + (long long)row * kv + 4 * c + t)
                                                            : make_uint4(0, 0, 0, 0);
                    }
        }
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const int c = c0 + u;
            if (c < c_end) {  // the same for the whole warp
                const uint4 xa = xs[8 * c + 2 * t], xb = xs[8 * c + 2 * t + 1];  // x at 64 c + 16 t + 0..15
#pragma unroll
                for (int r = 0; r < RT; ++r) {
                    const uint4 p = v[u][r][0], q = v[u][r][1];  // rows g and g + 8
                    const uint4 pu = make_uint4(p.x ^ 0x80808080u, p.y ^ 0x80808080u, p.z ^ 0x80808080u,
                                                p.w ^ 0x80808080u);
                    const uint4 qu = make_uint4(q.x ^ 0x80808080u, q.y ^ 0x80808080u, q.z ^ 0x80808080u,
                                                q.w ^ 0x80808080u);
                    mma(acc[r], i8x2(pu.x, 0x4140), i8x2(qu.x, 0x4140), i8x2(pu.x, 0x4342), i8x2(qu.x, 0x4342),
                        xa.x, xa.y);
                    mma(acc[r], i8x2(pu.y, 0x4140), i8x2(qu.y, 0x4140), i8x2(pu.y, 0x4342), i8x2(qu.y, 0x4342),
                        xa.z, xa.w);
                    mma(acc[r], i8x2(pu.z, 0x4140), i8x2(qu.z, 0x4140), i8x2(pu.z, 0x4342), i8x2(qu.z, 0x4342),
                        xb.x, xb.y);
                    mma(acc[r], i8x2(pu.w, 0x4140), i8x2(qu.w, 0x4140), i8x2(pu.w, 0x4342), i8x2(qu.w, 0x4342),
                        xb.z, xb.w);
                }
            }
        }
    }
    if (t == 0) {  // output column 0: rows g (acc[0]) and g + 8 (acc[2])
#pragma unroll
        for (int r = 0; r < RT; ++r) {
            red[warp][16 * r + g] = acc[r][0];
            red[warp][16 * r + g + 8] = acc[r][2];
        }
    }
    __syncthreads();
    if (threadIdx.x < 16 * RT) {
        const int row = row0 + threadIdx.x;
        float s = 0.0f;
#pragma unroll
        for (int i = 0; i < WARPS; ++i) s += red[i][threadIdx.x];
        if (row < n) {
            unsigned int bits = __float_as_uint(s * down * scale[row]);
            bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest even (finite values)
            y[row] = (unsigned short)(bits >> 16);
        }
    }
}
"""

_KERNELS: dict[tuple[int, int, int, bool], object] = {}


def source(rt: int, unroll: int, warps: int, pdl: bool) -> str:
    return _SOURCE % dict(rt=rt, unroll=unroll, warps=warps, pdl=int(pdl))


def kernel(rt: int, unroll: int, warps: int, pdl: bool):
    """The compiled kernel for one block shape (NVRTC, once per process)."""
    key = (rt, unroll, warps, pdl)
    if key not in _KERNELS:
        _KERNELS[key] = torch.cuda._compile_kernel(source(*key), "gemv_int8_mma")
    return _KERNELS[key]


def fits(x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor | None) -> bool:
    """Whether ``gemv_int8_mma`` takes these operands: ``gemv_cuda.fits`` and K a multiple of 64."""
    return gemv_cuda.fits(x, weight, scale) and weight.shape[1] % 64 == 0


def gemv_int8_mma(
    x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor, *, pdl: bool = False, config=None
) -> torch.Tensor:
    """``gemv_cuda.gemv_int8(x, weight, scale)`` on the tensor cores (see the module docstring)."""
    n, k = weight.shape
    if weight.dtype != torch.int8 or x.dtype != torch.bfloat16 or scale.dtype != torch.float32:
        raise ValueError(
            f"gemv_int8_mma: needs int8 weight, bf16 x, fp32 scale; got {weight.dtype}, {x.dtype}, {scale.dtype}"
        )
    if k % 64 or weight.stride() != (k, 1) or weight.data_ptr() % 16 or x.numel() != k or scale.numel() != n:
        raise ValueError(
            f"gemv_int8_mma: weight {tuple(weight.shape)} must be contiguous with K % 64 == 0 and 16-byte aligned, "
            f"x one row of {k}, scale {n} values; got x {tuple(x.shape)}, scale {tuple(scale.shape)}"
        )
    rt, unroll, warps = config or SHAPE_CONFIGS.get((n, k), DEFAULT_CONFIG)
    xv = x.reshape(k).contiguous()
    y = torch.empty((*x.shape[:-1], n), dtype=torch.bfloat16, device=x.device)
    grid = -(-n // (16 * rt))
    gemv_cuda._launch(kernel(rt, unroll, warps, pdl), grid, 32 * warps, 2 * k, [weight, xv, scale, y, n, k], pdl)
    return y
