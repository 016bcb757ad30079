"""The diffusion decoder's context parallelism on the GPU's own kernels (issue 13): two ranks on ONE GPU, over gloo
(NCCL refuses two ranks on one device; the point here is the kernels at the real shapes, not the speed).

A 2-block slice of the 7B DiT (real widths, random weights, the same seed on both ranks) runs one batch-1 forward
at the real 20,480 tokens, whole on rank 0 and cut over the two ranks by ``ContextParallel``; rank 0 prints the
largest difference relative to the output's largest value, for bf16 and FP8 GEMMs. With Triton's norm/RoPE kernels,
cuDNN's attention and the FP8 kernels, each rank's slice has other shapes than the whole, so rounding differs.

    torchrun --nproc-per-node 2 bench/check_dd_cp_gpu.py
    torchrun --nproc-per-node 2 bench/check_dd_cp_gpu.py --smoke --json out.json   # CPU, tiny DiT (the GPU tier's
                                                                                   # rehearsal)
``--json``: rank 0 also writes ``{gemm: {"max_rel_diff": .., "bit_equal": ..}}`` there (tests/test_gpu.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nemo_cosmos_ar.diffusion_decoder.config import get_dit_config  # noqa: E402
from nemo_cosmos_ar.diffusion_decoder.network import DiffusionDecoderDiT  # noqa: E402
from nemo_cosmos_ar.diffusion_decoder.parallel import ContextParallel  # noqa: E402


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="CPU, the tiny DiT, bf16 GEMMs only")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    dev = torch.device("cpu") if args.smoke else torch.device("cuda", 0)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    cfg = get_dit_config("tiny") if args.smoke else dataclasses.replace(get_dit_config("7b"), num_blocks=2)
    t, h, w = (8, 8, 12) if args.smoke else (8, 80, 128)
    results = {}
    for gemm in ("bf16",) if args.smoke else ("bf16", "fp8"):
        torch.manual_seed(0)
        with torch.device(dev):
            net = DiffusionDecoderDiT(cfg)
        net = net.to(torch.bfloat16).eval().requires_grad_(False)
        net.set_gemm(gemm)
        g = torch.Generator(device=dev).manual_seed(1)
        x = torch.randn(1, cfg.latent_channels, t, h, w, device=dev, dtype=torch.bfloat16, generator=g)
        ctx = torch.randn(1, 512, cfg.context_dim, device=dev, dtype=torch.bfloat16, generator=g)
        tok = torch.randint(0, cfg.token_vocab_size, (1, t, h // 2, w // 2), device=dev, generator=g)
        c_noise = torch.tensor(0.5, device=dev, dtype=torch.bfloat16)
        whole = net(x, c_noise, ctx, tok, 24.0) if rank == 0 else None
        net.set_context_parallel(ContextParallel(rank, world))
        cut = net(x, c_noise, ctx, tok, 24.0)
        if rank == 0:
            diff = (cut.float() - whole.float()).abs().max().item() / whole.float().abs().max().item()
            same = (cut == whole).float().mean().item()
            print(f"{gemm}: context-parallel (2 ranks) vs whole: max |diff| / max |whole| = {diff:.2e}, "
                  f"bit-equal values {same:.4f}, output {tuple(cut.shape)}", flush=True)  # fmt: skip
            results[gemm] = {"max_rel_diff": diff, "bit_equal": same, "shape": list(cut.shape)}
        del net
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        dist.barrier()
    if rank == 0 and args.json:
        args.json.write_text(json.dumps(results))
    dist.destroy_process_group()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "4")
    main()
