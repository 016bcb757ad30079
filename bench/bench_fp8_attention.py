"""Is cuDNN's FP8 attention worth building into the diffusion decoder? (issue 13)

The DiT's self-attention (20,480 tokens, 32 heads x 128, non-causal) is 54% of an FP8-GEMM forward and runs in bf16
through cuDNN at ~700 TFLOP/s. cuDNN also has a per-tensor-scaled e4m3 attention (the frontend's ``sdpa_fp8``), which
torch's SDPA does not expose. This script times, at the real shape on one GPU:

* bf16 SDPA with the cuDNN backend (what the decoder runs today);
* cuDNN ``sdpa_fp8`` (e4m3 Q/K/V/O, fp32 softmax; on Hopper O must be e4m3 too), and the eager cost of the per-tensor
  quantization it needs (amax + scale + cast of Q, K, V);

and its error: relative L2 of each output against an fp32 reference computed on the first ``--ref-queries`` queries.

Needs the ``nvidia-cudnn-frontend`` wheel (carried in .gpu4 for the device). Usage::

    python bench/bench_fp8_attention.py                 # batch 1 and 2, 20,480 tokens
    python bench/bench_fp8_attention.py --tokens 12800
"""

from __future__ import annotations

import argparse
import math

import torch
import torch.nn.functional as F
from cuda_timing import median_ms

E4M3_MAX = 448.0


def timed(fn, reps: int) -> float:
    """Median milliseconds of ``fn`` over ``reps`` runs after two warm-ups."""
    return median_ms(fn, reps)


def quantize(x: torch.Tensor):
    """Per-tensor e4m3: (payload, scale as a [1,1,1,1] fp32 device tensor, its inverse). No host sync."""
    amax = x.abs().amax().float().clamp(min=1e-12)
    scale = (E4M3_MAX / amax).reshape(1, 1, 1, 1)
    return (x.float() * scale).to(torch.float8_e4m3fn), scale, (1.0 / scale)


def build_graph(cudnn, handle, shape_bshd, attn_scale: float):
    """A cuDNN graph for e4m3 attention over [b, s, h, d] tensors (no transposes: strides describe the layout)."""
    b, s, h, d = shape_bshd
    e4m3, fp32 = cudnn.data_type.FP8_E4M3, cudnn.data_type.FLOAT
    graph = cudnn.pygraph(io_data_type=e4m3, intermediate_data_type=fp32, compute_data_type=fp32, handle=handle)
    dims, strides = (b, h, s, d), (s * h * d, d, h * d, 1)  # logical [b, h, s, d] over physical [b, s, h, d]
    q, k, v = (graph.tensor(name=n, dim=dims, stride=strides, data_type=e4m3) for n in ("q", "k", "v"))
    one = dict(dim=(1, 1, 1, 1), stride=(1, 1, 1, 1), data_type=fp32)
    dq, dk, dv, ds, ss, so = (graph.tensor(name=n, **one) for n in ("dq", "dk", "dv", "ds", "ss", "so"))
    o, _, amax_s, amax_o = graph.sdpa_fp8(
        q=q,
        k=k,
        v=v,
        descale_q=dq,
        descale_k=dk,
        descale_v=dv,
        descale_s=ds,
        scale_s=ss,
        scale_o=so,
        attn_scale=attn_scale,
        use_causal_mask=False,
        generate_stats=False,
        name="attn",
    )
    o.set_output(True).set_dim(dims).set_stride(strides).set_data_type(e4m3)
    for t in (amax_s, amax_o):
        t.set_output(True).set_dim((1, 1, 1, 1)).set_stride((1, 1, 1, 1)).set_data_type(fp32)
    graph.validate()
    graph.build_operation_graph()
    graph.create_execution_plans([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
    graph.check_support()
    graph.build_plans()
    return graph, dict(q=q, k=k, v=v, dq=dq, dk=dk, dv=dv, ds=ds, ss=ss, so=so, o=o, amax_s=amax_s, amax_o=amax_o)


def rms_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows of unit RMS over the head dim, as the DiT's per-head RMSNorm (gain 1) feeds its attention."""
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6)).to(x.dtype)


