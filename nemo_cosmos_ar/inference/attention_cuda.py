"""The batch-1 decode attention as hand-written CUDA kernels (NVRTC, as ``gemv_cuda``): ``--decode-attention cuda``.

Why: the Triton split-K kernel (``decode_kernel.py``) reads the cache at ~3.45 TB/s at the margin but carries ~4.4 us
a layer of fixed cost (11.7 / 15.1 / 19.6 us at 6,144 / 9,216 / 12,800 filled slots, BENCHMARKS.md issue 13), and its
chunks are cut from the attended length, not from the filled one, so early in a video most of its programs find
nothing to read. None of its launch choices moved that. Here:

* the cache is cut by **the filled length**, read on the device (``pos``): every block of the fixed grid (one graph
  serves every position) gets ``(pos + 1) / splits`` slots, whatever the position;
* a block is ``WARPS`` warps, and a warp reads two slots per 16-byte load per lane (a half-warp per 256-byte K or V
  row: 8 dims a lane). Every lane issues ``UNROLL`` K and ``UNROLL`` V loads before it uses any (``ld.global.nc``),
  so the bytes in flight per SM are set here, not by a compiler's pipelining;
* the scores are summed in fp32 on the CUDA cores (a head's 8-dim partial dots, then a butterfly over the 16 lanes);
  each half-warp keeps its own online softmax (base 2), and the block merges its half-warps in shared memory, so a
  block writes one partial (max, sum, 128 unnormalised outputs) per head;
* a second kernel (one block per head) rescales the partials to their common max and divides.

``write``: this step's K and V (``k_new``/``v_new``) are stored into slot ``pos`` by the block that holds it, and used
for that slot from registers (no read of the slot being written). ``pdl``: both kernels wait for the kernel before
(``griddepcontrol.wait``) before reading anything, then let the next one launch.

Numbers: q is scaled by ``scale * log2(e)`` in fp32, the probabilities stay fp32 through the product with V, and the
output is rounded to bf16 once. ``reference`` is the same attention in fp32 torch ops; ``emulate`` follows the
kernels' partition and merges in torch (the CPU tests check the partition's edge cases with it: splits that find no
slot, the slot being written). CUDA only: head_dim 128, bf16.
"""

from __future__ import annotations

import ctypes
import math

import torch

from nemo_cosmos_ar.inference import gemv_cuda

HEAD_DIM = 128  # 16 lanes x 8 dims: the kernel's layout
# (WARPS per block, UNROLL slots per half-warp in a tile, WAVES: blocks per SM of the grid, RS: the scores
# reduce-scattered)
DEFAULT_CONFIG = (4, 4, 3.0, 0)

