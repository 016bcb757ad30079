"""Token generation speed of ``cosmos-ar generate``'s decoder (KV cache, top-p sampling) with random weights.

The plain-PyTorch reference transformer with the real 4B shapes (16 layers, 4096 hidden, GQA 32/8), bf16 on one GPU,
batch 1, grid 5x40x64 (640x1024, 33 frames). For a 1-frame prompt (2,560 tokens, image input) and a 2-frame prompt
(5,120, 9-frame video input) it prints prefill time, decode tokens/s and peak memory as a markdown table. The
tokenizer is not included (its encode/decode run once per video; see bench_tokenizer.py).

    python bench/bench_generate.py                       # 4B, both prompts, the whole grid
    python bench/bench_generate.py --max-new-tokens 2048 # shorter: only the first 2,048 generated tokens
    python bench/bench_generate.py --smoke               # CPU, tiny model (checks the script)
"""

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def check_step_modes(model, cfg, hw: int, steps: int, sampling, device, cuda: bool) -> None:
    """Decode ``steps`` tokens after a one-frame prompt in each step mode and compare every logit vector with a
    teacher-forced forward over the result: eager and CUDA-graph decoding must agree with it equally well."""
    from nemo_cosmos_ar.inference.generator import generate_tokens

    prompt = torch.randint(0, cfg.vocab_size, (1, hw), generator=torch.Generator().manual_seed(1))
    print("| step mode | steps | max abs logit diff vs teacher-forced | top-1 agreement |")
    print("|---|---|---|---|")
    for mode in ("dynamic", "static") + (("graph",) if cuda else ()):
        seen = {}
        try:
            rng = torch.Generator(device=device).manual_seed(0)
            out, _ = generate_tokens(model, prompt, hw + steps, sampling, rng, step_mode=mode,
                                     on_logits=lambda p, lg: seen.__setitem__(p, lg.float().clone()))
        except RuntimeError as err:
            print(f"| {mode} | {steps} | failed: {str(err).splitlines()[0][:200]} | - |")
            continue
        with torch.no_grad():
            full = model(out).float()
        got = torch.stack([seen[p] for p in range(hw, hw + steps)], 1)
        ref = full[:, hw - 1 : hw + steps - 1]
        agree = (got.argmax(-1) == ref.argmax(-1)).float().mean().item()
        print(f"| {mode} | {steps} | {(got - ref).abs().max().item():.3g} | {agree:.3f} |")
    print()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="4b")
    p.add_argument("--grid", default="5x40x64")
    p.add_argument("--prompt-frames", default="1,2", help="latent frames of prompt (1: image, 2: 9-frame video)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="stop after this many generated tokens")
    p.add_argument("--top-p", type=float, default=0.8)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--step-mode", default="auto", help="auto (CUDA graph on GPU), graph, static or dynamic (eager)")
    p.add_argument("--check", type=int, default=64,
                   help="first compare this many decoded steps of each step mode with a teacher-forced forward")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.model, args.grid, args.max_new_tokens, args.check = "tiny", "5x4x6", 24, 16

    from nemo_cosmos_ar.inference.generator import generate_tokens
    from nemo_cosmos_ar.inference.sampling import SamplingConfig
    from nemo_cosmos_ar.model.presets import get_preset
    from nemo_cosmos_ar.model.reference import ReferenceTransformer

    cuda = torch.cuda.is_available() and not args.smoke
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    grid = tuple(int(x) for x in args.grid.split("x"))
    cfg = get_preset(args.model).with_latent_shape(grid)
    # Random weights drawn on the device (no 16 GB CPU init); scales as ReferenceTransformer.init_random, so the
    # logits spread like a trained model's rather than being flat.
    with torch.device("meta"):
        model = ReferenceTransformer(cfg)
    model = model.to_empty(device=device).to(dtype).eval().requires_grad_(False)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, w in model.named_parameters():
            if w.ndim == 1:
                w.normal_(1.0, 0.1)
            else:
                w.normal_(0.0, 0.02 * (50.0 if "tok_embeddings" in name else 1.0))
    sampling = SamplingConfig(temperature=args.temperature, top_p=args.top_p)
    hw = grid[1] * grid[2]
    if args.check:
        check_step_modes(model, cfg, hw, args.check, sampling, device, cuda)
    rows = []
    for frames in (int(x) for x in args.prompt_frames.split(",")):
        num_prompt = frames * hw
        total = (
            cfg.seq_length if args.max_new_tokens is None else min(cfg.seq_length, num_prompt + args.max_new_tokens)
        )
        prompt = torch.randint(0, cfg.vocab_size, (1, num_prompt), generator=torch.Generator().manual_seed(frames))
        rng = torch.Generator(device=device).manual_seed(0)
        # warm-up (kernels, allocator)
        generate_tokens(model, prompt, min(total, num_prompt + 8), sampling, rng, step_mode=args.step_mode)
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        _, stats = generate_tokens(model, prompt, total, sampling, rng, step_mode=args.step_mode)
        wall = time.perf_counter() - t
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
        rows.append((frames, num_prompt, stats.generated_tokens, stats.prefill_s, stats.tokens_per_s, wall, peak))

    name = torch.cuda.get_device_name() if cuda else "CPU"
    print(f"\n{cfg.name} ({cfg.n_layers} layers, dim {cfg.dim}), grid {args.grid}, {dtype}, {name}, batch 1, "
          f"step mode {args.step_mode}\n")
    print("| prompt | prompt tokens | generated | prefill s | decode tokens/s | total s | peak GiB |")
    print("|---|---|---|---|---|---|---|")
    for f, n, g, pre, tps, wall, peak in rows:
        mem = f"{peak:.1f}" if cuda else "-"
        print(f"| {f} latent frame(s) | {n:,} | {g:,} | {pre:.2f} | {tps:.1f} | {wall:.1f} | {mem} |")


if __name__ == "__main__":
    main()
