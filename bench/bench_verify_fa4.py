"""The speculative verify attention on FlashAttention-4 (CuTe DSL, Hopper) against ``verify_kernel`` (issue 13).

The verify forward's attention (M = L + 1 positions of one sequence against the KV cache, row j seeing slots
0 .. pos + j) is ~0.7 ms of a 3.27 ms step at L = 63 averaged over a video's decode (a38, a44): ~49 us a layer at
12,700 filled slots, i.e. ~270 TFLOP/s for the 4 query heads x 64 rows of each KV group. That is flash attention's
forward with GQA packing, a KV split and a bottom-right causal mask, which FA4 has: ``seqused_k = pos + M`` puts the
mask's corner at the last used slot, so a graph captured for a fixed attended bucket serves every ``pos`` in it.

For M = 16 / 32 / 64 and 5,120 / 9,000 / 12,700 filled slots (512-slot buckets of a 12,800-slot cache, the 4B's 32
heads, 8 KV groups, 128 dims; 16 layers' caches so nothing comes from L2): us a call in a CUDA graph for the Triton
kernel and for FA4 at several split counts, and each one's max |difference| from the fp32 reference.

    PYTHONPATH=<site with flash_attn.cute> python bench/bench_verify_fa4.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_gemv import graph_time  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="16,32,64")
    ap.add_argument("--filled", default="5120,9000,12700")
    ap.add_argument("--splits", default="0,4,8,16", help="FA4 num_splits (0: its heuristic)")
    args = ap.parse_args()
    from flash_attn.cute.interface import _flash_attn_fwd

    from nemo_cosmos_ar.inference import verify_kernel as vk

    heads, groups, hd, cache, layers = 32, 8, 128, 12800, 16
    gen = torch.Generator(device="cuda").manual_seed(0)
    ks = [torch.randn(groups, cache, hd, device="cuda", generator=gen).bfloat16() for _ in range(layers)]
    vs = [torch.randn(groups, cache, hd, device="cuda", generator=gen).bfloat16() for _ in range(layers)]
    splits = [int(s) for s in args.splits.split(",")]
    print("| M | filled slots | Triton us | Triton max diff | " + " | ".join(f"FA4 splits {s or 'auto'} us" for s in splits)
          + " | FA4 max diff |")  # fmt: skip
    print("|---:|---:|---:|---:|" + "---:|" * (len(splits) + 1))
    for m in [int(r) for r in args.rows.split(",")]:
        for n in [int(f) for f in args.filled.split(",")]:
            q = torch.randn(m, heads, hd, device="cuda", generator=gen).bfloat16()
            pos = torch.tensor([n - m], device="cuda")
            used = (pos + m).to(torch.int32)  # seqused_k: the mask's bottom-right corner
            attend = min(cache, 512 * -(-n // 512))
            ref = vk.verify_attention_reference(q, ks[0][:, :attend], vs[0][:, :attend], pos)

            def ours(i, q=q, pos=pos, attend=attend):
                return vk.verify_attention(q, ks[i][:, :attend], vs[i][:, :attend], pos)

            def fa4(i, s, q=q, used=used, attend=attend):
                k4 = ks[i][:, :attend].permute(1, 0, 2).unsqueeze(0)  # [1, attend, groups, hd], strided view
                v4 = vs[i][:, :attend].permute(1, 0, 2).unsqueeze(0)
                out = _flash_attn_fwd(q.unsqueeze(0), k4, v4, seqused_k=used, causal=True, num_splits=s or 0,
                                      pack_gqa=True)[0]  # fmt: skip
                return out.reshape(q.shape[0], heads * hd)

            cells = [f"{1e6 * graph_time(ours, layers):.1f}", f"{(ours(0).float() - ref).abs().max().item():.2e}"]
            diff = 0.0
            for s in splits:
                try:
                    diff = max(diff, (fa4(0, s).float() - ref).abs().max().item())
                    cells.append(f"{1e6 * graph_time(lambda i, s=s: fa4(i, s), layers):.1f}")
                except Exception as e:  # noqa: BLE001 -- a choice that fails is a cell, not a stop
                    cells.append(f"failed: {type(e).__name__}: {str(e)[:120]}")
            cells.append(f"{diff:.2e}")
            print(f"| {m} | {n} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