_SOURCE = (
    r"""
#define WARPS %(warps)d
#define UNROLL %(unroll)d
#define HPG %(hpg)d
#define PDL %(pdl)d
#define WRITE %(write)d
#define RS %(rs)d
#define HD 128
#define NHW (2 * WARPS)
#define NEG_INF __int_as_float(0xff800000)
"""
    + gemv_cuda.HELPERS
    + r"""
__device__ __forceinline__ void unpack8(const uint4 a, float* f) {
    f[0] = bf16_lo(a.x); f[1] = bf16_hi(a.x); f[2] = bf16_lo(a.y); f[3] = bf16_hi(a.y);
    f[4] = bf16_lo(a.z); f[5] = bf16_hi(a.z); f[6] = bf16_lo(a.w); f[7] = bf16_hi(a.w);
}
__device__ __forceinline__ uint4 ld16(const unsigned short* p) {
    const int4 v = load_stream(reinterpret_cast<const int4*>(p));
    return make_uint4((unsigned int)v.x, (unsigned int)v.y, (unsigned int)v.z, (unsigned int)v.w);
}

// A half-warp's UNROLL slots first, first + NHW, ...: its 16 lanes' 8 dims of each K and V row (zeros past end).
// With WRITE the slot p is not read (this kernel writes it): its values come from kn / vn.
__device__ __forceinline__ void load_tile(uint4 (&kk)[UNROLL], uint4 (&vv)[UNROLL], const unsigned short* kbase,
                                          const unsigned short* vbase, long long k_sn, long long v_sn,
                                          long long first, long long end, long long p, uint4 kn, uint4 vn) {
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
        const long long s = first + (long long)u * NHW;
#if WRITE
        const bool load = s < end && s != p;
#else
        const bool load = s < end;
#endif
        kk[u] = load ? ld16(kbase + s * k_sn) : make_uint4(0u, 0u, 0u, 0u);
        vv[u] = load ? ld16(vbase + s * v_sn) : make_uint4(0u, 0u, 0u, 0u);
#if WRITE
        if (s == p) {
            kk[u] = kn;
            vv[u] = vn;
        }
#endif
    }
}

// The online softmax (base 2) of one half-warp over one loaded tile: scores summed over the 16 lanes (xor offsets
// below 16 stay inside the half-warp), masked past end, then the running max, sum and unnormalised output.
__device__ __forceinline__ void attend_tile(const uint4 (&kk)[UNROLL], const uint4 (&vv)[UNROLL],
                                            const float (&qf)[HPG][8], float (&m)[HPG], float (&l)[HPG],
                                            float (&acc)[HPG][8], long long first, long long end) {
    float sc[UNROLL][HPG];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
        float kf[8];
        unpack8(kk[u], kf);
#pragma unroll
        for (int h = 0; h < HPG; ++h) {
            float s = 0.0f;
#pragma unroll
            for (int j = 0; j < 8; ++j) s = fmaf(qf[h][j], kf[j], s);
            sc[u][h] = s;
        }
    }
#pragma unroll
    for (int o = 8; o > 0; o >>= 1)
#pragma unroll
        for (int u = 0; u < UNROLL; ++u)
#pragma unroll
            for (int h = 0; h < HPG; ++h) sc[u][h] += __shfl_xor_sync(0xffffffffu, sc[u][h], o);
    float pw[UNROLL][HPG];
#pragma unroll
    for (int h = 0; h < HPG; ++h) {
        float mt = NEG_INF;
#pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
            if (first + (long long)u * NHW >= end) sc[u][h] = NEG_INF;
            mt = fmaxf(mt, sc[u][h]);
        }
        const float mn = fmaxf(m[h], mt);
        const float ms = mn == NEG_INF ? 0.0f : mn;  // nothing seen yet: every weight below is exp2(-inf) = 0
        const float alpha = exp2f(m[h] - ms);
        float lsum = l[h] * alpha;
#pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
            pw[u][h] = exp2f(sc[u][h] - ms);
            lsum += pw[u][h];
        }
        l[h] = lsum;
        m[h] = mn;
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[h][j] *= alpha;
    }
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
        float vf[8];
        unpack8(vv[u], vf);
#pragma unroll
        for (int h = 0; h < HPG; ++h)
#pragma unroll
            for (int j = 0; j < 8; ++j) acc[h][j] = fmaf(pw[u][h], vf[j], acc[h][j]);
    }
}

#if RS
#if UNROLL * HPG != 16
#error "RS needs UNROLL * HPG == 16: one (slot, head) score per lane of a half-warp"
#endif
// The same tile with the 16 lanes' partial dots reduce-scattered instead of all-reduced: 15 shuffles leave lane d8
// with the whole score of (slot u, head h) = (d8 / HPG, d8 %% HPG); one exp2 per lane; the probabilities and the
// rescale factors reach the lanes that need them by 20 shuffles. m_own: the running max of the lane's head; l_own:
// the lane's share of its head's running sum (the 4 lanes of a head are added at the end).
// One halving: a lane with bit O keeps the upper O of its first 2 O values and gives the lower O to its partner
// (lane ^ O), which keeps those; each adds what it receives. (A template, so every index is a constant.)
template <int O>
__device__ __forceinline__ void rs_step(float (&v)[16], int lane) {
    const bool up = lane & O;
#pragma unroll
    for (int j = 0; j < O; ++j) {
        const float keep = up ? v[O + j] : v[j], give = up ? v[j] : v[O + j];
        v[j] = keep + __shfl_xor_sync(0xffffffffu, give, O);
    }
}

__device__ __forceinline__ void attend_tile_rs(const uint4 (&kk)[UNROLL], const uint4 (&vv)[UNROLL],
                                               const float (&qf)[HPG][8], float& m_own, float& l_own,
                                               float (&acc)[HPG][8], long long first, long long end, int lane) {
    float v[16];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
        float kf[8];
        unpack8(kk[u], kf);
#pragma unroll
        for (int h = 0; h < HPG; ++h) {
            float s = 0.0f;
#pragma unroll
            for (int j = 0; j < 8; ++j) s = fmaf(qf[h][j], kf[j], s);
            v[u * HPG + h] = s;
        }
    }
    rs_step<8>(v, lane);
    rs_step<4>(v, lane);
    rs_step<2>(v, lane);
    rs_step<1>(v, lane);
    const int d8 = lane & 15, base = lane & 16;
    float sc = v[0];
    if (first + (long long)(d8 / HPG) * NHW >= end) sc = NEG_INF;
    float mt = fmaxf(sc, __shfl_xor_sync(0xffffffffu, sc, 4));  // the head's max over the tile's 4 slots
    mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 8));
    const float mn = fmaxf(m_own, mt);
    const float ms = mn == NEG_INF ? 0.0f : mn;
    const float alpha = exp2f(m_own - ms);
    const float pw = exp2f(sc - ms);
    l_own = l_own * alpha + pw;
    m_own = mn;
#pragma unroll
    for (int h = 0; h < HPG; ++h) {
        const float a = __shfl_sync(0xffffffffu, alpha, base | h);
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[h][j] *= a;
    }
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
        float vf[8];
        unpack8(vv[u], vf);
#pragma unroll
        for (int h = 0; h < HPG; ++h) {
            const float pr = __shfl_sync(0xffffffffu, pw, base | (u * HPG + h));
#pragma unroll
            for (int j = 0; j < 8; ++j) acc[h][j] = fmaf(pr, vf[j], acc[h][j]);
        }
    }
}
#endif

// grid (splits, B * groups). Block (split, b * groups + g) attends group g's HPG heads of sequence b to the filled
// slots [start, end), an even cut of [0, pos] by the split count, and writes one partial per head.
extern "C" __global__ void __launch_bounds__(WARPS * 32)
attn_split(const unsigned short* __restrict__ q, unsigned short* kc, unsigned short* vc,
           const long long* __restrict__ pos_ptr, float* __restrict__ ws_acc, float2* __restrict__ ws_ml,
           const unsigned short* __restrict__ k_new, const unsigned short* __restrict__ v_new,
           long long k_sb, long long k_sg, long long v_sb, long long v_sg, long long k_sn, long long v_sn,
           long long kn_sb, long long kn_sg, long long vn_sb, long long vn_sg,
           int groups, int length, float qk_scale) {
    __shared__ float sm_acc[NHW][HPG][HD];
    __shared__ float sm_m[NHW][HPG], sm_l[NHW][HPG];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int sub = lane >> 4, d8 = lane & 15, hw = warp * 2 + sub;
    const int split = blockIdx.x, splits = gridDim.x;
    const int b = blockIdx.y / groups, g = blockIdx.y - b * groups;
    const int heads = groups * HPG;
#if PDL
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;");
#endif
    const long long p = *pos_ptr;
    const long long total = p + 1 < (long long)length ? p + 1 : (long long)length;
    const long long start = total * split / splits, end = total * (split + 1) / splits;
    unsigned short* kbase = kc + b * k_sb + g * k_sg + d8 * 8;
    unsigned short* vbase = vc + b * v_sb + g * v_sg + d8 * 8;
    float qf[HPG][8];
#pragma unroll
    for (int h = 0; h < HPG; ++h) {  // the scores come out as base-2 logits
        unpack8(*reinterpret_cast<const uint4*>(q + ((long long)b * heads + g * HPG + h) * HD + d8 * 8), qf[h]);
#pragma unroll
        for (int j = 0; j < 8; ++j) qf[h][j] *= qk_scale;
    }
#if WRITE
    const uint4 kn = *reinterpret_cast<const uint4*>(k_new + b * kn_sb + g * kn_sg + d8 * 8);
    const uint4 vn = *reinterpret_cast<const uint4*>(v_new + b * vn_sb + g * vn_sg + d8 * 8);
    if (p >= start && p < end && hw == 0) {  // the block holding slot p stores this step's K and V there
        *reinterpret_cast<uint4*>(kbase + p * k_sn) = kn;
        *reinterpret_cast<uint4*>(vbase + p * v_sn) = vn;
    }
#else
    const uint4 kn = make_uint4(0u, 0u, 0u, 0u), vn = kn;
#endif
    float m[HPG], l[HPG], acc[HPG][8];
#pragma unroll
    for (int h = 0; h < HPG; ++h) {
        m[h] = NEG_INF;
        l[h] = 0.0f;
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[h][j] = 0.0f;
    }
    // Two register buffers: a tile's loads are issued before the tile before it is computed, so each warp keeps
    // loads in flight while it computes. The trips are the same in both half-warps of a warp (the shuffles need every
    // lane): a warp's tile is slots s0 + sub + u * NHW; the ones at or past end are masked.
#if RS
    float m_own = NEG_INF, l_own = 0.0f;
#define ATTEND(K, V) attend_tile_rs(K, V, qf, m_own, l_own, acc, s0 + sub, end, lane)
#else
#define ATTEND(K, V) attend_tile(K, V, qf, m, l, acc, s0 + sub, end)
#endif
    const long long stride = NHW * UNROLL;
    uint4 ka[UNROLL], va[UNROLL], kb[UNROLL], vb[UNROLL];
    long long s0 = start + 2 * warp;
    if (s0 < end) load_tile(ka, va, kbase, vbase, k_sn, v_sn, s0 + sub, end, p, kn, vn);
    while (s0 < end) {
        if (s0 + stride < end) load_tile(kb, vb, kbase, vbase, k_sn, v_sn, s0 + stride + sub, end, p, kn, vn);
        ATTEND(ka, va);
        s0 += stride;
        if (s0 >= end) break;
        if (s0 + stride < end) load_tile(ka, va, kbase, vbase, k_sn, v_sn, s0 + stride + sub, end, p, kn, vn);
        ATTEND(kb, vb);
        s0 += stride;
    }
    // the block's half-warps merged in shared memory: one partial per head
#if RS
    l_own += __shfl_xor_sync(0xffffffffu, l_own, 4);
    l_own += __shfl_xor_sync(0xffffffffu, l_own, 8);
    if (d8 < HPG) {  // lane d8 holds head d8's max and, now, its sum
        sm_m[hw][d8] = m_own;
        sm_l[hw][d8] = l_own;
    }
#endif
#pragma unroll
    for (int h = 0; h < HPG; ++h) {
#pragma unroll
        for (int j = 0; j < 8; ++j) sm_acc[hw][h][d8 * 8 + j] = acc[h][j];
#if !RS
        if (d8 == 0) {
            sm_m[hw][h] = m[h];
            sm_l[hw][h] = l[h];
        }
#endif
    }
    __syncthreads();
    for (int i = threadIdx.x; i < HPG * HD; i += WARPS * 32) {
        const int h = i / HD, d = i - h * HD;
        float mx = NEG_INF;
#pragma unroll
        for (int w = 0; w < NHW; ++w) mx = fmaxf(mx, sm_m[w][h]);
        const float ms = mx == NEG_INF ? 0.0f : mx;  // an empty block: a partial of weight 0
        float a = 0.0f, s = 0.0f;
#pragma unroll
        for (int w = 0; w < NHW; ++w) {
            const float wt = exp2f(sm_m[w][h] - ms);
            a = fmaf(wt, sm_acc[w][h][d], a);
            s = fmaf(wt, sm_l[w][h], s);
        }
        const long long row = ((long long)b * heads + g * HPG + h) * splits + split;
        ws_acc[row * HD + d] = a;
        if (d == 0) ws_ml[row] = make_float2(mx, s);
    }
}

// grid (B * heads), HD threads: the splits' partials of one head rescaled to their common max, summed, divided.
extern "C" __global__ void __launch_bounds__(HD)
attn_combine(const float* __restrict__ ws_acc, const float2* __restrict__ ws_ml, unsigned short* __restrict__ out,
             int splits) {
#if PDL
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;");
#endif
    const long long bh = blockIdx.x;
    const int d = threadIdx.x;
    float mx = NEG_INF;
    for (int s = 0; s < splits; ++s) mx = fmaxf(mx, ws_ml[bh * splits + s].x);
    float a = 0.0f, sum = 0.0f;  // the last split always holds slot pos, so mx is finite
    for (int s = 0; s < splits; ++s) {
        const float2 ml = ws_ml[bh * splits + s];
        const float wt = exp2f(ml.x - mx);
        a = fmaf(wt, ws_acc[(bh * splits + s) * HD + d], a);
        sum = fmaf(wt, ml.y, sum);
    }
    out[bh * HD + d] = bf16_bits(a / sum);
}
"""
)

