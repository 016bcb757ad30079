"""Does running the AR model first slow the 7B DiT down in the same process? (issue 13 diagnosis)

Times the DiT's guided-step forward (batch 2: conditional + unconditional, 8x80x128 latent, random weights built on the
GPU) in a fresh process after one of: nothing (``none``); importing Megatron-Core and setting up its parallel state
(``import``); building a random 4B engine (``engine``); that plus generating 512 tokens with CUDA graphs
(``generate``) or without (``generate-nograph``); or the DiT first, then generate, then the DiT again
(``dit-first``); or a one-block DiT at the same shapes, then generate, then the DiT (``warm-1block``: generate's
remedy, ``DiffusionDecoder.warm_kernels``). One line per run: the step times after one warm-up forward.

    for b in none import engine generate generate-nograph dit-first; do python bench/bench_dd_after_ar.py --before $b; done
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BEFORE = ("none", "import", "engine", "generate", "generate-nograph", "dit-first", "warm-1block")
SMOKE = "--smoke" in sys.argv  # CPU, tiny presets: checks the script
DEV = "cpu" if SMOKE else "cuda"
DIT, LAT, AR, GRID = ("tiny", (4, 8, 8), "tiny", (5, 4, 6)) if SMOKE else ("7b", (8, 80, 128), "4b", (5, 40, 64))
DT = torch.float32 if SMOKE else torch.bfloat16


def sync() -> None:
    if DEV == "cuda":
        torch.cuda.synchronize()


def build_dit():
    from nemo_cosmos_ar.diffusion_decoder.config import get_dit_config
    from nemo_cosmos_ar.diffusion_decoder.network import DiffusionDecoderDiT

    cfg = get_dit_config(DIT)
    with torch.device(DEV):
        net = DiffusionDecoderDiT(cfg)
    net = net.to(DT).eval().requires_grad_(False)
    net.set_attention_backend("sdpa")
    g = torch.Generator(device=DEV).manual_seed(0)
    t, h, w = LAT
    x = torch.randn(2, cfg.latent_channels, t, h, w, device=DEV, dtype=DT, generator=g)
    ctx = torch.randn(2, 512, cfg.context_dim, device=DEV, dtype=DT, generator=g)
    tok = torch.randint(0, 64000, (2, t, h // 2, w // 2), device=DEV, generator=g)
    c_noise = torch.tensor(0.5, device=DEV, dtype=DT)
    return net, (x, c_noise, ctx, tok, 24)


@torch.no_grad()
def time_dit(net, inputs, n: int) -> list[float]:
    times = []
    for _ in range(n + 1):
        sync()
        t = time.perf_counter()
        net(*inputs)
        sync()
        times.append(time.perf_counter() - t)
    return times


def run_ar(graph: bool) -> None:
    from bench_generate import random_mcore

    from nemo_cosmos_ar.inference import engine as en
    from nemo_cosmos_ar.inference.generator import DecodeOptions, generate_tokens
    from nemo_cosmos_ar.inference.sampling import SamplingConfig
    from nemo_cosmos_ar.model.presets import get_preset

    device = en.init_parallel(1, torch.device(DEV))
    cfg = get_preset(AR).with_latent_shape(GRID)
    engine = en.McoreEngine(random_mcore(cfg, 1, device, DT), cfg)
    en.configure_decode(engine)
    p = GRID[1] * GRID[2]
    prompt = torch.randint(0, cfg.vocab_size, (1, p), device=device)
    opts = DecodeOptions(step_mode="auto" if graph else "dynamic")
    gen = torch.Generator(device=device).manual_seed(0)
    generate_tokens(engine, prompt, p + min(512, 2 * p), SamplingConfig(), gen, options=opts)
    return engine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", choices=BEFORE, required=True)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny presets")
    args = ap.parse_args()
    b = args.before
    keep = []
    out = []
    if b == "dit-first":
        net, inputs = build_dit()
        out.append(("DiT alone", time_dit(net, inputs, args.steps)))
        keep.append(run_ar(graph=True))
        out.append(("DiT after generate", time_dit(net, inputs, args.steps)))
    else:
        if b == "import":
            from nemo_cosmos_ar.inference import engine as en

            en.init_parallel(1, torch.device(DEV))
        elif b == "engine":
            from bench_generate import random_mcore

            from nemo_cosmos_ar.inference import engine as en
            from nemo_cosmos_ar.model.presets import get_preset

            device = en.init_parallel(1, torch.device(DEV))
            cfg = get_preset(AR).with_latent_shape(GRID)
            keep.append(en.McoreEngine(random_mcore(cfg, 1, device, DT), cfg))
        elif b.startswith("generate"):
            keep.append(run_ar(graph=b == "generate"))
        elif b == "warm-1block":  # DiffusionDecoder.warm_kernels' remedy: one block at the real shapes first
            import dataclasses

            from nemo_cosmos_ar.diffusion_decoder.config import get_dit_config
            from nemo_cosmos_ar.diffusion_decoder.network import DiffusionDecoderDiT

            with torch.device(DEV):
                one = DiffusionDecoderDiT(dataclasses.replace(get_dit_config(DIT), num_blocks=1)).to(DT).eval()
            one.set_attention_backend("sdpa")
            net1 = one.requires_grad_(False)
            cfg1 = net1.config
            t, h, w = LAT
            g = torch.Generator(device=DEV).manual_seed(1)
            with torch.no_grad():
                net1(
                    torch.randn(2, cfg1.latent_channels, t, h, w, device=DEV, dtype=DT, generator=g),
                    torch.tensor(0.5, device=DEV, dtype=DT),
                    torch.randn(2, 512, cfg1.context_dim, device=DEV, dtype=DT, generator=g),
                    torch.randint(0, 64000, (2, t, h // 2, w // 2), device=DEV, generator=g),
                    24,
                )
            del net1, one
            keep.append(run_ar(graph=True))
        net, inputs = build_dit()
        out.append(("DiT", time_dit(net, inputs, args.steps)))
    for label, times in out:
        rest = times[1:]
        print(
            f"| {b} | {label} | {times[0]:.3f} | {statistics.median(rest):.3f} | {' '.join(f'{t:.3f}' for t in rest)} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
