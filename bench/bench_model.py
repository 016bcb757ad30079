"""Forward + backward + optimizer step of the Cosmos AR transformer in raw Megatron-Core on one GPU.

Real 4B shapes (16 layers, 4096 hidden), batch 1, bf16 weights with torch's fused AdamW (pure bf16, the way
cosmos-predict1 post-trains), the cosmos loss (masked CE + z-loss) on vocab-parallel logits. For each token grid it
prints step time, model TFLOP/s (6·N·S + causal attention, see ``CosmosARConfig.train_flops_per_token``), tokens/s
and peak memory as a markdown table.

    python bench/bench_model.py                          # 4B, grids 5x24x40, 5x40x53, 5x40x64
    COSMOS_AR_SPEC=local python bench/bench_model.py     # force the non-TE spec (torch SDPA core attention)
    python bench/bench_model.py --smoke                  # CPU, tiny model (checks the script)
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="4b")
    p.add_argument("--grids", default="5x24x40,5x40x53,5x40x64")
    p.add_argument("--layers", type=int, default=None, help="override the layer count (memory)")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.model, args.grids, args.steps, args.warmup = "tiny", "3x4x6", 3, 1

    from nemo_cosmos_ar.model.layer_spec import resolve_spec_name
    from nemo_cosmos_ar.model.loss import cosmos_ar_loss, first_frame_loss_mask
    from nemo_cosmos_ar.model.mcore import build_gpt_model
    from nemo_cosmos_ar.model.presets import get_preset
    from nemo_cosmos_ar.runtime import init_megatron

    device = init_megatron(tp=1)
    cuda = device.type == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32
    rows = []
    for grid_s in args.grids.split(","):
        grid = tuple(int(x) for x in grid_s.split("x"))
        cfg = get_preset(args.model).with_latent_shape(grid)
        if args.layers:
            cfg.n_layers = args.layers
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        model = build_gpt_model(cfg, params_dtype=dtype, use_cpu_initialization=not cuda).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.05, fused=cuda)
        s = cfg.seq_length - 1
        g = torch.Generator().manual_seed(0)
        clip = torch.randint(0, cfg.vocab_size, (1, cfg.seq_length), generator=g).to(device)
        tokens, labels = clip[:, :-1], clip[:, 1:]
        pos = torch.arange(s, device=device)[None]
        mask = first_frame_loss_mask(grid).to(device)[None]
        times, losses = [], []
        for i in range(args.warmup + args.steps):
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            logits = model(tokens, pos, None)
            loss, _ = cosmos_ar_loss(logits, labels, mask)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if cuda:
                torch.cuda.synchronize()
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
            losses.append(loss.item())
        dt = statistics.median(times)
        flops = cfg.train_flops_per_token(s) * s
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
        rows.append((grid_s, s, cfg.n_layers, dt * 1e3, flops / dt / 1e12, s / dt, peak, losses[0], losses[-1]))
        del model, opt, logits, loss
    print(
        f"\nspec={resolve_spec_name()} device={torch.cuda.get_device_name() if cuda else 'cpu'} "
        f"torch={torch.__version__} dtype={dtype}"
    )
    print("| grid | tokens | layers | ms/step | model TFLOP/s | tokens/s | peak GiB | loss first -> last |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r[0]} | {r[1]:,} | {r[2]} | {r[3]:.0f} | {r[4]:.0f} | {r[5]:,.0f} | {r[6]:.1f} | {r[7]:.3f} -> {r[8]:.3f} |"
        )


if __name__ == "__main__":
    main()