_KERNELS: dict[tuple, tuple] = {}


def source(warps: int, unroll: int, hpg: int, pdl: bool, write: bool, rs: bool = False) -> str:
    """The two kernels' CUDA source for one block shape, heads per KV group and option set (``rs``: the scores
    reduce-scattered over a half-warp, ``UNROLL * HPG == 16`` only)."""
    return _SOURCE % dict(warps=warps, unroll=unroll, hpg=hpg, pdl=int(pdl), write=int(write), rs=int(rs))


def kernels(warps: int, unroll: int, hpg: int, pdl: bool, write: bool, rs: bool = False) -> tuple:
    """``(split, combine)`` compiled once per process and key (NVRTC)."""
    key = (warps, unroll, hpg, pdl, write, rs)
    if key not in _KERNELS:
        src = source(*key)
        _KERNELS[key] = (torch.cuda._compile_kernel(src, "attn_split"), torch.cuda._compile_kernel(src, "attn_combine"))
    return _KERNELS[key]


def available(device: torch.device, pdl: bool, hpg: int = 4) -> bool:
    """Whether the kernels compile and load here (a CUDA device with NVRTC; ``pdl``: compute capability 9.0+)."""
    if device.type != "cuda" or (pdl and torch.cuda.get_device_capability(device)[0] < 9):
        return False
    try:
        with torch.cuda.device(device):
            kernels(*DEFAULT_CONFIG[:2], hpg, pdl, True, bool(DEFAULT_CONFIG[3]))
    except Exception:  # noqa: BLE001 - no NVRTC library, an old driver: the Triton kernel serves instead
        return False
    return True


