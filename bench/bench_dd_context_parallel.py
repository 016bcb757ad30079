"""What context parallelism leaves each GPU of the diffusion decoder's DiT to compute (issue 13).

On 4 or more GPUs generate cuts each guidance pass by context parallelism: a rank holds ``S / cp`` of the 20,480
tokens, its self-attention takes those queries against all S keys and values (gathered from the other ranks every
layer) and the output is gathered at the end. No machine with 4+ GPUs was lent, so this measures the compute side on
one GPU: one batch-1 forward of the 7B DiT (random weights built on the GPU, 8x80x128 latent) with a no-communication
stand-in of rank 0's part (``ContextParallel.stand_in``: the gathers repeat the local slice, so every shape is the
real one), for cp = 1, 2, 4, and the bytes each rank would receive per forward. Prints ms per forward (median of
``--reps`` after a warm-up), its speed-up over cp = 1, and the all-gather volume.

    python bench/bench_dd_context_parallel.py                 # H200, bf16 GEMMs
    python bench/bench_dd_context_parallel.py --gemm fp8
    python bench/bench_dd_context_parallel.py --smoke         # CPU, tiny DiT (checks the script)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nemo_cosmos_ar.diffusion_decoder.config import get_dit_config  # noqa: E402
from nemo_cosmos_ar.diffusion_decoder.network import DiffusionDecoderDiT  # noqa: E402
from nemo_cosmos_ar.diffusion_decoder.parallel import ContextParallel  # noqa: E402


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--gemm", choices=("bf16", "fp8"), default="bf16")
    ap.add_argument("--cps", default="1,2,4")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    dev = "cpu" if args.smoke else "cuda"
    dt = torch.float32 if args.smoke else torch.bfloat16
    cfg = get_dit_config("tiny" if args.smoke else "7b")
    t, h, w = (8, 8, 8) if args.smoke else (8, 80, 128)
    with torch.device(dev):
        net = DiffusionDecoderDiT(cfg)
    net = net.to(dt).eval().requires_grad_(False)
    net.set_gemm(args.gemm)
    g = torch.Generator(device=dev).manual_seed(0)
    x = torch.randn(1, cfg.latent_channels, t, h, w, device=dev, dtype=dt, generator=g)
    ctx = torch.randn(1, 512, cfg.context_dim, device=dev, dtype=dt, generator=g)
    tok = torch.randint(0, cfg.token_vocab_size, (1, t, h // 2, w // 2), device=dev, generator=g)
    c_noise = torch.tensor(0.5, device=dev, dtype=dt)
    s = t * (h // cfg.patch_spatial) * (w // cfg.patch_spatial)
    name = torch.cuda.get_device_name() if dev == "cuda" else "CPU"
    print(f"DiT {'tiny' if args.smoke else '7b'}, {args.gemm} GEMMs, {s} tokens, batch 1, {name}\n")
    print("| cp | ms per forward (rank 0's part) | speed-up | K+V all-gather received per rank per forward MB |")
    print("|---:|---:|---:|---:|")
    base = None
    for cp in (int(c) for c in args.cps.split(",")):
        net.set_context_parallel(ContextParallel(0, cp).stand_in() if cp > 1 else None)
        times = []
        for _ in range(args.reps + 1):
            if dev == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            net(x, c_noise, ctx, tok, 24.0)
            if dev == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        ms = statistics.median(times[1:]) * 1e3
        base = base or ms
        # per self-attention layer: K and V of the other ranks' tokens, bf16, plus the final output gather
        recv = cfg.num_blocks * 2 * s * (cp - 1) / cp * cfg.model_channels * 2 if cp > 1 else 0.0
        print(f"| {cp} | {ms:.1f} | {base / ms:.2f}x | {recv / 1e6:.0f} |", flush=True)


if __name__ == "__main__":
    main()
