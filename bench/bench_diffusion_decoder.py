"""Speed and peak memory of the 7B diffusion decoder on one 33-frame 640x1024 video, with and without offloading.

Writes random-weight folders in the released formats (``model.pt`` + ``aux_vars.pt`` of the 7B DiT in bf16, a
bf16 ``decoder.jit`` + ``mean_std.pt`` of CV8x8x8 at the released sizes, traced on the GPU) unless real folders are
given, then decodes a random 5x40x64 token grid (one chunk of 8 latent frames, 15 Euler steps, guidance 1.8) under
each configuration and prints a markdown table: seconds per denoising step (median of the 15; one step = the
conditional and unconditional DiT passes), sampling, CV8x8x8 decode and total seconds of ``decode_tokens`` (loads
made during the call included, from the page cache), the constructor's load time, peak GPU memory of the call
(resident weights included) and the DiT's achieved TFLOP/s.

Configurations (``--configs``, comma-separated; default all but te/compile):

* ``resident``: DiT and CV8x8x8 decoder loaded once and kept (cosmos-predict1 without offload flags);
* ``offload-dd``: ``--offload-diffusion-decoder``: the DiT is loaded for the call and freed before the CV decode;
* ``offload-tok``: ``--offload-tokenizer``: the CV8x8x8 decoder is loaded for the call and freed after;
* ``offload-both``: both flags;
* ``unbatched``: resident, conditional and unconditional passes as two calls of batch 1 (NVIDIA's way);
* ``te``: resident with TransformerEngine attention (needs TE); ``compile``: resident with torch.compile'd blocks;
* ``eager-cv``: resident, the CV8x8x8 decoder as the eager module instead of the TorchScript file.

``--cold``: no warm-up call: the first call's figures (what one ``generate`` pays: kernel selection, TorchScript's
profiling runs) in the table, with its first step's seconds; a second, warm call's sampling and CV decode seconds
are printed beside them.

Usage::

    python bench/bench_diffusion_decoder.py                         # H200: everything above but te/compile
    python bench/bench_diffusion_decoder.py --configs resident,te,compile
    python bench/bench_diffusion_decoder.py --work-dir /tmp/ddbench --configs resident   # keep/reuse the folders
    python bench/bench_diffusion_decoder.py \\
        --decoder-dir checkpoints/Cosmos-Predict1-7B-Decoder-DV8x16x16ToCV8x8x8-720p \\
        --tokenizer-dir checkpoints/Cosmos-Tokenize1-CV8x8x8-720p   # real weights
    python bench/bench_diffusion_decoder.py --smoke                 # CPU, tiny presets, fp32 (checks the script)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from nemo_cosmos_ar.diffusion_decoder.config import SamplerConfig  # noqa: E402
from nemo_cosmos_ar.diffusion_decoder.fixtures import write_random_cv_tokenizer, write_random_decoder  # noqa: E402
from nemo_cosmos_ar.diffusion_decoder.pipeline import DiffusionDecoder  # noqa: E402
from nemo_cosmos_ar.tokenizer.fsq import CODEBOOK_SIZE  # noqa: E402

CONFIGS = {
    "resident": dict(),
    "offload-dd": dict(offload_network=True),
    "offload-tok": dict(offload_tokenizer=True),
    "offload-both": dict(offload_network=True, offload_tokenizer=True),
    "unbatched": dict(batch_guidance=False),
    "te": dict(attention="te"),
    "compile": dict(compile_blocks=True),
    "eager-cv": dict(tokenizer_backend="eager"),  # the CV8x8x8 decoder as our eager module (the file's dtype)
}
DEFAULT_CONFIGS = "resident,offload-dd,offload-tok,offload-both,unbatched"


def dit_flops(cfg, latent: tuple[int, int, int], context_tokens: int) -> float:
    """FLOPs (2 x multiply-adds) of one batch-1 DiT forward: the linears on every patch token, cross-attention keys
    and values on the context, and the two attention products (adaLN and norms are negligible)."""
    t, h, w = latent
    s = (t // cfg.patch_temporal) * (h // cfg.patch_spatial) * (w // cfg.patch_spatial)
    d, c, m = cfg.model_channels, cfg.context_dim, context_tokens
    per_token = 4 * d * d + 2 * d * d + 2 * d * cfg.mlp_hidden  # self-attn q,k,v,out; cross-attn q,out; MLP
    per_block = s * per_token + m * 2 * c * d + 2 * s * s * d + 2 * s * m * d
    io = s * (cfg.in_features * d + d * cfg.patch_volume * cfg.latent_channels)
    return 2.0 * (cfg.num_blocks * per_block + io)


def run_config(name: str, args, dd_dir: Path, cv_dir: Path, tokens: torch.Tensor, device, dtype) -> dict:
    opts = dict(CONFIGS[name])
    batch_guidance = opts.pop("batch_guidance", True)
    sampler = SamplerConfig(num_steps=args.steps, batch_guidance=batch_guidance)
    t0 = time.perf_counter()
    dd = DiffusionDecoder(dd_dir, cv_dir, device=device, dtype=dtype, sampler=sampler, **opts)
    startup = time.perf_counter() - t0
    if not args.cold:  # warm-up with 2 steps: kernel selection, torch.compile, TorchScript's profiling runs
        dd.sampler = SamplerConfig(num_steps=2, batch_guidance=batch_guidance)
        dd.decode_tokens(tokens, seed=args.seed)
        dd.sampler = sampler
    video = dd.decode_tokens(tokens, seed=args.seed)
    st = dd.stats
    warm = ""
    if args.cold:
        dd.decode_tokens(tokens, seed=args.seed)
        warm = (
            f"first step {st.step_s[0]:.2f}s; warm call: sampling {dd.stats.sample_s:.2f}s, "
            f"CV decode {dd.stats.tokenizer_decode_s:.2f}s"
        )
    cfg = dd.dit_config
    lat = (8, 2 * tokens.shape[2], 2 * tokens.shape[3])
    step = statistics.median(st.step_s)
    flops = 2 * dit_flops(cfg, lat, dd.context.shape[1])  # conditional + unconditional
    row = dict(
        config=name,
        step_s=step,
        sample_s=st.sample_s,
        cv_decode_s=st.tokenizer_decode_s,
        total_s=st.total_s,
        load_in_call_s=st.load_network_s + st.load_tokenizer_s,
        startup_s=startup,
        peak_gib=st.peak_memory_gib,
        tflops=flops / step / 1e12,
        frames=video.shape[2],
        finite=bool(torch.isfinite(video).all()),
        warm=warm,
    )
    dd.close()
    del dd, video
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny presets on CPU in fp32 (seconds)")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help=f"comma-separated, from {', '.join(CONFIGS)}")
    parser.add_argument("--decoder-dir", type=Path, help="existing decoder folder (model.pt, aux_vars.pt)")
    parser.add_argument("--tokenizer-dir", type=Path, help="existing CV8x8x8 folder (decoder.jit, mean_std.pt)")
    parser.add_argument(
        "--work-dir", type=Path, help="keep the random folders here and reuse them in later runs (default: a temp dir)"
    )
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--cold", action="store_true", help="no warm-up call: the figures of a process's first call")
    args = parser.parse_args()
    names = [c for c in args.configs.split(",") if c]
    unknown = [c for c in names if c not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown configs {unknown}; choose from {', '.join(CONFIGS)}")

    if args.smoke:
        device, dtype, dit, cv, grid = torch.device("cpu"), torch.float32, "tiny", "tiny", (5, 2, 2)
        trace = dict(dtype=torch.float32, device="cpu", example_shape=(2, 4, 4))
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no GPU: run with --smoke on CPU")
        device, dtype, dit, cv, grid = torch.device("cuda"), torch.bfloat16, "7b", "cv8x8x8", (5, 40, 64)
        trace = dict(dtype=torch.bfloat16, device="cuda", example_shape=(2, 16, 16))
    tokens = torch.randint(0, CODEBOOK_SIZE, (1, *grid), generator=torch.Generator().manual_seed(args.seed))

    with contextlib.ExitStack() as stack:
        # --work-dir keeps the random folders for the next run (writing the 14.5 GB model.pt takes a while).
        root = args.work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        t = time.perf_counter()
        dd_dir, cv_dir = args.decoder_dir, args.tokenizer_dir
        if dd_dir is None:
            dd_dir = root / f"dd-{dit}"
            if not (dd_dir / "model.pt").is_file() or not (dd_dir / "aux_vars.pt").is_file():
                write_random_decoder(dd_dir, dit, seed=0, dtype=torch.bfloat16, device=device)
        if cv_dir is None:
            cv_dir = root / f"cv-{cv}"
            if not (cv_dir / "decoder.jit").is_file() or not (cv_dir / "mean_std.pt").is_file():
                write_random_cv_tokenizer(cv_dir, cv, seed=0, **trace)
        setup = time.perf_counter() - t
        gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        print(
            f"# diffusion decoder: {gpu}, torch {torch.__version__}, {dtype}, DiT {dit}, CV {cv}, "
            f"tokens {list(tokens.shape)} -> {1 + 8 * (grid[0] - 1)} frames at {16 * grid[1]}x{16 * grid[2]}, "
            f"{args.steps} steps; folders ready in {setup:.1f}s "
            f"({'given' if args.decoder_dir else 'random weights'})"
        )
        rows = []
        for name in names:
            try:
                rows.append(run_config(name, args, dd_dir, cv_dir, tokens, device, dtype))
            except Exception as err:  # noqa: BLE001 - one failing option (e.g. no TE) must not lose the others
                rows.append(dict(config=name, error=f"{type(err).__name__}: {err}".splitlines()[0][:200]))
            if device.type == "cuda":
                torch.cuda.empty_cache()

    print(
        "| config | s/step | sampling s | CV decode s | total s | loads in call s | startup s | peak GiB | "
        "DiT TFLOP/s | frames |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['config']} | failed: {r['error']} |||||||||")
            continue
        peak = "n/a" if r["peak_gib"] is None else f"{r['peak_gib']:.1f}"
        print(
            f"| {r['config']} | {r['step_s']:.3f} | {r['sample_s']:.2f} | {r['cv_decode_s']:.2f} | "
            f"{r['total_s']:.2f} | {r['load_in_call_s']:.2f} | {r['startup_s']:.1f} | {peak} | "
            f"{r['tflops']:.1f} | {r['frames']}{'' if r['finite'] else ' (non-finite!)'} |"
        )
    for r in rows:
        if r.get("warm"):
            print(f"# {r['config']} (cold): {r['warm']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
