"""Generation straight from every checkpoint the project makes or reads, at any tensor-parallel size.

One tiny post-training run (2 steps, NeMo distributed checkpoint) and its exports (model.pt, TP=2 shards, a Hugging
Face folder) are made once; generation from the NeMo checkpoint must equal generation from each export, and one
torchrun launch (tests/scripts/generate_tp.py, gloo) checks TP=2 against TP=1 for all of them plus the CLI.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO, child_env, run_torchrun
from gen_assets import GRID, make_assets, make_diffusion_decoder, make_guardrail_weights
from nemo_cosmos_ar.cli import main
from nemo_cosmos_ar.inference import checkpoints as ck
from nemo_cosmos_ar.inference import engine as en
from nemo_cosmos_ar.inference import generator as gen
from nemo_cosmos_ar.inference.sampling import SamplingConfig

TOL = 1e-5
# Seeded runs use top-k: TP=2 and TP=1 logits differ in the last bit, which can move a token across the top-p boundary
# of a flat random-weight distribution; a top-k cut or the race itself needs a far closer tie.
TOP_K = SamplingConfig(temperature=1.0, top_p=None, top_k=50)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``(folder, step=N-last checkpoint)`` of a 2-step tiny training run with its exports in the folder."""
    root = tmp_path_factory.mktemp("trained")
    cmd = [sys.executable, str(REPO / "tests" / "scripts" / "gen_train_export.py"), str(root)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=child_env(), cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return root, Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return make_assets(tmp_path_factory.mktemp("tp_assets"))


def _run(path, dtype, prompt, total=None):
    """Greedy tokens, their logits, and seeded top-k tokens of a checkpoint at TP=1 in this process."""
    device = en.init_parallel(1, torch.device("cpu"))
    eng = en.load_engine(ck.open_checkpoint(path).with_latent_shape(GRID), 1, device, dtype)
    total = total or eng.cfg.seq_length
    seen: list[torch.Tensor] = []
    greedy, _ = gen.generate_tokens(
        eng, prompt, total, SamplingConfig(temperature=0.0), on_logits=lambda p, lg: seen.append(lg.clone())
    )
    sampled, _ = gen.generate_tokens(eng, prompt, total, TOP_K, torch.Generator().manual_seed(5))
    return {"greedy": greedy, "logits": torch.stack(seen), "sampled": sampled}


PROMPT = torch.randint(0, 64000, (2, 24), generator=torch.Generator().manual_seed(3))


def test_the_nemo_checkpoint_of_a_run_generates_what_its_exports_generate(trained):
    """bf16 (what the exports store): the NeMo checkpoint -- as its step=N-last folder or as the run's checkpoints
    folder -- gives bit-identical logits and tokens to its exported model.pt, TP shards and Hugging Face folder."""
    root, step = trained
    c = ck.open_checkpoint(step.parent)
    # the newest -last step, config from model.yaml
    got = (c.kind, c.name, c.cfg.name, c.cfg.latent_shape, c.cfg.apply_yarn)
    assert got == ("NeMo checkpoint", str(step), "tiny", (3, 4, 6), True)
    nemo = _run(step, torch.bfloat16, PROMPT)
    assert not torch.equal(nemo["greedy"][0, 24:], nemo["greedy"][1, 24:])
    exports = (root / "export" / "model.pt", root / "export", root / "shards" / "model_model_mp_1.pt", root / "hf")
    for source in (step.parent, *exports):
        other = _run(source, torch.bfloat16, PROMPT)
        for key in ("greedy", "sampled"):
            assert torch.equal(nemo[key], other[key]), (source, key)
        assert torch.equal(nemo["logits"], other["logits"]), source


def test_tp2_under_torchrun_equals_tp1_for_every_checkpoint_and_the_cli(trained, assets, tmp_path):
    root, step = trained
    pt, shards = root / "export" / "model.pt", root / "shards" / "model_model_mp_0.pt"
    expected = {
        "prompt": PROMPT,
        "total": 96,
        "grid": list(GRID),
        "pt": _run(pt, torch.float32, PROMPT, 96),
        "nemo": _run(step, torch.float32, PROMPT, 96),
    }
    torch.save(expected, tmp_path / "expected.pt")
    single = tmp_path / "single.pt"
    common = ["--checkpoint", str(step), "--tokenizer", str(assets / "tokenizer"), "--device", "cpu", "--no-progress"]
    common += ["--temperature", "0", "--checkpoint-dir", str(assets)]  # no guardrail weights there
    inp, out_mp4 = str(assets / "input.png"), str(tmp_path / "single.mp4")
    assert main(["generate", "--input", inp, "--output", out_mp4, "--save-tokens", str(single), *common]) == 0
    out = tmp_path / "tp2"
    out.mkdir()
    jsonl = tmp_path / "in.jsonl"
    lines = [
        {"visual_input": str(assets / "input.png")},
        {"visual_input": str(tmp_path / "missing.png")},
        {"visual_input": str(assets / "input.png"), "seed": 3, "video_save_name": "s3"},
    ]
    jsonl.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    weights = make_diffusion_decoder(make_guardrail_weights(tmp_path / "guardrails", 0))  # safe: written
    cli = ["generate", "--num_gpus", "2", "--input", inp, "--output", str(out / "tp2.mp4")]
    cli += ["--save-tokens", str(out / "tp2.pt"), "--fused-step", "on"]  # the CUDA default, here under TP=2
    batch = ["generate", "--num-gpus", "2", "--batch-input-path", str(jsonl), "--output-folder", str(out / "batch")]
    spec = {
        "expected": str(tmp_path / "expected.pt"),
        "out": str(out),
        "checkpoints": {"pt": str(pt), "shards": str(shards), "nemo": str(step)},
        "reference_of": {"pt": "pt", "shards": "pt", "nemo": "nemo"},
        "cli": [*cli, *common, "--checkpoint-dir", str(weights)],
        "tiny_guardrails": True,
        "batch": [*batch, "--batch-size", "2", "--save-tokens", str(out / "batch_tokens"), *common],
        "cli_off": [
            *cli[:-5],
            str(out / "off.mp4"),
            "--fused-step",
            "on",
            *common,
            "--checkpoint-dir",
            str(weights),
            "--disable-guardrail",
            "--diffusion-decoder-parallel",
            "off",
        ],
        "batch_dd": [
            *batch[:-1],
            str(out / "batch_dd"),
            *common,
            "--checkpoint-dir",
            str(weights),
            "--disable-guardrail",
        ],
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    proc = run_torchrun("generate_tp.py", "--spec", str(tmp_path / "spec.json"), nproc=2)
    res = json.loads((out / "results.json").read_text())
    for name in ("pt", "shards", "nemo"):
        r = res[name]
        assert r["greedy_equal"] and r["sampled_equal"] and r["rank_shard_rows"] == 32000, (name, r)
        assert r["speculative_greedy_equal"], (name, r)
        assert r["max_logit_diff"] < TOL, (name, r)
    assert (res["cli_rc"], res["batch_rc"], res["batch_dd_rc"]) == (0, 1, 1)  # the batches had one bad line
    assert res["batch_dd_decodes"] == [2, 2]  # both ranks ran their pass of both good videos
    assert res["cli_off_rc"] == 0 and res["cli_off_dd"] == [[1, 1], [0, 0]]  # off: rank 0 alone
    # Only rank 0 wrote, printed and reported; the TP=2 videos are the single-process one.
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "batch/0.mp4",
        "batch/s3.mp4",
        "batch_dd/0.mp4",
        "batch_dd/s3.mp4",
        "batch_tokens/0.pt",
        "batch_tokens/s3.pt",
        "off.mp4",
        "results.json",
        "tp2.mp4",
        "tp2.pt",
    ]
    want = torch.load(single, weights_only=True)
    for f in ("tp2.pt", "batch_tokens/0.pt", "batch_tokens/s3.pt"):
        assert torch.equal(torch.load(out / f, weights_only=True), want), f
    assert proc.stdout.count("wrote ") == 4 and proc.stderr.count("line 2: input") == 2
    assert "on 2 GPUs (tensor parallel)" in proc.stdout
    # Guardrails: only rank 0 loaded (and ran) them for the single video; the diffusion decoder ran on both ranks,
    # one pass of the guidance each (its video is checked in test_dd_guidance_split). The batch without their
    # weights warned once and noted the DV8x16x16 decoder once.
    assert res["guardrail_loads"] == [
        {"safety": 1, "face": 1, "dd_built": 1, "dd_decoded": 1},
        {"safety": 0, "face": 0, "dd_built": 1, "dd_decoded": 1},
    ]
    assert "guardrails " in proc.stdout and proc.stderr.count("these videos are NOT safety-filtered") == 1
    assert "diffusion decode " in proc.stdout and proc.stderr.count("these videos are decoded by the DV8x16x16") == 1
