"""``cosmos-ar generate`` on four ranks under torchrun (gloo on CPU), for test_generate_context_parallel: TP=4 for
the AR model and the diffusion decoder's guidance split with context parallelism (two ranks a pass).

    torchrun --nproc-per-node 4 generate_cp.py --spec spec.json

``spec.json`` holds the command (``cli``), the same with ``--diffusion-decoder-parallel guidance`` (``cli_guidance``)
and an output folder (``out``). Rank 0 writes ``results.json`` there: per command, each rank's exit code, how many
diffusion decoders it built, how many grids it decoded with one and its decoder's context-parallel place.
"""

import argparse
import json
import os
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True)
    spec = json.loads(Path(ap.parse_args().spec).read_text())
    from nemo_cosmos_ar.cli import main as cli
    from nemo_cosmos_ar.diffusion_decoder import pipeline as ddp

    seen = {"built": 0, "decoded": 0, "cp": None}
    init, decode = ddp.DiffusionDecoder.__init__, ddp.DiffusionDecoder.decode_tokens

    def built(self, *a, **kw):
        init(self, *a, **kw)
        seen["built"] += 1
        seen["cp"] = None if self.split is None or self.split.cp is None else [self.split.cp.index, self.split.cp.size]

    def decoded(self, *a, **kw):
        seen["decoded"] += 1
        return decode(self, *a, **kw)

    ddp.DiffusionDecoder.__init__, ddp.DiffusionDecoder.decode_tokens = built, decoded
    results = {}
    for name in ("cli", "cli_guidance"):
        seen.update(built=0, decoded=0, cp=None)
        rc = cli(spec[name])
        per_rank = [None] * int(os.environ["WORLD_SIZE"])
        torch.distributed.all_gather_object(per_rank, {"rc": rc, **seen})
        results[name] = per_rank
    if int(os.environ["RANK"]) == 0:
        (Path(spec["out"]) / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
