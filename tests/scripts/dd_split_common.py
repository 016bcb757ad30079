"""What the two diffusion-decoder split scripts (dd_guidance_split.py, dd_context_parallel.py) share."""

import json
from pathlib import Path

import torch.distributed as dist


def broken_load_errors(spec: dict, split, tokens, failing_rank: int) -> list:
    """Every rank's ``[error class, message]`` (or None) from an offloaded decode in which ``failing_rank``'s next
    load reads the truncated ``model.pt`` in ``spec["broken"]`` (its file replaced between videos): all ranks must
    raise and none may wait for the others."""
    from nemo_cosmos_ar.diffusion_decoder.pipeline import DiffusionDecoder

    broken = DiffusionDecoder(spec["decoder"], spec["cv"], device="cpu", split=split, offload_network=True)
    if dist.get_rank() == failing_rank:
        broken.checkpoint_dir = Path(spec["broken"])
    try:
        broken.decode_tokens(tokens, seed=11)
        mine = None
    except Exception as err:  # noqa: BLE001 - recorded for the test
        mine = [type(err).__name__, " ".join(str(err).split())]
    errors = [None] * dist.get_world_size()
    dist.all_gather_object(errors, mine)
    return errors


def finish(results: dict, out: Path, spec: dict, split, tokens, failing_rank: int) -> None:
    """The scripts' last steps: the failed-load check (``broken_load_errors``), rank 0 writes ``results.json``,
    then every rank leaves the process group."""
    results["broken"] = broken_load_errors(spec, split, tokens, failing_rank)
    if dist.get_rank() == 0:
        (out / "results.json").write_text(json.dumps(results, indent=1))
    dist.barrier()
    dist.destroy_process_group()