def num_splits(batch: int, groups: int, sms: int, waves: float) -> int:
    """Blocks per (sequence, KV group): about ``waves`` blocks per SM over the whole grid, at least one."""
    return max(1, round(waves * sms / (batch * groups)))


def _check(q, k, v, pos, k_new, v_new) -> tuple[int, int, int]:
    _, b, heads, hd = q.shape
    kb, groups, length, khd = k.shape
    if kb != b or khd != hd or tuple(v.shape) != tuple(k.shape) or heads % groups:
        raise ValueError(f"attention_cuda: q {tuple(q.shape)} does not fit k {tuple(k.shape)} / v {tuple(v.shape)}")
    if hd != HEAD_DIM or q.dtype != torch.bfloat16 or k.dtype != q.dtype or v.dtype != q.dtype:
        raise ValueError(f"attention_cuda: needs bf16 and head_dim {HEAD_DIM}; got {q.dtype}, head_dim {hd}")
    for name, t in (("k", k), ("v", v)):
        if t.stride(-1) != 1 or any(s % 8 for s in t.stride()[:-1]) or t.data_ptr() % 16:
            raise ValueError(f"attention_cuda: {name}'s rows must be contiguous and 16-byte aligned")
    if (k_new is None) != (v_new is None):
        raise ValueError("attention_cuda: pass k_new and v_new together")
    for name, t in (("k_new", k_new), ("v_new", v_new)):
        if t is None:
            continue
        if tuple(t.shape) != (b, groups, hd) or t.dtype != q.dtype:
            raise ValueError(f"attention_cuda: {name} must be {(b, groups, hd)} {q.dtype}, got {tuple(t.shape)}")
        if t.stride(-1) != 1 or any(s % 8 for s in t.stride()[:-1]) or t.data_ptr() % 16:
            raise ValueError(f"attention_cuda: {name}'s rows must be contiguous and 16-byte aligned")
    if pos.device != q.device or pos.numel() != 1:
        raise ValueError("attention_cuda: pos must be one integer on q's device")
    return b, heads, groups


