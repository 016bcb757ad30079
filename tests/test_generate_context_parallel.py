"""``cosmos-ar generate --num-gpus 4`` with the diffusion decoder (torchrun, gloo on CPU): the AR model at TP=4 and
the decoder's guidance passes each cut by context parallelism over two ranks. Every rank builds the decoder and runs
its part of the one video; only rank 0 writes; the tokens equal one process's (greedy). With
``--diffusion-decoder-parallel guidance`` only ranks 0 and 1 run the decoder."""

import dataclasses
import json

import torch

from conftest import run_torchrun
from gen_assets import cli_args, make_assets, make_diffusion_decoder
from nemo_cosmos_ar import video_io
from nemo_cosmos_ar.cli import main
from nemo_cosmos_ar.conversion import native_io
from nemo_cosmos_ar.model.presets import get_preset
from nemo_cosmos_ar.model.reference import ReferenceTransformer


def test_four_ranks_tp4_and_context_parallel_decoder(tmp_path):
    assets = make_assets(tmp_path / "assets")
    # the tiny model with 4 key/value heads (tiny has 2): TP=4 needs the groups to split four ways
    cfg = dataclasses.replace(get_preset("tiny"), n_kv_heads=4)
    cfg.to_json(str(tmp_path / "config.json"))
    ref = ReferenceTransformer(cfg).init_random(seed=0)
    native_io.write_model_pt(tmp_path / "model.pt", native_io.iter_native(ref.state_dict(), cfg), cfg)
    weights = make_diffusion_decoder(tmp_path / "weights")
    out = tmp_path / "out"
    out.mkdir()

    def args(output, *extra):
        a = cli_args(assets, assets / "input.png", output, "--checkpoint-dir", str(weights), *extra)
        i = a.index("--model")
        a[i + 1 : i + 4] = [str(tmp_path / "config.json"), "--checkpoint", str(tmp_path / "model.pt")]
        return a + ["--disable-guardrail", "--temperature", "0", "--no-progress"]

    spec = {
        "cli": args(out / "cp.mp4", "--num-gpus", "4", "--save-tokens", str(out / "cp.pt")),
        "cli_guidance": args(out / "guidance.mp4", "--num-gpus", "4", "--diffusion-decoder-parallel", "guidance"),
        "out": str(out),
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    run_torchrun("generate_cp.py", "--spec", str(tmp_path / "spec.json"), nproc=4)
    res = json.loads((out / "results.json").read_text())
    ranks = res["cli"]
    assert [r["rc"] for r in ranks] == [0, 0, 0, 0]
    assert [(r["built"], r["decoded"], r["cp"]) for r in ranks] == [
        (1, 1, [0, 2]),
        (1, 1, [0, 2]),
        (1, 1, [1, 2]),
        (1, 1, [1, 2]),
    ]
    # --diffusion-decoder-parallel guidance: GPUs 0 and 1 only, one pass each, no context parallelism
    assert [(r["rc"], r["built"], r["decoded"], r["cp"]) for r in res["cli_guidance"]] == [
        (0, 1, 1, None),
        (0, 1, 1, None),
        (0, 0, 0, None),
        (0, 0, 0, None),
    ]
    assert sorted(p.name for p in out.iterdir()) == ["cp.mp4", "cp.pt", "guidance.mp4", "results.json"]  # rank 0
    info = video_io.probe(out / "cp.mp4")
    assert (info.num_frames, info.height, info.width) == (33, 64, 96)
    single = tmp_path / "single"
    single.mkdir()
    assert main(args(single / "one.mp4", "--save-tokens", str(single / "one.pt"))) == 0
    assert torch.equal(torch.load(out / "cp.pt", weights_only=True), torch.load(single / "one.pt", weights_only=True))
