"""FlashAttention-4's Hopper forward (CuTe DSL, the ``flash-attn-4`` wheel) against torch SDPA's cuDNN backend at the
DiT's attention shape (issue 13): lossless bf16, so a faster kernel would cut the DiT's largest cost without
changing what it computes beyond rounding. Prints ms, TFLOP/s and the relative L2 error against fp32 attention over
the first 1,024 queries, for batch 1 and 2, and whether torch can route SDPA to it (``activate_flash_attention_impl``).

    PYTHONPATH=<site with flash_attn.cute> python bench/bench_fa4.py
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from cuda_timing import attention_case, median_ms
from torch.nn.attention import SDPBackend, sdpa_kernel


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=20480)
    p.add_argument("--batches", default="1,2")
    p.add_argument("--reps", type=int, default=10)
    args = p.parse_args()
    print(f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, {torch.cuda.get_device_name()}")
    t = time.perf_counter()
    from flash_attn.cute.interface import flash_attn_func

    print(f"flash_attn.cute imported in {time.perf_counter() - t:.1f}s")
    s, h, d = args.tokens, 32, 128
    print("\n| batch | what | ms | TFLOP/s | rel L2 vs fp32 |")
    print("|---:|---|---:|---:|---:|")
    for b in [int(x) for x in args.batches.split(",")]:
        q, k, v, flops, err = attention_case(b, s, h, d)

        def cudnn(q=q, k=k, v=v):
            with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
                return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))

        ms = median_ms(cudnn, args.reps)
        print(f"| {b} | torch SDPA cuDNN | {ms:.2f} | {flops / ms / 1e9:.0f} | {err(cudnn().transpose(1, 2)):.2e} |")

        def fa4(q=q, k=k, v=v):
            out = flash_attn_func(q, k, v)
            return out[0] if isinstance(out, tuple) else out

        t = time.perf_counter()
        try:
            out = fa4()
            torch.cuda.synchronize()
        except Exception as e:  # noqa: BLE001 - report and go on
            print(f"| {b} | FA4 (flash_attn.cute) | failed: {type(e).__name__}: {str(e)[:300]} | | |")
            continue
        first = time.perf_counter() - t
        ms = median_ms(fa4, args.reps)
        print(f"| {b} | FA4 (flash_attn.cute), first call {first:.1f}s | {ms:.2f} | {flops / ms / 1e9:.0f} | "
              f"{err(out):.2e} |")  # fmt: skip
        del q, k, v
        torch.cuda.empty_cache()
    try:
        from torch.nn.attention import activate_flash_attention_impl

        activate_flash_attention_impl("FA4")
        q = torch.randn(1, 32, 4096, 128, device="cuda", dtype=torch.bfloat16)
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            F.scaled_dot_product_attention(q, q, q)
        print("torch SDPA routed to FA4: ok")
    except Exception as e:  # noqa: BLE001
        print(f"torch SDPA routed to FA4: {type(e).__name__}: {str(e)[:200]}")
    print("done")


if __name__ == "__main__":
    main()
