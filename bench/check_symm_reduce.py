"""Check ``inference/symm_reduce.SymmReducer`` against a plain sum, eagerly and replayed in a CUDA graph, and time it
against the process group's all-reduce (issue 13, ``--decode-reduce``).

Under ``torchrun --nproc-per-node N`` on N GPUs (rank r on GPU r, NCCL). It cannot run with ranks sharing a GPU:
torch's symmetric memory refuses allocations of several ranks on one device at rendezvous (tried on the one-GPU
H200, call h5). Each round every rank reduces a fresh bf16 row of ``--numel`` values (the 4B's hidden size: 4,096) drawn from a seed
of (round, rank), and compares with the sum of all ranks' rows computed locally in fp32 and rounded once to bf16
(at two ranks exactly what both all-reduces must return). Then ``--reps`` reduces captured in one CUDA graph are
replayed and timed: us per all-reduce.

    torchrun --nproc-per-node 2 bench/check_symm_reduce.py
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cuda_timing import median_ms  # noqa: E402

from nemo_cosmos_ar.inference import symm_reduce  # noqa: E402


def rows(rnd: int, world: int, numel: int, device) -> list[torch.Tensor]:
    return [
        torch.randn(numel, generator=torch.Generator().manual_seed(1000 * rnd + r)).to(torch.bfloat16).to(device)
        for r in range(world)
    ]


def graph_us(fn, x: torch.Tensor, reps: int) -> float:
    """us per call of ``fn(x)`` over ``reps`` calls captured in one CUDA graph (median of 10 replays)."""
    out = fn(x)  # warm-up outside the capture
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(reps):
            out = fn(out)
    return median_ms(g.replay, 10, warmup=0, before=lambda: (dist.barrier(), torch.cuda.synchronize())) * 1e3 / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--numel", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=64)
    args = ap.parse_args()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    count = torch.cuda.device_count()
    if int(os.environ.get("WORLD_SIZE", "1")) > count:
        raise SystemExit(
            f"{os.environ.get('WORLD_SIZE')} ranks but {count} GPU(s): symmetric memory needs a GPU per rank"
        )
    device = torch.device("cuda", local)
    torch.cuda.set_device(device)
    dist.init_process_group("nccl")
    rank, world = dist.get_rank(), dist.get_world_size()
    group = dist.group.WORLD
    reducer = symm_reduce.SymmReducer(group, args.numel, torch.bfloat16, device)
    worst = 0.0
    for rnd in range(args.rounds):
        xs = rows(rnd, world, args.numel, device)
        want = torch.stack([x.float() for x in xs]).sum(0).to(torch.bfloat16)
        got = reducer(xs[rank].clone())
        worst = max(worst, (got.float() - want.float()).abs().max().item())
    # in a CUDA graph: the captured reduce of a row updated in place before each replay
    x = torch.empty(args.numel, dtype=torch.bfloat16, device=device)
    g = torch.cuda.CUDAGraph()
    reducer(x.zero_())
    torch.cuda.synchronize()
    with torch.cuda.graph(g):
        y = reducer(x)
    graph_worst = 0.0
    for rnd in range(args.rounds, 2 * args.rounds):
        xs = rows(rnd, world, args.numel, device)
        x.copy_(xs[rank])
        dist.barrier()
        g.replay()
        torch.cuda.synchronize()
        want = torch.stack([v.float() for v in xs]).sum(0).to(torch.bfloat16)
        graph_worst = max(graph_worst, (y.float() - want.float()).abs().max().item())
    halve = 1.0 / world  # keep the chained values bounded
    us_symm = graph_us(lambda v: reducer(v) * halve, x, args.reps)

    def nccl(v):
        dist.all_reduce(v)
        return v * halve

    us_nccl = graph_us(nccl, x.clone(), args.reps)
    if rank == 0:
        print(f"# {world} ranks, one GPU each, NCCL; {args.numel} bf16 values")
        print(f"max |symm - sum| eager {worst:.3g}, in a CUDA graph {graph_worst:.3g} (want 0)")
        print(f"us per all-reduce (+ one scale kernel), {args.reps} in a graph: symm {us_symm:.1f}, NCCL {us_nccl:.1f}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
