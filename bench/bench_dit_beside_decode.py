"""Is a DiT forward free when it runs beside the AR decode? (issue 13, prepared in the tenth session)

The first guided step's unconditional pass does not depend on the generated tokens: its input is the seeded noise,
token id 0 everywhere and a zero context. So it could run while the AR model generates, leaving the first step a
batch-1 conditional pass (0.61 s against 1.12 s for the guided batch of 2 with FP8 GEMMs, BENCHMARKS.md). That pays
only if the AR decode, bound by memory bandwidth, is slowed by less than the ~0.5 s the pass takes off: the DiT's
GEMMs and attention are compute-bound, but kernels that occupy every SM can still hold the decode's kernels back.

This measures it on the real step: the random 4B at the guide's 9-frame prompt (5,120 -> 12,800 tokens), its int8
decode as ``--decode-weights int8`` runs it (CUDA graphs), and the random 7B DiT with FP8 GEMMs at one chunk's
shapes (batch 1, unconditional). Printed: the AR decode alone, the DiT forward alone, and both together with the DiT
started ``--delay`` seconds into the decode on a side stream (from a thread, as the diffusion decoder's loader would
run it), the decode on the default stream ("same priority") or on a stream of the GPU's highest priority (CUDA's
default priority is already its lowest, so only the decode can be raised). "net" = DiT alone - the decode's extra
seconds: what the overlap would take off one video.

    python3 bench/bench_dit_beside_decode.py              # one H200, ~3 min
    python3 bench/bench_dit_beside_decode.py --smoke      # CPU, tiny models (checks the script)

Measured on the H200 (eleventh session, 2026-12-02): the decode alone 12.86-12.87 s, the DiT forward alone 0.505 s;
beside it the decode took +0.50-0.51 s at the same priority and +0.47 s raised, a net of -0.002 to +0.036 s. The
overlap buys nothing, and the built ``DiffusionDecoder.prepare`` was removed (BENCHMARKS.md, issue 13).
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
from bench_generate import random_mcore  # noqa: E402

from nemo_cosmos_ar.diffusion_decoder.config import get_dit_config  # noqa: E402
from nemo_cosmos_ar.diffusion_decoder.network import DiffusionDecoderDiT  # noqa: E402
from nemo_cosmos_ar.inference import engine as en  # noqa: E402
from nemo_cosmos_ar.inference.generator import generate_tokens  # noqa: E402
from nemo_cosmos_ar.inference.sampling import SamplingConfig  # noqa: E402
from nemo_cosmos_ar.model.presets import get_preset  # noqa: E402


def build_dit(preset: str, device, dtype, cuda: bool):
    with torch.device(device):
        net = DiffusionDecoderDiT(get_dit_config(preset))
    net = net.to(dtype).eval().requires_grad_(False)
    if cuda:
        net.set_kernels("auto")
        net.set_gemm("fp8")
    cfg = net.config
    t, h, w = (8, 40, 64) if preset == "7b" else (2, 4, 6)  # one chunk: 8 latent frames of a 5x40x64 token grid
    x = torch.randn(1, cfg.latent_channels, t, 2 * h, 2 * w, device=device, dtype=dtype)
    ctx = torch.zeros(1, 512 if preset == "7b" else 8, cfg.context_dim, device=device, dtype=dtype)
    tok = torch.zeros(1, t, h, w, dtype=torch.long, device=device)
    sigma = torch.tensor(1.0, device=device, dtype=dtype)
    return lambda: net(x, sigma, ctx, tok, 24.0, context_rows=0)  # the unconditional pass: no cross-attention


def sync(cuda: bool) -> None:
    if cuda:
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny models")
    ap.add_argument("--delay", type=float, default=2.0, help="seconds into the decode the DiT forward starts")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    cuda = torch.cuda.is_available() and not args.smoke
    device = en.init_parallel(1, torch.device("cuda" if cuda else "cpu"))
    dtype = torch.bfloat16 if cuda else torch.float32
    model, grid, dit = ("4b", (5, 40, 64), "7b") if cuda else ("tiny", (5, 4, 6), "tiny")
    cfg = get_preset(model).with_latent_shape(grid)
    engine = en.McoreEngine(random_mcore(cfg, 1, device, dtype), cfg)
    if cuda:
        en.configure_decode(engine, weights="int8")
    forward = build_dit(dit, device, dtype, cuda)
    prompt = torch.randint(0, 64000, (1, 2 * grid[1] * grid[2]), device=device)
    sampling = SamplingConfig()

    def decode(stream=None) -> float:
        g = torch.Generator(device=device).manual_seed(0)
        with torch.cuda.stream(stream) if stream is not None else torch.no_grad():
            _, stats = generate_tokens(engine, prompt, cfg.seq_length, sampling, g)
        return stats.decode_s

    def dit_alone() -> float:
        sync(cuda)
        t = time.perf_counter()
        forward()
        sync(cuda)
        return time.perf_counter() - t

    with torch.no_grad():
        dit_alone()  # the DiT first: its kernels chosen before the AR model generates (DiffusionDecoder.warm_kernels)
        decode()  # capture, Triton compiles
        rows = []
        for r in range(args.rounds):
            alone, d_alone = decode(), dit_alone()
            rows.append((f"round {r + 1}: alone", alone, d_alone, None))
            for ar_priority in ("same priority", "AR raised"):
                took = {}

                def beside(took=took):
                    time.sleep(args.delay)
                    stream = torch.cuda.Stream(device) if cuda else None
                    t = time.perf_counter()
                    with torch.cuda.stream(stream) if cuda else torch.no_grad():
                        forward()
                    if cuda:
                        stream.synchronize()
                    took["dit"] = time.perf_counter() - t

                high = torch.cuda.Stream(device, priority=-100) if cuda and ar_priority == "AR raised" else None
                th = threading.Thread(target=beside)
                th.start()
                with_dit = decode(high)
                th.join()
                rows.append((f"round {r + 1}: DiT beside, {ar_priority}", with_dit, took["dit"], alone))
    what = "int8 decode" if cuda else "decode"
    print(f"# {torch.cuda.get_device_name() if cuda else 'cpu'}, {model} AR {what} {grid}, {dit} DiT batch 1, uncond")
    print(
        "| run | AR decode s | DiT forward s | decode extra s | net s (DiT alone - extra) |\n|---|---:|---:|---:|---:|"
    )
    for name, dec, dit_s, base in rows:
        if base is None:
            d_alone = dit_s
            print(f"| {name} | {dec:.2f} | {dit_s:.3f} | - | - |")
        else:
            extra = dec - base
            print(f"| {name} | {dec:.2f} | {dit_s:.3f} | {extra:+.3f} | {d_alone - extra:+.3f} |")


if __name__ == "__main__":
    main()
