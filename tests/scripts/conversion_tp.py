"""torchrun --nproc_per_node=2 conversion_tp.py WORKDIR (after conversion_roundtrip.py filled WORKDIR).

1. imports WORKDIR/model.pt at TP=2 into WORKDIR/nemo_tp2 (each rank saves its shards);
2. loads the TP=1 import WORKDIR/nemo_tp1 at TP=2 and saves the gathered fp32 logits (logits_tp1_at_tp2.pt);
3. loads nemo_tp2 at TP=2 too (logits_tp2_at_tp2.pt), and rank 0 exports nemo_tp2 back to model.pt (back_tp2).
"""

import sys
from pathlib import Path

import torch


def main() -> None:
    import os

    from nemo_cosmos_ar.conversion.logits import compute_logits
    from nemo_cosmos_ar.runtime import prepare_process

    prepare_process()  # this script is an entry point: the CUDA stand-ins on CPU
    from nemo_cosmos_ar.nemo_glue.connectors import CosmosARImporter, CosmosARPTExporter

    work = Path(sys.argv[1])
    rank = int(os.environ["RANK"])
    CosmosARImporter(str(work / "model.pt"))(output_path=work / "nemo_tp2", tensor_model_parallel_size=2)
    assert (work / "nemo_tp2" / "weights" / ".metadata").exists()
    tokens = torch.load(work / "tokens.pt", weights_only=True)
    for src, name in (("nemo_tp1", "logits_tp1_at_tp2.pt"), ("nemo_tp2", "logits_tp2_at_tp2.pt")):
        logits = compute_logits(work / src, tokens)
        if rank == 0:
            torch.save(logits, work / name)
    if rank == 0:
        CosmosARPTExporter(str(work / "nemo_tp2"))(output_path=work / "back_tp2")
        print("CONVERSION_TP_OK")


if __name__ == "__main__":
    main()
