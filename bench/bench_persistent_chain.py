"""How much of the int8 decode products' kernel-boundary cost a persistent kernel recovers (issue 13, a prototype).

The sixteenth session found each int8 product ~2-4 us slower than a 4.3 TB/s weight stream in a PDL chain, whatever
its instruction count (BENCHMARKS.md). This measures the direction that would remove kernel boundaries (a
"megakernel"): one persistent kernel runs a chain of 16 layers x 4 products (the 4B's QKV, attention out, fc1,
fc2 shapes, each product's input the first K outputs of the one before), with a grid-wide barrier between products
instead of a kernel boundary. Before each barrier, every warp already issues the loads of its first row of the next
product. The arithmetic per row is ``gemv_cuda``'s (one row per warp, each lane summing its 16-byte vectors in
column order, a warp reduction, one bf16 rounding), so the outputs must be bit-equal to ``gemv_cuda``'s chain.

Printed: us per layer for the ``gemv_cuda`` chain with PDL (generate's kernels and blocks) and for the persistent
kernel (with and without the loads issued before the barrier), and whether every product's output is bit-equal.
The norms, attention and SwiGLU between the products are left out of both, so only the products' boundaries differ.

    python bench/bench_persistent_chain.py    # H200 (CUDA only; the prototype is not used by generate)
    PCHAIN_WARPS=8 PCHAIN_BLOCKS=3 python bench/bench_persistent_chain.py

Measured on the H200 (sixteenth session, BENCHMARKS.md issue 13): the gemv_cuda PDL chain 64.4-64.5 us a layer; the
persistent kernel, bit-equal, 69.7-73.3 us with the loads before the barrier and 75.1-76.1 us without, over four grids
(264 x 8, 396 x 8, 528 x 4, 792 x 4 warps). Grid-wide barriers cost more than PDL's kernel boundaries.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_gemv import graph_time  # noqa: E402
from nemo_cosmos_ar.inference import gemv_cuda as GC  # noqa: E402
from nemo_cosmos_ar.inference import quant  # noqa: E402

LAYER = [(6144, 4096), (4096, 4096), (28672, 4096), (4096, 14336)]  # QKV, attention out, fc1, fc2
LAYERS = 16
WARPS = int(os.environ.get("PCHAIN_WARPS", 8))  # warps per block
BLOCKS_PER_SM = int(os.environ.get("PCHAIN_BLOCKS", 2))  # the persistent grid: blocks per SM, all co-resident

SOURCE = (
    r"""
#define UNROLL 8
#define WARPS %(warps)d
#define EARLY %(early)d
"""
    + GC.HELPERS  # gemv_cuda's load_stream, bf16_lo/hi, bf16_bits and dot4
    + r"""__device__ __forceinline__ void load_row(int4* v, const int4* w, int row, int kv, int c0, int lane) {
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
        const int c = c0 + lane + 32 * u;
        v[u] = c < kv ? load_stream(w + (long long)row * kv + c) : make_int4(0, 0, 0, 0);
    }
}
__device__ __forceinline__ void grid_sync(unsigned int* bar, unsigned int target) {
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        atomicAdd(bar, 1u);
        const long long t0 = clock64();
        while (*(volatile unsigned int*)bar < target) {
            if (clock64() - t0 > 4000000000LL) __trap();  // ~2 s: blocks not co-resident, fail instead of hanging
        }
        __threadfence();
    }
    __syncthreads();
}

