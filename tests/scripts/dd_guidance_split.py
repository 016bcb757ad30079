"""The diffusion decoder's guidance split under torchrun (2 ranks, gloo on CPU), for test_diffusion_decoder.

    torchrun --nproc-per-node 2 dd_guidance_split.py --spec spec.json

``spec.json`` names the tiny decoder folder (``decoder``), its CV8x8x8 folder (``cv``), a copy of the decoder folder
whose ``model.pt`` is truncated (``broken``) and an output folder (``out``). Rank 0 writes ``results.json`` there:

* ``split``: rank 0's video from the split decode of a 9-latent-frame grid (two chunks), saved as ``split.pt``; rank 1's
  return value (must be None) and whether rank 1 loaded a CV8x8x8 decoder;
* ``single_unbatched`` / ``single_batched``: the same grid and seed decoded by rank 0 alone, the two passes one after
  the other (``batch_guidance=False``) and as one batch of two, saved beside it;
* ``broken``: with offloading, rank 1's next load reads the truncated ``model.pt`` (rank 0's the good one): the error
  class and message each rank raised (both must raise; neither may wait for the other).
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
    from nemo_cosmos_ar.diffusion_decoder.parallel import split_for_rank
    from nemo_cosmos_ar.diffusion_decoder.pipeline import DiffusionDecoder

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    split = split_for_rank(rank, world)
    out = Path(spec["out"])
    tokens = torch.randint(0, 64000, (1, 9, 2, 2), generator=torch.Generator().manual_seed(3))
    dd = DiffusionDecoder(spec["decoder"], spec["cv"], device="cpu", split=split)
    video = dd.decode_tokens(tokens, seed=11)
    results: dict = {"rank1_returned_none": None, "rank1_loaded_cv": None}
    flags = [video is None, dd.tokenizer is not None]
    gathered = [None, None]
    dist.all_gather_object(gathered, flags)
    results["rank1_returned_none"], results["rank1_loaded_cv"] = gathered[1]
    results["rank0_chunks"] = dd.stats.chunks
    if rank == 0:
        torch.save(video, out / "split.pt")
        for name, batched in (("single_unbatched", False), ("single_batched", True)):
            single = DiffusionDecoder(
                spec["decoder"], spec["cv"], device="cpu", sampler=SamplerConfig(batch_guidance=batched)
            )
            torch.save(single.decode_tokens(tokens, seed=11), out / f"{name}.pt")
    dist.barrier()

    finish(results, out, spec, split, tokens, failing_rank=1)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
