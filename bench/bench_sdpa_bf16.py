"""Is there a faster lossless (bf16) attention than torch SDPA's cuDNN backend for the DiT? (issue 13)

The DiT's self-attention (20,480 tokens, 32 heads x 128, non-causal) is ~54% of a guided step. This times, at the
real shape: torch SDPA with the cuDNN backend on the views the decoder passes (``[b, s, h, d]`` transposed) and on
contiguous ``[b, h, s, d]``; torch's flash backend; the cuDNN frontend's bf16 ``sdpa`` graph built directly (the
``nvidia-cudnn-frontend`` wheel, carried in .gpu4; a newer heuristic than torch's); and which flash-attention
implementations torch can switch to (``torch.nn.attention.list_flash_attention_impls``). Error = relative L2 against
fp32 attention over the first 1,024 queries.

    python bench/bench_sdpa_bf16.py
"""

from __future__ import annotations

import argparse
import math

import torch
import torch.nn.functional as F
from cuda_timing import attention_case, median_ms
from torch.nn.attention import SDPBackend, sdpa_kernel


def frontend_graph(cudnn, handle, b, s, h, d, bshd: bool):
    bf16, fp32 = cudnn.data_type.BFLOAT16, cudnn.data_type.FLOAT
    graph = cudnn.pygraph(io_data_type=bf16, intermediate_data_type=fp32, compute_data_type=fp32, handle=handle)
    dims = (b, h, s, d)
    strides = (s * h * d, d, h * d, 1) if bshd else (h * s * d, s * d, d, 1)
    q, k, v = (graph.tensor(name=n, dim=dims, stride=strides, data_type=bf16) for n in ("q", "k", "v"))
    kw = dict(q=q, k=k, v=v, attn_scale=1.0 / math.sqrt(d), use_causal_mask=False, name="attn")
    try:
        o, _ = graph.sdpa(generate_stats=False, **kw)
    except TypeError:
        o, _ = graph.sdpa(is_inference=True, **kw)
    o.set_output(True).set_dim(dims).set_stride(strides).set_data_type(bf16)
    graph.validate()
    graph.build_operation_graph()
    graph.create_execution_plans([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
    graph.check_support()
    graph.build_plans()
    return graph, q, k, v, o


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=20480)
    p.add_argument("--batches", default="1,2")
    p.add_argument("--reps", type=int, default=10)
    args = p.parse_args()
    print(f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, {torch.cuda.get_device_name()}")
    try:
        from torch.nn.attention import list_flash_attention_impls

        print("flash attention impls torch can activate:", list_flash_attention_impls())
    except Exception as e:  # noqa: BLE001
        print("list_flash_attention_impls:", type(e).__name__, e)
    import cudnn

    print(f"cudnn frontend {cudnn.__version__}, backend {cudnn.backend_version()}")
    handle = cudnn.create_handle()
    cudnn.set_stream(handle=handle, stream=torch.cuda.current_stream().cuda_stream)
    s, h, d = args.tokens, 32, 128
    print("\n| batch | what | ms | TFLOP/s | rel L2 vs fp32 |")
    print("|---:|---|---:|---:|---:|")
    for b in [int(x) for x in args.batches.split(",")]:
        q, k, v, flops, err = attention_case(b, s, h, d)

        qc, kc, vc = (t.transpose(1, 2).contiguous() for t in (q, k, v))
        cases = {
            "torch SDPA cuDNN, [b,s,h,d] views (the decoder's call)": (
                SDPBackend.CUDNN_ATTENTION, (q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))),
            "torch SDPA cuDNN, contiguous [b,h,s,d]": (SDPBackend.CUDNN_ATTENTION, (qc, kc, vc)),
            "torch SDPA flash, [b,s,h,d] views": (
                SDPBackend.FLASH_ATTENTION, (q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))),
        }  # fmt: skip
        for label, (backend, qkv) in cases.items():

            def run(backend=backend, qkv=qkv):
                with sdpa_kernel([backend]):
                    return F.scaled_dot_product_attention(*qkv)

            try:
                ms = median_ms(run, args.reps)
                print(f"| {b} | {label} | {ms:.2f} | {flops / ms / 1e9:.0f} | {err(run().transpose(1, 2)):.2e} |")
            except Exception as e:  # noqa: BLE001
                print(f"| {b} | {label} | failed: {type(e).__name__}: {str(e)[:150]} | | |")
        for bshd in (True, False):
            label = "cuDNN frontend bf16 sdpa, " + ("[b,s,h,d]" if bshd else "contiguous [b,h,s,d]")
            try:
                graph, tq, tk, tv, to = frontend_graph(cudnn, handle, b, s, h, d, bshd)
            except Exception as e:  # noqa: BLE001
                print(f"| {b} | {label} | refused: {type(e).__name__}: {str(e)[:150]} | | |")
                continue
            qq, kk, vv = (q, k, v) if bshd else (qc, kc, vc)
            o = torch.empty_like(qq)
            ws = torch.empty(graph.get_workspace_size(), device="cuda", dtype=torch.uint8)
            pack = {tq: qq, tk: kk, tv: vv, to: o}
            ms = median_ms(lambda pk=pack, gr=graph, w=ws: gr.execute(pk, w, handle=handle), args.reps)
            out = o if bshd else o.transpose(1, 2)
            print(f"| {b} | {label} | {ms:.2f} | {flops / ms / 1e9:.0f} | {err(out):.2e} |")
        del q, k, v, qc, kc, vc
        torch.cuda.empty_cache()
    print("done")


if __name__ == "__main__":
    main()
