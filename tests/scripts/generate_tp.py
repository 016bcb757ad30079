"""Tensor-parallel generation under torchrun (gloo on CPU): every check of test_generate_checkpoints in one launch.

    torchrun --nproc-per-node 2 generate_tp.py --spec spec.json

``spec.json`` (written by the test) names the checkpoints, the tiny tokenizer and image, the TP=1 results to match
(``expected``: a torch file) and an output folder. Rank 0 writes ``results.json`` there:

* per checkpoint (model.pt, its TP=2 shards, the NeMo checkpoint of a training run): whether greedy tokens equal
  TP=1's (also by speculative decoding, window 4, first prompt), the max |logit difference| from TP=1 over every decoded position (fp32), and whether seeded top-p tokens
  equal TP=1's;
* the exit codes of ``cosmos-ar generate --num_gpus 2`` on one image and of a 3-line batch with one bad line (their
  outputs are checked by the test; only rank 0 may write them);
* with ``tiny_guardrails`` (the single run's --checkpoint-dir holds test_guardrails' tiny weights): how many times
  each rank loaded each guardrail model (only rank 0 may);
* how many diffusion decoders each rank built, and how many videos each decoded with one (ranks 0 and 1: one pass
  of the guidance each);
* with ``cli_off`` (the single run with ``--diffusion-decoder-parallel off``): its exit code and the decoders each
  rank built and ran;
* with ``batch_dd``: its exit code and how many decodes each rank ran in it.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True)
    spec = json.loads(Path(ap.parse_args().spec).read_text())

    from nemo_cosmos_ar.cli import main as cli
    from nemo_cosmos_ar.inference import checkpoints as ck
    from nemo_cosmos_ar.inference import engine as en
    from nemo_cosmos_ar.inference import generator as gen
    from nemo_cosmos_ar.inference.sampling import SamplingConfig

    device = en.init_parallel(2, torch.device("cpu"))
    rank = int(os.environ["RANK"])
    expected = torch.load(spec["expected"], weights_only=True)
    prompt, total, grid = expected["prompt"], int(expected["total"]), tuple(expected["grid"])
    results: dict = {}
    for name, path in spec["checkpoints"].items():
        eng = en.load_engine(ck.open_checkpoint(path).with_latent_shape(grid), 2, device, torch.float32)
        seen: list[torch.Tensor] = []
        out, _ = gen.generate_tokens(
            eng,
            prompt,
            total,
            SamplingConfig(temperature=0.0),
            on_logits=lambda p, lg, seen=seen: seen.append(lg.clone()),
        )
        sampled, _ = gen.generate_tokens(
            eng, prompt, total, SamplingConfig(temperature=1.0, top_p=None, top_k=50), torch.Generator().manual_seed(5)
        )
        ref = expected[spec["reference_of"][name]]
        # speculative decoding at TP=2 (gathered logits, the same draws on both ranks): TP=1's greedy tokens
        spec_greedy, _ = gen.generate_tokens(
            eng, prompt[:1], total, SamplingConfig(temperature=0.0), options=gen.DecodeOptions(speculative=4)
        )
        results[name] = {
            "speculative_greedy_equal": bool(torch.equal(spec_greedy, ref["greedy"][:1])),
            "greedy_equal": bool(torch.equal(out, ref["greedy"])),
            "max_logit_diff": float((torch.stack(seen) - ref["logits"]).abs().max()),
            "sampled_equal": bool(torch.equal(sampled, ref["sampled"])),
            "rank_shard_rows": int(eng.model.output_layer.weight.shape[0]),
        }
    out = Path(spec["out"])
    loads = {"safety": 0, "face": 0, "dd_built": 0, "dd_decoded": 0}
    from nemo_cosmos_ar.diffusion_decoder import pipeline as ddp

    def counted(key, real):
        return lambda *a, **kw: loads.__setitem__(key, loads[key] + 1) or real(*a, **kw)

    ddp.DiffusionDecoder.__init__ = counted("dd_built", ddp.DiffusionDecoder.__init__)
    ddp.DiffusionDecoder.decode_tokens = counted("dd_decoded", ddp.DiffusionDecoder.decode_tokens)
    if spec.get("tiny_guardrails"):
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from test_guardrails import tiny_retinaface

        from nemo_cosmos_ar.guardrails import face_blur, runner

        face_blur.retinaface_resnet50 = tiny_retinaface  # the architecture of the tiny weights
        for key, name in (("safety", "load_safety_filter"), ("face", "load_face_detector")):
            setattr(runner, name, counted(key, getattr(runner, name)))
    results["cli_rc"] = cli(spec["cli"])
    per_rank = [None, None]
    torch.distributed.all_gather_object(per_rank, loads)
    results["guardrail_loads"] = per_rank
    results["batch_rc"] = cli(spec["batch"])
    if spec.get("cli_off"):  # --diffusion-decoder-parallel off: rank 0 alone builds and runs the decoder
        before = dict(loads)
        results["cli_off_rc"] = cli(spec["cli_off"])
        built = [None, None]
        torch.distributed.all_gather_object(built, [loads[k] - before[k] for k in ("dd_built", "dd_decoded")])
        results["cli_off_dd"] = built
    if spec.get("batch_dd"):  # a batch with the diffusion decoder: each video's decode on both ranks
        before = dict(loads)
        results["batch_dd_rc"] = cli(spec["batch_dd"])
        decodes = [None, None]
        torch.distributed.all_gather_object(decodes, loads["dd_decoded"] - before["dd_decoded"])
        results["batch_dd_decodes"] = decodes
    if rank == 0:
        (out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
