"""Can one GPU run a video's DiT steps while the AR model decodes the next video? (issue 13, batch throughput)

The batch-1 AR decode is bound by memory bandwidth (~1.85 ms a token with int8 weights, the SMs mostly idle), the
DiT's guided steps by tensor-core math. In batch mode one more video costs AR decode + DiT one after the other
(~35 s on one H200). If the two overlapped on two CUDA streams, one more video would cost closer to the longer
of the two. This script measures, in one process on one GPU, with random weights at the real shapes (4B AR with
int8 decode weights, 7B DiT with FP8 GEMMs, one guided step = a batch-2 forward):

* the AR decode of ``--tokens`` tokens alone, and ``--dit-steps`` DiT forwards alone;
* both at once: the DiT forwards issued from a thread on a low-priority stream, the AR decode on a high-priority
  stream in the main thread; the wall time until both finish, each one's own time, and the AR rate. The thread starts
  at the decode's first token, after its CUDA graphs are captured.

``generate_tokens`` synchronizes the whole device at its start and end (``generator._sync``); here that is swapped for
a synchronization of the current stream, or the AR decode would wait for the DiT's queued work.

``--connections``: CUDA_DEVICE_MAX_CONNECTIONS for this process (the session scripts' gpu_site.sh sets 1 for Megatron,
which puts every stream's kernels into one hardware queue: a kernel queued behind another stream's waiting kernel
waits too; call d5 ran so). ``--exact``: the exact output configuration instead (bf16 AR weights with
``--window`` speculative decoding, bf16 DiT GEMMs).

    python bench/bench_overlap.py                 # H200
    python bench/bench_overlap.py --exact --window 63 --tokens 7680 --dit-steps 7 --connections 8
    python bench/bench_overlap.py --smoke         # CPU, tiny presets (checks the script; no overlap on CPU)
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=2560, help="AR tokens to decode after a 2-frame prompt")
    ap.add_argument("--dit-steps", type=int, default=4)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--exact", action="store_true", help="bf16 AR weights and DiT GEMMs (the exact output)")
    ap.add_argument("--window", type=int, default=0, help="speculative window L of the AR decode (0: one token)")
    ap.add_argument("--connections", type=int, default=0, help="CUDA_DEVICE_MAX_CONNECTIONS (0: leave the env)")
    args = ap.parse_args()
    if args.connections:
        import os

        os.environ["CUDA_DEVICE_MAX_CONNECTIONS"] = str(args.connections)  # read when CUDA starts, below
    dev = "cpu" if args.smoke else "cuda"
    dt = torch.float32 if args.smoke else torch.bfloat16
    dit_name, lat, ar_name, grid = ("tiny", (4, 8, 8), "tiny", (5, 4, 6)) if args.smoke else (
        "7b", (8, 80, 128), "4b", (5, 40, 64))  # fmt: skip

    from bench_generate import random_mcore

    from nemo_cosmos_ar.diffusion_decoder.config import get_dit_config
    from nemo_cosmos_ar.diffusion_decoder.network import DiffusionDecoderDiT
    from nemo_cosmos_ar.inference import engine as en
    from nemo_cosmos_ar.inference import generator as gen_mod
    from nemo_cosmos_ar.inference import speculative as spec_mod
    from nemo_cosmos_ar.inference.generator import DecodeOptions, generate_tokens
    from nemo_cosmos_ar.inference.sampling import SamplingConfig
    from nemo_cosmos_ar.model.presets import get_preset

    def sync_all():
        if dev == "cuda":
            torch.cuda.synchronize()

    # the DiT first (its kernels chosen before the AR model runs, as generate's warm-up does)
    cfg = get_dit_config(dit_name)
    with torch.device(dev):
        net = DiffusionDecoderDiT(cfg)
    net = net.to(dt).eval().requires_grad_(False)
    if not args.smoke and not args.exact:
        net.set_gemm("fp8")
    g = torch.Generator(device=dev).manual_seed(0)
    t_, h, w = lat
    x = torch.randn(2, cfg.latent_channels, t_, h, w, device=dev, dtype=dt, generator=g)
    ctx = torch.randn(2, 512, cfg.context_dim, device=dev, dtype=dt, generator=g)
    tok = torch.randint(0, 64000 if not args.smoke else 64, (2, t_, h // 2, w // 2), device=dev, generator=g)
    c_noise = torch.tensor(0.5, device=dev, dtype=dt)

    def dit(n: int) -> float:
        t = time.perf_counter()
        with torch.no_grad():
            for _ in range(n):
                net(x, c_noise, ctx, tok, 24, context_rows=1)
        if dev == "cuda":
            torch.cuda.current_stream().synchronize()
        return time.perf_counter() - t

    dit(1)
    device = en.init_parallel(1, torch.device(dev))
    acfg = get_preset(ar_name).with_latent_shape(grid)
    engine = en.McoreEngine(random_mcore(acfg, 1, device, dt), acfg)
    en.configure_decode(engine, weights="int8" if not (args.smoke or args.exact) else "bf16")
    p = 2 * grid[1] * grid[2]
    total = min(acfg.seq_length, p + args.tokens)
    prompt = torch.randint(0, acfg.vocab_size, (1, p), device=device)
    stream_sync = lambda d: torch.cuda.current_stream(d).synchronize() if d.type == "cuda" else None  # noqa: E731
    gen_mod._sync = spec_mod._sync = stream_sync

    class Started:
        """A progress bar for generate_tokens whose first update (after the CUDA graphs' capture and the prefill)
        lets the DiT's thread start: a capture with another thread's kernels in flight failed (call a34)."""

        def __init__(self) -> None:
            self.event = threading.Event()

        def update(self, n: int = 1) -> None:
            self.event.set()

        def close(self) -> None:
            self.event.set()

    def ar(bar=False) -> tuple[float, float]:
        gen = torch.Generator(device=device).manual_seed(0)
        t = time.perf_counter()
        opts = DecodeOptions(speculative=args.window) if args.window else DecodeOptions()
        _, stats = generate_tokens(engine, prompt, total, SamplingConfig(), gen, progress=bar, options=opts)
        return time.perf_counter() - t, stats.tokens_per_s

    ar()  # capture, compile
    sync_all()
    ar_alone, tps_alone = ar()
    dit_alone = dit(args.dit_steps)
    print(
        f"# CUDA_DEVICE_MAX_CONNECTIONS={__import__('os').environ.get('CUDA_DEVICE_MAX_CONNECTIONS', '(unset)')}; "
        f"{'exact (bf16)' if args.exact else 'int8 AR, FP8 DiT'}; window {args.window}"
    )
    print(
        f"# AR {total - p} tokens alone: {ar_alone:.2f} s ({tps_alone:.1f} tokens/s); "
        f"DiT {args.dit_steps} forwards alone: {dit_alone:.2f} s ({dit_alone / args.dit_steps:.3f} s each)"
    )
    print("| priority (AR / DiT) | wall s | AR s (tokens/s) | DiT s (per forward) | wall / (AR + DiT alone) |")
    print("|---|---:|---:|---:|---:|")
    cases = [("high / low", -1, 0), ("same", 0, 0)] if dev == "cuda" else [("cpu, sequential", 0, 0)]
    for label, pa, pd in cases:
        sync_all()
        res: dict = {}
        s_ar = torch.cuda.Stream(priority=pa) if dev == "cuda" else None
        s_dit = torch.cuda.Stream(priority=pd) if dev == "cuda" else None

        started = Started()

        def dit_thread(stream=s_dit, res=res, started=started):
            started.event.wait()
            with torch.cuda.stream(stream) if stream is not None else torch.no_grad():
                res["dit"] = dit(args.dit_steps)

        t = time.perf_counter()
        th = threading.Thread(target=dit_thread)
        th.start()
        with torch.cuda.stream(s_ar) if s_ar is not None else torch.no_grad():
            res["ar"] = ar(started)
        th.join()
        sync_all()
        wall = time.perf_counter() - t
        (a, tps), d = res["ar"], res["dit"]
        print(
            f"| {label} | {wall:.2f} | {a:.2f} ({tps:.1f}) | {d:.2f} ({d / args.dit_steps:.3f}) | "
            f"{wall / (ar_alone + dit_alone):.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
