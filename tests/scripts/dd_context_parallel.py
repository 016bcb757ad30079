"""The diffusion decoder's guidance split with context parallelism under torchrun (4 ranks, gloo on CPU), for
test_dd_guidance_split.

    torchrun --nproc-per-node 4 dd_context_parallel.py --spec spec.json

``spec.json`` names the tiny decoder folder (``decoder``), its CV8x8x8 folder (``cv``), a copy of the decoder folder
whose ``model.pt`` is truncated (``broken``) and an output folder (``out``). Rank 0 writes ``results.json`` there:

* the split each rank got (role, context index and size, whether it makes frames) and what its ``decode_tokens``
  returned (a video on rank 0 only) and whether it loaded a CV8x8x8 decoder;
* ``cp.pt``: rank 0's video of a 9-latent-frame grid (two chunks), and ``single.pt``: the same grid and seed decoded
  by rank 0 alone, the two passes one after the other;
* rank 2 runs ``warm_kernels`` alone (it must not wait for the other ranks);
* ``broken``: with offloading, rank 3's next load reads the truncated ``model.pt``: the error class and message each
  rank raised (all must raise; none may wait for the others).
"""

import argparse
import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
from dd_split_common import finish


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True)
    spec = json.loads(Path(ap.parse_args().spec).read_text())
    from nemo_cosmos_ar.diffusion_decoder.config import SamplerConfig
    from nemo_cosmos_ar.diffusion_decoder.parallel import make_split
    from nemo_cosmos_ar.diffusion_decoder.pipeline import DiffusionDecoder

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    split = make_split(rank, world, context_parallel=True)
    out = Path(spec["out"])
    tokens = torch.randint(0, 64000, (1, 9, 2, 2), generator=torch.Generator().manual_seed(3))
    dd = DiffusionDecoder(spec["decoder"], spec["cv"], device="cpu", split=split)
    video = dd.decode_tokens(tokens, seed=11)
    if rank == 2:  # the warm-up runs one rank alone (generate calls it at each rank's load): no collective in it
        dd.warm_kernels((2, 2))
    mine = {
        "role": split.role,
        "cp": [split.cp.index, split.cp.size],
        "makes_frames": split.makes_frames,
        "returned_video": video is not None,
        "loaded_cv": dd.tokenizer is not None,
    }
    everyone = [None] * world
    dist.all_gather_object(everyone, mine)
    results: dict = {"ranks": everyone, "chunks": dd.stats.chunks}
    if rank == 0:
        torch.save(video, out / "cp.pt")
        single = DiffusionDecoder(
            spec["decoder"], spec["cv"], device="cpu", sampler=SamplerConfig(batch_guidance=False)
        )
        torch.save(single.decode_tokens(tokens, seed=11), out / "single.pt")
    dist.barrier()

    finish(results, out, spec, split, tokens, failing_rank=3)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
