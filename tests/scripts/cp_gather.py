"""``ContextParallel.gather`` on four ranks (gloo on CPU), for test_dd_guidance_split: each rank holds its span of a
known tensor of 12, 13, 14 or 15 rows (even and uneven splits), along dim 0 or 1; every rank must get the whole back.
Exits non-zero on any mismatch.

    torchrun --nproc-per-node 4 cp_gather.py
"""

import os

import torch
import torch.distributed as dist


def main() -> None:
    from nemo_cosmos_ar.diffusion_decoder.parallel import ContextParallel

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    cp = ContextParallel(rank, world)
    for total in (12, 13, 14, 15):
        whole = torch.arange(total * 6, dtype=torch.float32).reshape(total, 2, 3)
        for dim in (0, 1):
            full = whole.movedim(0, dim)
            lo, hi = cp.span(total)
            got = cp.gather(full.narrow(dim, lo, hi - lo), dim)
            if not torch.equal(got, full):
                raise SystemExit(f"rank {rank}: total {total}, dim {dim}: gathered {got.shape} differs")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
