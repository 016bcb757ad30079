"""``cosmos-ar generate --batch-input-path``: several prompts decoded together equal their single runs, token for
token; a bad line is reported with its number and skipped, the others are written."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gen_assets import cli_args, make_assets, snapshot
from nemo_cosmos_ar import video_io
from nemo_cosmos_ar.cli import main
from nemo_cosmos_ar.inference import generator as gen


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = make_assets(tmp_path_factory.mktemp("batch"))
    for i in (1, 2):  # two more images (noise): prompts of the same length (one latent frame), other tokens
        noise = np.random.default_rng(i).integers(0, 256, (80, 120, 3), dtype=np.uint8)
        Image.fromarray(noise).save(root / f"input{i}.png")
    return root


def _batch_argv(assets, jsonl, folder, *extra):
    argv = ["generate", "--model", "tiny", "--checkpoint", str(assets / "model.pt")]
    argv += ["--tokenizer", str(assets / "tokenizer"), "--checkpoint-dir", str(assets)]
    argv += ["--batch-input-path", str(jsonl), "--output-folder", str(folder), "--device", "cpu", "--no-progress"]
    return [*argv, *extra]


def _write_jsonl(path, lines):
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


# Seeded sampling uses top-k: batched and single matmuls differ in the last bit (~1e-7), which can move a token
# across the top-p boundary of a flat random-weight distribution; a top-k cut or a race needs a far closer tie.
@pytest.mark.parametrize(
    "sampling", [("--temperature", "0"), ("--temperature", "1.0", "--top-k", "50")], ids=["greedy", "seeded top-k"]
)
def test_a_batch_of_three_equals_the_three_single_runs(assets, tmp_path, monkeypatch, sampling):
    """Three image prompts decoded as one batch of 3 (each row with its own generator, seeded by its line) give the
    tokens of three separate runs with those seeds."""
    batches = []
    real = gen.generate_tokens
    monkeypatch.setattr(gen, "generate_tokens", lambda m, p, *a, **k: batches.append(p.shape[0]) or real(m, p, *a, **k))
    names = ["input.png", "input1.png", "input2.png"]
    lines = [{"visual_input": str(assets / n), "seed": 5 + i, "video_save_name": f"v{i}"} for i, n in enumerate(names)]
    jsonl = _write_jsonl(tmp_path / "in.jsonl", lines)
    extra = ("--batch-size", "3", "--save-tokens", str(tmp_path / "tok"), *sampling)
    assert main(_batch_argv(assets, jsonl, tmp_path / "out", *extra)) == 0
    assert batches == [3]
    rows = [torch.load(tmp_path / "tok" / f"v{i}.pt", weights_only=True) for i in range(3)]
    for i, name in enumerate(names):
        single = tmp_path / f"single{i}.pt"
        extra = ("--seed", str(5 + i), "--save-tokens", str(single), "--no-progress", *sampling)
        argv = cli_args(assets, assets / name, tmp_path / f"single{i}.mp4", *extra)
        assert main(argv) == 0
        assert torch.equal(rows[i], torch.load(single, weights_only=True)), f"line {i + 1} differs from its single run"
        assert video_io.probe(tmp_path / "out" / f"v{i}.mp4").num_frames == 33
    assert batches == [3, 1, 1, 1]
    for a, b in ((0, 1), (1, 2), (0, 2)):
        assert not torch.equal(rows[a][:, :1], rows[b][:, :1])  # three different prompts went through the batch
        if sampling[1] != "0":  # with their own seeds the rows differ, so a mix-up of rows would show
            assert (rows[a][:, 1:] != rows[b][:, 1:]).float().mean().item() > 0.5


def test_bad_lines_are_reported_and_skipped_the_others_written(assets, tmp_path, capsys):
    short = tmp_path / "short.mp4"
    video_io.write_video(short, torch.zeros(5, 64, 96, 3, dtype=torch.uint8))
    lines = [
        {"visual_input": str(assets / "input.png")},  # line 1 -> 0.mp4
        "{not json",  # line 2
        {"visual_input": str(tmp_path / "missing.mp4")},  # line 3
        "",  # blank: ignored, no index
        {"visual_input": str(short)},  # line 5: 5 frames, 9 needed (found when read)
        {"visual_input": str(assets / "input.mp4"), "seed": 3, "video_save_name": "clip"},  # line 6
        {"visual_input": str(assets / "input.png"), "video_save_name": "clip"},  # line 7: same output as line 6
        {"visual_input": str(assets / "input.png"), "seed": -1},  # line 8
        ["not", "an", "object"],  # line 9
    ]
    jsonl = _write_jsonl(tmp_path / "in.jsonl", lines)
    before = snapshot(assets)
    assert main(_batch_argv(assets, jsonl, tmp_path / "out", "--batch-size", "2")) == 1
    err = capsys.readouterr()
    *reports, warning, note = err.err.strip().splitlines()
    assert warning.startswith("cosmos-ar generate: warning: these videos are NOT safety-filtered: no guardrail weights")
    assert note.startswith("cosmos-ar generate: note: these videos are decoded by the DV8x16x16 decoder")
    assert [r.split(":")[1].strip() for r in reports] == ["line 2", "line 3", "line 5", "line 7", "line 8", "line 9"]
    assert "not valid JSON" in reports[0] and "missing.mp4 does not exist" in reports[1]
    assert "has 5 frame(s)" in reports[2] and "as line 6 does" in reports[3] and '"seed"' in reports[4]
    assert "JSON object" in reports[5] and all(r.endswith("; skipped") for r in reports)
    assert "wrote 2 of 8 videos" in err.out and "6 failed (lines 2, 3, 5, 7, 8, 9)" in err.out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.mp4", "clip.mp4"]  # nothing else, no tmp
    assert snapshot(assets) == before
    # Resume: with --skip-existing the written lines are left alone, the bad ones reported again, nothing rewritten.
    stamp = (tmp_path / "out" / "clip.mp4").stat().st_mtime_ns
    assert main(_batch_argv(assets, jsonl, tmp_path / "out", "--skip-existing")) == 1
    out, err = capsys.readouterr()
    assert "NOT safety-filtered" not in err and "DV8x16x16 decoder" not in err  # nothing was written this time
    assert "wrote 0 of 8 videos" in out and "2 already there" in out
    assert (tmp_path / "out" / "clip.mp4").stat().st_mtime_ns == stamp