def decode_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    pos: torch.Tensor,
    scale: float | None = None,
    *,
    k_new: torch.Tensor | None = None,
    v_new: torch.Tensor | None = None,
    pdl: bool = False,
    config: tuple | None = None,
    splits: int | None = None,
) -> torch.Tensor:
    """``decode_kernel.decode_attention``'s contract on the CUDA kernels: q ``[1, B, heads, 128]`` bf16 attends to
    slots ``0..pos`` of k, v ``[B, groups, L, 128]`` (slices of the static cache; ``pos < L``); returns
    ``[1, B, heads * 128]`` bf16. ``k_new``/``v_new`` ``[B, groups, 128]``: written into slot ``pos`` first.
    ``config`` = (warps, unroll, waves[, rs]); ``splits`` forces the blocks per KV group (tests)."""
    b, heads, groups = _check(q, k, v, pos, k_new, v_new)
    if not q.is_cuda:
        raise ValueError("attention_cuda: CUDA tensors only (emulate() is the CPU twin)")
    warps, unroll, waves, *rest = config or DEFAULT_CONFIG
    rs = bool(rest and rest[0])
    hpg = heads // groups
    if splits is None:
        if not gemv_cuda._SM_COUNT:
            gemv_cuda._SM_COUNT.append(torch.cuda.get_device_properties(q.device).multi_processor_count)
        splits = num_splits(b, groups, gemv_cuda._SM_COUNT[0], waves)
    q = q.contiguous()
    pos = pos.reshape(1) if pos.dtype == torch.int64 else pos.reshape(1).to(torch.int64)
    write = k_new is not None
    kn, vn = (k_new, v_new) if write else (k[:, :, 0], v[:, :, 0])  # unread pointers when not writing
    ws_acc = torch.empty((b * heads, splits, HEAD_DIM), dtype=torch.float32, device=q.device)
    ws_ml = torch.empty((b * heads, splits, 2), dtype=torch.float32, device=q.device)
    out = torch.empty((1, b, heads * HEAD_DIM), dtype=q.dtype, device=q.device)
    split_fn, combine_fn = kernels(warps, unroll, hpg, pdl, write, rs)
    ll = ctypes.c_longlong
    args = [q, k, v, pos, ws_acc, ws_ml, kn, vn]
    args += [ll(k.stride(0)), ll(k.stride(1)), ll(v.stride(0)), ll(v.stride(1)), ll(k.stride(2)), ll(v.stride(2))]
    args += [ll(kn.stride(0)), ll(kn.stride(1)), ll(vn.stride(0)), ll(vn.stride(1))]
    args += [groups, k.shape[2], (HEAD_DIM**-0.5 if scale is None else scale) * math.log2(math.e)]
    gemv_cuda._launch(split_fn, (splits, b * groups), 32 * warps, 0, args, pdl)
    gemv_cuda._launch(combine_fn, b * heads, HEAD_DIM, 0, [ws_acc, ws_ml, out, splits], pdl)
    return out


