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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="4b")
    p.add_argument("--grid", default="5x40x64")
    p.add_argument("--prompt-frames", default="1,2", help="latent frames of prompt (1: image, 2: 9-frame video)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="stop after this many generated tokens")
    p.add_argument("--top-p", type=float, default=0.8)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.model, args.grid, args.max_new_tokens = "tiny", "5x4x6", 24

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
    rows = []
    for frames in (int(x) for x in args.prompt_frames.split(",")):
        num_prompt = frames * hw
        total = (
            cfg.seq_length if args.max_new_tokens is None else min(cfg.seq_length, num_prompt + args.max_new_tokens)
        )
        prompt = torch.randint(0, cfg.vocab_size, (1, num_prompt), generator=torch.Generator().manual_seed(frames))
        rng = torch.Generator(device=device).manual_seed(0)
        generate_tokens(model, prompt, min(total, num_prompt + 8), sampling, rng)  # warm-up (kernels, allocator)
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        _, stats = generate_tokens(model, prompt, total, sampling, rng)
        wall = time.perf_counter() - t
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
        rows.append((frames, num_prompt, stats.generated_tokens, stats.prefill_s, stats.tokens_per_s, wall, peak))

    name = torch.cuda.get_device_name() if cuda else "CPU"
    print(f"\n{cfg.name} ({cfg.n_layers} layers, dim {cfg.dim}), grid {args.grid}, {dtype}, {name}, batch 1, eager\n")
    print("| prompt | prompt tokens | generated | prefill s | decode tokens/s | total s | peak GiB |")
    print("|---|---|---|---|---|---|---|")
    for f, n, g, pre, tps, wall, peak in rows:
        mem = f"{peak:.1f}" if cuda else "-"
        print(f"| {f} latent frame(s) | {n:,} | {g:,} | {pre:.2f} | {tps:.1f} | {wall:.1f} | {mem} |")


if __name__ == "__main__":
    main()