def run_case(cudnn, handle, b, s, h, d, scale, sharp, args) -> None:
    dev = torch.device("cuda")
    g = torch.Generator(device=dev).manual_seed(0)
    q = (rms_rows(torch.randn(b, s, h, d, device=dev, generator=g)) * sharp).to(torch.bfloat16)
    k = rms_rows(torch.randn(b, s, h, d, device=dev, generator=g)).to(torch.bfloat16)
    v = (torch.randn(b, s, h, d, device=dev, generator=g) * 0.5).to(torch.bfloat16)
    flops = 4 * b * s * s * h * d
    n = args.ref_queries
    ref = F.scaled_dot_product_attention(
        q[:, :n].transpose(1, 2).float(), k.transpose(1, 2).float(), v.transpose(1, 2).float()
    ).transpose(1, 2)

    def err(out):
        return ((out[:, :n].float() - ref).norm() / ref.norm()).item()

    from torch.nn.attention import SDPBackend, sdpa_kernel

    def bf16():
        with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
            return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))

    tag = f"{b} | x{sharp:g}"
    ms = timed(bf16, args.reps)
    print(f"| {tag} | bf16 SDPA, cuDNN | {ms:.2f} | {flops / ms / 1e9:.0f} | {err(bf16().transpose(1, 2)):.2e} |")
    ms_q = timed(lambda: (quantize(q), quantize(k), quantize(v)), args.reps)
    print(f"| {tag} | per-tensor quantize of q, k, v (eager) | {ms_q:.2f} | | |")
    v8, sv, dv = quantize(v)
    # q and k with the static bound of an RMS-normed row (|x| <= sqrt(D) * max|gain|) instead of their amax
    bound = math.sqrt(d) * sharp
    sq = torch.full((1, 1, 1, 1), E4M3_MAX / bound, device=dev)
    sk = torch.full((1, 1, 1, 1), E4M3_MAX / math.sqrt(d), device=dev)
    q8 = (q.float() * sq).to(torch.float8_e4m3fn)
    k8 = (k.float() * sk).to(torch.float8_e4m3fn)
    dq, dk = 1.0 / sq, 1.0 / sk
    # emulation: the e4m3 inputs dequantized, fp32 attention, O rounded to e4m3 with O's scale (no P rounding)
    qe, ke, ve = q8[:, :n].float() * dq, k8.float() * dk, v8.float() * dv
    emu = F.scaled_dot_product_attention(qe.transpose(1, 2), ke.transpose(1, 2), ve.transpose(1, 2)).transpose(1, 2)
    emu8 = (emu * sv).to(torch.float8_e4m3fn).float() * dv
    print(
        f"| {tag} | emulation: e4m3 q, k, v, O; fp32 softmax | | | {err(emu8):.2e} (before O rounding {err(emu):.2e}) |"
    )
    del qe, ke, ve, emu
    try:
        graph, t = build_graph(cudnn, handle, (b, s, h, d), scale)
    except Exception as e:  # noqa: BLE001 - report why cuDNN refused and go on
        print(f"| {tag} | cuDNN sdpa_fp8 | refused: {type(e).__name__}: {str(e)[:200]} | | |")
        return
    o8 = torch.empty(b, s, h, d, device=dev, dtype=torch.float8_e4m3fn)
    amax_s = torch.empty(1, 1, 1, 1, device=dev)
    amax_o = torch.empty(1, 1, 1, 1, device=dev)
    ws = torch.empty(graph.get_workspace_size(), device=dev, dtype=torch.uint8)
    so = sv.clone()  # O is a convex mix of V's rows: |O| <= amax(V)
    for label, s_val in (("scale_s 448", E4M3_MAX), ("scale_s 448 / amax_s", None)):
        ss = torch.full((1, 1, 1, 1), E4M3_MAX, device=dev) if s_val else (E4M3_MAX / amax_s.clamp(min=1e-6))
        pack = {
            t["q"]: q8,
            t["k"]: k8,
            t["v"]: v8,
            t["dq"]: dq,
            t["dk"]: dk,
            t["dv"]: dv,
            t["ds"]: 1.0 / ss,
            t["ss"]: ss,
            t["so"]: so,
            t["o"]: o8,
            t["amax_s"]: amax_s,
            t["amax_o"]: amax_o,
        }
        ms8 = timed(lambda pk=pack: graph.execute(pk, ws, handle=handle), args.reps)
        out = o8.float() * (1.0 / so)
        print(
            f"| {tag} | cuDNN sdpa_fp8, {label} (static q/k scales) | {ms8:.2f} | {flops / ms8 / 1e9:.0f} | "
            f"{err(out):.2e} (amax_s {amax_s.item():.3g}, amax_o {amax_o.item():.3g}) |"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=20480)
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--batches", default="1,2")
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--ref-queries", type=int, default=1024)
    p.add_argument("--sharpness", default="1,4", help="q's gain: 1 = random q.k logits of std 1, 4 = peakier")
    args = p.parse_args()
    print(f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, {torch.cuda.get_device_name()}")
    import cudnn  # after torch loaded libcudnn, so the frontend binds to the same library

    print(f"cudnn frontend {cudnn.__version__}, backend {cudnn.backend_version()}")
    handle = cudnn.create_handle()
    cudnn.set_stream(handle=handle, stream=torch.cuda.current_stream().cuda_stream)
    s, h, d = args.tokens, args.heads, args.head_dim
    scale = 1.0 / math.sqrt(d)
    print("| batch | q gain | what | ms | TFLOP/s | rel L2 vs fp32 (first queries) |")
    print("|---:|---|---|---:|---:|---:|")
    for b in [int(x) for x in args.batches.split(",")]:
        for sharp in [float(x) for x in args.sharpness.split(",")]:
            run_case(cudnn, handle, b, s, h, d, scale, sharp, args)
    print("done")


if __name__ == "__main__":
    main()