def emulate(q, k, v, pos, scale=None, *, k_new=None, v_new=None, splits: int = 4, warps: int = 2, unroll: int = 2):
    """The kernels' partition and merges in fp32 torch ops (any device; reads ``pos`` on the host): the filled
    slots cut evenly into ``splits`` per KV group, each block's half-warps taking slots ``s0 + sub + u * 2 * warps``
    in tiles with an online softmax each, the half-warps merged per block, the blocks merged per head. With
    ``k_new``/``v_new`` they are written into slot ``pos`` of k/v first (as the kernel does). Returns
    ``[1, B, heads * hd]`` fp32."""
    _, b, heads, hd = q.shape
    groups, length = k.shape[1], k.shape[2]
    p = int(pos.reshape(-1)[0])
    if k_new is not None:
        k[:, :, p], v[:, :, p] = k_new, v_new
    hpg, nhw = heads // groups, 2 * warps
    qs = q[0].float().reshape(b, groups, hpg, hd) * ((hd**-0.5 if scale is None else scale) * math.log2(math.e))
    total = min(p + 1, length)
    out = torch.zeros(b, groups, hpg, hd, dtype=torch.float32, device=q.device)
    for bi in range(b):
        for g in range(groups):
            parts = []
            for split in range(splits):
                start, end = total * split // splits, total * (split + 1) // splits
                halves = []
                for hw in range(nhw):
                    warp, sub = divmod(hw, 2)
                    m = torch.full((hpg,), -math.inf, device=q.device)
                    l_s = torch.zeros(hpg, device=q.device)
                    acc = torch.zeros(hpg, hd, device=q.device)
                    for s0 in range(start + 2 * warp, end, nhw * unroll):
                        slots = [s0 + sub + u * nhw for u in range(unroll)]
                        slots = [s for s in slots if s < end]
                        if not slots:
                            continue
                        sc = qs[bi, g] @ k[bi, g, slots].float().t()  # [hpg, n] base-2 logits
                        mn = torch.maximum(m, sc.max(1).values)
                        alpha = torch.exp2(m - mn)
                        pw = torch.exp2(sc - mn[:, None])
                        l_s = l_s * alpha + pw.sum(1)
                        acc = acc * alpha[:, None] + pw @ v[bi, g, slots].float()
                        m = mn
                    halves.append((m, l_s, acc))
                parts.append(_merge(halves))
            m, l_s, acc = _merge(parts)
            out[bi, g] = acc / l_s[:, None]
    return out.reshape(1, b, heads * hd)


def _merge(parts):
    """Partials ``(max, sum, acc)`` rescaled to their common max and summed; all-empty ones (max -inf) weigh 0."""
    mx = torch.stack([m for m, _, _ in parts]).max(0).values
    ms = torch.where(mx == -math.inf, torch.zeros_like(mx), mx)
    w = [torch.exp2(m - ms) for m, _, _ in parts]
    return (
        mx,
        sum(wi * li for wi, (_, li, _) in zip(w, parts)),
        sum(wi[:, None] * ai for wi, (_, _, ai) in zip(w, parts)),
    )


def reference(q, k, v, pos, scale=None) -> torch.Tensor:
    """The attention in fp32 torch ops over slots ``0..pos``: ``decode_kernel.decode_attention_reference``."""
    from nemo_cosmos_ar.inference.decode_kernel import decode_attention_reference

    return decode_attention_reference(q, k, v, pos, scale)


def check_sources() -> list[str]:
    """Every option set's source at the default block shape (the local NVRTC compile check)."""
    return [
        source(*DEFAULT_CONFIG[:2], 4, pdl, write, rs)
        for pdl in (False, True)
        for write in (False, True)
        for rs in (0, 1)
    ]