extern "C" __global__ void __launch_bounds__(WARPS * 32, 2)
chain(const long long* wp, const long long* sp, const long long* xp, const long long* yp, const int* np,
      const int* kp, int count, unsigned int* bar) {
    extern __shared__ uint4 xs[];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int gw = blockIdx.x * WARPS + warp, nw = gridDim.x * WARPS;
    int4 v[UNROLL];
    if (gw < np[0]) load_row(v, (const int4*)wp[0], gw, kp[0] >> 4, 0, lane);
    for (int p = 0; p < count; ++p) {
        const int n = np[p], kv = kp[p] >> 4;
        const int4* w = (const int4*)wp[p];
        const float* scale = (const float*)sp[p];
        unsigned short* y = (unsigned short*)yp[p];
        if (p > 0) {
            grid_sync(bar, p * gridDim.x);
#if !EARLY
            if (gw < n) load_row(v, w, gw, kv, 0, lane);
#endif
        }
        const uint4* x = (const uint4*)xp[p];
        for (int i = threadIdx.x; i < (kv << 1); i += WARPS * 32) xs[i] = __ldcg(x + i);
        __syncthreads();
        for (int row = gw; row < n; row += nw) {
            float acc = 0.0f;
            for (int c0 = 0; c0 < kv; c0 += 32 * UNROLL) {
                if (c0 > 0) load_row(v, w, row, kv, c0, lane);
#pragma unroll
                for (int u = 0; u < UNROLL; ++u) {
                    const int c = c0 + lane + 32 * u;
                    if (c < kv) {
                        const uint4 a = xs[2 * c], b = xs[2 * c + 1];
                        acc = dot4((unsigned int)v[u].x, bf16_lo(a.x), bf16_hi(a.x), bf16_lo(a.y), bf16_hi(a.y), acc);
                        acc = dot4((unsigned int)v[u].y, bf16_lo(a.z), bf16_hi(a.z), bf16_lo(a.w), bf16_hi(a.w), acc);
                        acc = dot4((unsigned int)v[u].z, bf16_lo(b.x), bf16_hi(b.x), bf16_lo(b.y), bf16_hi(b.y), acc);
                        acc = dot4((unsigned int)v[u].w, bf16_lo(b.z), bf16_hi(b.z), bf16_lo(b.w), bf16_hi(b.w), acc);
                    }
                }
            }
            if (row + nw < n) {
                load_row(v, w, row + nw, kv, 0, lane);
#if EARLY
            } else if (p + 1 < count && gw < np[p + 1]) {  // the next product's first row, before the barrier
                load_row(v, (const int4*)wp[p + 1], gw, kp[p + 1] >> 4, 0, lane);
#endif
            }
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
            if (lane == 0) y[row] = bf16_bits(acc * scale[row]);
        }
#if EARLY
        if (gw >= n && p + 1 < count && gw < np[p + 1]) load_row(v, (const int4*)wp[p + 1], gw, kp[p + 1] >> 4, 0, lane);
#endif
        __syncthreads();  // xs is restaged after the barrier
    }
}
"""
)


def main() -> None:
    dev = torch.device("cuda")
    sms = torch.cuda.get_device_properties(dev).multi_processor_count
    shapes = LAYER * LAYERS
    weights = []
    for n, k in shapes:
        w = torch.randn(n, k, device=dev, dtype=torch.bfloat16) * k**-0.5
        weights.append(quant.quantize_rows(w))
        del w
    x0 = torch.randn(4096, device=dev, dtype=torch.bfloat16)

    def gc_chain(outs: list | None = None):
        x = x0
        for (_n, k), (w, s) in zip(shapes, weights):
            y = GC.gemv_int8(x[:k], w, s, pdl=True)
            if outs is not None:
                outs.append(y)
            x = y

    ref: list = []
    gc_chain(ref)
    ys = [torch.empty(n, device=dev, dtype=torch.bfloat16) for n, _ in shapes]
    xs = [x0] + [ys[i] for i in range(len(shapes) - 1)]
    ptr = lambda ts: torch.tensor([t.data_ptr() for t in ts], device=dev, dtype=torch.int64)  # noqa: E731
    wp, sp, xp, yp = ptr([w for w, _ in weights]), ptr([s for _, s in weights]), ptr(xs), ptr(ys)
    np_ = torch.tensor([n for n, _ in shapes], device=dev, dtype=torch.int32)
    kp = torch.tensor([k for _, k in shapes], device=dev, dtype=torch.int32)
    bar = torch.zeros(1, device=dev, dtype=torch.int32)
    grid = BLOCKS_PER_SM * sms
    smem = 2 * max(k for _, k in shapes)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}; {LAYERS} layers x 4 int8 products, "
          f"persistent grid {grid} x {WARPS} warps\n")  # fmt: skip
    print("| chain | us per layer | every product's output bit-equal to gemv_cuda's |\n|---|---:|---|")
    print(f"| gemv_cuda, PDL (generate's) | {graph_time(lambda i: gc_chain(), 1) * 1e6 / LAYERS:.1f} | - |", flush=True)
    for early in (1, 0):
        fn = torch.cuda._compile_kernel(SOURCE % dict(warps=WARPS, early=early), "chain")

        def run(i, fn=fn):
            bar.zero_()
            GC._launch(fn, grid, 32 * WARPS, smem, [wp, sp, xp, yp, np_, kp, len(shapes), bar], False)

        for y in ys:
            y.fill_(float("nan"))
        run(0)
        torch.cuda.synchronize()
        equal = all(torch.equal(a, b) for a, b in zip(ys, ref))
        t = graph_time(run, 1) * 1e6 / LAYERS
        label = "persistent, next row's loads before the barrier" if early else "persistent, loads after the barrier"
        print(f"| {label} | {t:.1f} | {equal} |", flush=True)


if __name__ == "__main__":
    main()
