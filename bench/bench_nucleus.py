"""The top-p search of speculative decoding (``nucleus_kernel.nucleus_probs``) by launch choice (issue 13).

The twenty-fifth session's profile of a step at L = 63 put the search's 4 ``round_kernel`` launches at 110 us (64 rows
of 64,000 bf16 logits), ~27 us each for what is ~8 MB of reads; folding its 16 row reductions into one 2-D reduction
made it 4x slower. This times the whole ``nucleus_probs`` (6 launches) in a CUDA graph over the module's ``TILE``
(logits per program) and ``NUM_WARPS``, at 16 / 32 / 64 rows, and checks every choice against the default's output
(the same nucleus; sums in another order move a probability by rounding only).

    python bench/bench_nucleus.py            # on a GPU
"""

import argparse
import itertools
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_gemv import graph_time  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", default="512,1024,2048,4096")
    ap.add_argument("--warps", default="2,4,8")
    ap.add_argument("--rows", default="16,32,64")
    args = ap.parse_args()
    from nemo_cosmos_ar.inference import nucleus_kernel as nk

    default = (nk.TILE, nk.NUM_WARPS)
    gen = torch.Generator(device="cuda").manual_seed(0)
    rows_list = [int(r) for r in args.rows.split(",")]
    logits = {r: (3 * torch.randn(r, 64000, device="cuda", generator=gen)).bfloat16() for r in rows_list}
    want = {r: nk.nucleus_probs(logits[r], 1.0, 0.8) for r in rows_list}
    print(f"default TILE {default[0]}, NUM_WARPS {default[1]}")
    print("| TILE | warps | " + " | ".join(f"{r} rows us" for r in rows_list) + " | max diff to the default |")
    print("|---:|---:|" + "---:|" * (len(rows_list) + 1))
    best = {}
    for tile, warps in itertools.product(
        [int(t) for t in args.tiles.split(",")], [int(w) for w in args.warps.split(",")]
    ):
        nk.TILE, nk.NUM_WARPS = tile, warps
        cells, diff = [], 0.0
        try:
            for r in rows_list:
                got = nk.nucleus_probs(logits[r], 1.0, 0.8)
                diff = max(diff, (got - want[r]).abs().max().item())
                us = 1e6 * graph_time(lambda i, x=logits[r]: nk.nucleus_probs(x, 1.0, 0.8), 1)
                best[r] = min(best.get(r, (us, tile, warps)), (us, tile, warps))
                cells.append(f"{us:.1f}")
        except Exception as e:  # noqa: BLE001 -- a choice that does not compile is a row, not a stop
            print(f"| {tile} | {warps} | failed: {type(e).__name__}: {str(e)[:80]} |")
            continue
        print(f"| {tile} | {warps} | " + " | ".join(cells) + f" | {diff:.2e} |", flush=True)
    nk.TILE, nk.NUM_WARPS = default
    for r, (us, tile, warps) in sorted(best.items()):
        print(f"best at {r} rows: {us:.1f} us with TILE {tile}, {warps} warps")


if __name__ == "__main__":
    main()
