"""What verifying M tokens of one sequence in one step would cost the 4B, against one token (issue 13).

Why: the exact bf16 decode reads the 4B's weights once per token at the memory roofline (BENCHMARKS.md, issue 13,
nineteenth session), so the only lossless lever left on one GPU is to read them once for several tokens: speculative
sampling, with drafts checked M at a time (the output distribution is unchanged). It pays when the tokens a verify
step yields outnumber its cost in single-token steps. The yield depends on the trained model's acceptance
(``cosmos-ar check-precision`` measures it for a previous-frame draft); the cost is measured here: a layer's four
products and the output layer at M = 1..8 rows, by cuBLAS (``F.linear``, what a multi-token step would run today)
and, at M = 1, by the Triton matrix-vector kernel generate uses. Each product runs in one CUDA graph over 16 weight
copies (4 for the output layer), so the weights stream from HBM as in a step.

    python bench/bench_verify_cost.py
"""

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_gemv import graph_time  # noqa: E402
from bench.bench_gemv_cuda import SHAPES  # noqa: E402  (the 4B's five products)
from nemo_cosmos_ar.inference import gemv as G  # noqa: E402

ROWS = (1, 2, 3, 4, 5, 6, 8)
LAYERS = 16


def measure(n: int, k: int, copies: int, dev: torch.device) -> dict[str, float]:
    """Microseconds per product of ``[N, K]`` bf16 weights: cuBLAS at each M of ``ROWS``, Triton at M = 1."""
    ws = [torch.randn(n, k, device=dev, dtype=torch.bfloat16) * 0.02 for _ in range(copies)]
    row: dict[str, float] = {}
    for m in ROWS:
        x = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
        row[f"cublas M={m}"] = 1e6 * graph_time(lambda i, x=x: F.linear(x, ws[i]), copies)
    x1 = torch.randn(1, k, device=dev, dtype=torch.bfloat16)
    row["triton M=1"] = 1e6 * graph_time(lambda i: G.gemv(x1, ws[i]), copies)
    return row


def main() -> None:
    torch.manual_seed(0)
    dev = torch.device("cuda")
    table: dict[str, dict[str, float]] = {}
    for name, (n, k) in SHAPES.items():
        table[name] = measure(n, k, 4 if name == "output" else LAYERS, dev)
        torch.cuda.empty_cache()
    cols = ["triton M=1"] + [f"cublas M={m}" for m in ROWS]
    print("| product | N x K | " + " | ".join(cols) + " |")
    print("|---|---|" + "---:|" * len(cols))
    for name, (n, k) in SHAPES.items():
        print(f"| {name} | {n} x {k} | " + " | ".join(f"{table[name][c]:.1f}" for c in cols) + " |")
    step = {c: LAYERS * sum(table[s][c] for s in ("qkv", "proj", "fc1", "fc2")) + table["output"][c] for c in cols}
    print("| **products of a 4B step (16 layers + output), us** | | " + " | ".join(f"{step[c]:.0f}" for c in cols))
    base = step["triton M=1"]
    print("| relative to generate's M=1 | | " + " | ".join(f"{step[c] / base:.2f}" for c in cols))
    # speculative break-even: a verify step of M tokens (M-1 drafts + the model's own token) yields on average
    # (1 - a^M) / (1 - a) tokens for an independent per-draft acceptance a; it pays when that exceeds its cost
    print("\nacceptance a needed for M-token verify steps (cuBLAS products; other step work as at M=1) to match M=1:")
    other_us = 2233 - base  # the rest of generate's 2.233 ms step (BENCHMARKS.md, call e22)
    for m in ROWS[1:]:
        cost = (step[f"cublas M={m}"] + other_us) / (base + other_us)
        lo, hi = 0.0, 1.0
        for _ in range(50):
            a = (lo + hi) / 2
            yield_ = (1 - a**m) / (1 - a)
            lo, hi = (a, hi) if yield_ < cost else (lo, a)
        print(f"  M={m}: cost {cost:.2f} steps -> break-even a = {lo:.3f}; at a = 0.8 the speed-up is "
              f"{((1 - 0.8**m) / 0.2) / cost:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
