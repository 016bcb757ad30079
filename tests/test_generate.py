"""``cosmos-ar generate``: sampling maths, KV-cache decoding against the teacher-forced forward, and the pipeline
end to end on CPU with the tiny preset (random weights written in the released file formats)."""

import json
import re
import subprocess
import sys

import pytest
import torch

from conftest import REPO, child_env
from gen_assets import GRID, cli_args, make_assets
from nemo_cosmos_ar import video_io
from nemo_cosmos_ar.cli import main
from nemo_cosmos_ar.conversion import native_io
from nemo_cosmos_ar.inference import checkpoints as ck
from nemo_cosmos_ar.inference import engine, pipeline, symm_reduce
from nemo_cosmos_ar.inference import generator as gen
from nemo_cosmos_ar.inference.sampling import SamplingConfig, sample, sampling_probs
from nemo_cosmos_ar.model.presets import get_preset
from nemo_cosmos_ar.model.reference import ReferenceTransformer
from nemo_cosmos_ar.tokenizer.backends import load_tokenizer

TOL = 1e-5  # max |Δlogit| in fp32
FORBIDDEN = ("nemo", "lightning", "pytorch_lightning", "nemo_run", "transformer_engine")


def _tiny_model(seed: int = 0) -> ReferenceTransformer:
    return ReferenceTransformer(get_preset("tiny").with_latent_shape(GRID)).init_random(seed=seed).eval()


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------------------------
# Known distribution scattered over the vocabulary (so a mix-up of sorted ranks and token ids would show).
PROBS = torch.tensor([0.5, 0.3, 0.1, 0.05, 0.03, 0.02])
IDS = torch.tensor([3, 0, 5, 1, 4, 2])  # token IDS[i] has probability PROBS[i]


def _known_logits() -> torch.Tensor:
    logits = torch.empty(6)
    logits[IDS] = PROBS.log()
    return logits


@pytest.mark.parametrize("top_p, nucleus", [(0.7, [3, 0]), (0.85, [3, 0, 5]), (1.0, [3, 0, 5, 1, 4, 2])])
def test_top_p_keeps_exactly_the_nucleus_and_renormalises(top_p, nucleus):
    cfg = SamplingConfig(temperature=1.0, top_p=top_p)
    probs = sampling_probs(_known_logits(), cfg)
    kept = PROBS[: len(nucleus)]
    want = torch.zeros(6)
    want[IDS[: len(nucleus)]] = kept / kept.sum()
    assert (probs - want).abs().max().item() < 1e-6  # 0.7 -> [0.625, 0.375]; 0.85 -> [0.5, 0.3, 0.1] / 0.9
    draws = sample(_known_logits().expand(20000, 6), cfg, _gen(0))
    counts = torch.bincount(draws, minlength=6)
    assert set(draws.unique().tolist()) == set(nucleus)  # never outside the nucleus, every member drawn
    freq = counts[3].item() / 20000  # the most likely token: 0.625, 0.556, 0.5; std of the estimate <= 0.0036
    assert abs(freq - want[3].item()) < 0.02


def test_tiny_top_p_and_zero_temperature_are_greedy():
    logits = torch.randn(256, 1000, generator=_gen(1)) * 3
    argmax = logits.argmax(-1)
    for seed in range(3):
        assert torch.equal(sample(logits, SamplingConfig(temperature=1.0, top_p=1e-6), _gen(seed)), argmax)
        assert torch.equal(sample(logits, SamplingConfig(temperature=0.0, top_p=0.9), _gen(seed)), argmax)
    # ...while a real nucleus does not pick the argmax every time (the checks above could not pass by accident).
    assert (sample(logits, SamplingConfig(temperature=1.0, top_p=0.95), _gen(0)) != argmax).sum().item() > 20


def test_temperature_and_top_k():
    logits = torch.randn(1000, generator=_gen(2))
    probs = sampling_probs(logits, SamplingConfig(temperature=2.0, top_p=1.0))
    assert (probs - torch.softmax(logits / 2.0, -1)).abs().max().item() < 1e-7
    top3 = set(logits.topk(3).indices.tolist())
    draws = sample(logits.expand(5000, -1), SamplingConfig(temperature=5.0, top_p=1.0, top_k=3), _gen(3))
    assert set(draws.unique().tolist()) == top3
    assert torch.equal(sample(logits[None], SamplingConfig(top_p=1.0, top_k=1), _gen(3)), logits.argmax()[None])


def test_same_seed_same_tokens_different_seed_different_tokens():
    logits = torch.randn(64, 1000, generator=_gen(4))
    cfg = SamplingConfig(temperature=1.0, top_p=0.9)
    a, b, c = sample(logits, cfg, _gen(7)), sample(logits, cfg, _gen(7)), sample(logits, cfg, _gen(8))
    assert torch.equal(a, b)
    assert (a != c).sum().item() > 32  # nearly every row differs for a different seed
    # The same holds for whole generations.
    model, prompt = _tiny_model(), torch.randint(0, 64000, (1, 24), generator=_gen(5))
    g1, _ = gen.generate_tokens(model, prompt, 60, cfg, _gen(11))
    g2, _ = gen.generate_tokens(model, prompt, 60, cfg, _gen(11))
    g3, _ = gen.generate_tokens(model, prompt, 60, cfg, _gen(12))
    assert torch.equal(g1, g2) and (g1[:, 24:] != g3[:, 24:]).sum().item() > 18


@pytest.mark.parametrize("bad", [dict(temperature=-1.0), dict(top_p=0.0), dict(top_p=1.5), dict(top_k=-2)])
def test_sampling_config_rejects_bad_values(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        SamplingConfig(**bad)


# ---------------------------------------------------------------------------------------------------------------
# KV-cache decoding
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("step_mode", ["dynamic", "static"])
@pytest.mark.parametrize("prompt_frames", [1, 2])
def test_kv_cache_decoding_matches_teacher_forced_logits(prompt_frames, step_mode):
    """Every logit vector a token was sampled from equals the full causal forward's at that position (fp32), with
    the eager step and with the fixed-shape step that CUDA graphs capture (masked attention over the whole cache)."""
    model = _tiny_model(seed=1)
    hw = GRID[1] * GRID[2]
    num_prompt, total = prompt_frames * hw, model.cfg.seq_length
    prompt = torch.randint(0, 64000, (2, num_prompt), generator=_gen(6))  # batch 2: rows must not mix
    seen: dict[int, torch.Tensor] = {}
    out, stats = gen.generate_tokens(
        model,
        prompt,
        total,
        SamplingConfig(top_p=0.9),
        _gen(0),
        on_logits=lambda p, lg: seen.__setitem__(p, lg.clone()),
        step_mode=step_mode,
    )
    assert torch.equal(out[:, :num_prompt], prompt) and stats.generated_tokens == total - num_prompt
    assert sorted(seen) == list(range(num_prompt, total))  # includes the latent-frame starts 48, 72, 96
    with torch.no_grad():
        full = model(out)  # teacher-forced: logits at position p-1 predict token p
    diffs = torch.stack([(seen[p] - full[:, p - 1]).abs().max() for p in range(num_prompt, total)])
    assert diffs.max().item() < TOL, f"max |Δlogit| {diffs.max().item():.2e} at position {num_prompt + diffs.argmax()}"
    for boundary in (48, 72, 96):
        assert diffs[boundary - num_prompt].item() < TOL
    # Negative control: the neighbouring position's logits are far off, so the comparison can detect an off-by-one.
    assert (seen[60] - full[:, 60]).abs().max().item() > 1e-2


@pytest.fixture(scope="module")
def engines():
    """The reference transformer and the Megatron-Core engine (TP=1, gloo) holding the same fp32 weights."""
    ref = _tiny_model(seed=1)
    device = engine.init_parallel(1, torch.device("cpu"))
    model = engine.build_model(ref.cfg, 1, device, torch.float32)
    ck.load_native_state(model, ref.state_dict(), ref.cfg)
    return ref, engine.McoreEngine(model, ref.cfg)


MCORE_MODES = {
    "dynamic": gen.DecodeOptions(step_mode="dynamic"),
    "static, whole cache": gen.DecodeOptions(step_mode="static"),
    "static, bucket 16": gen.DecodeOptions(step_mode="static", bucket=16),
    "static, bucket 16, sampling in the step": gen.DecodeOptions(step_mode="static", bucket=16, sample_in_graph=True),
    "static, bucket 16, gemm attention": gen.DecodeOptions(step_mode="static", bucket=16),
    "static, bucket 16, gemm attention, compiled rope": gen.DecodeOptions(step_mode="static", bucket=16),
    "static, bucket 16, flex attention": gen.DecodeOptions(step_mode="static", bucket=16),
    "static, bucket 16, sampling in the step, fused step": gen.DecodeOptions(
        step_mode="static", bucket=16, sample_in_graph=True
    ),
}


@pytest.mark.parametrize("mode", sorted(MCORE_MODES))
def test_mcore_kv_cache_matches_teacher_forcing_in_every_step_mode(engines, mode):
    """The Megatron-Core engine: the logits of every decoded token equal Megatron's training forward (teacher forced,
    no cache) within 1e-5 in fp32, whatever the attended length (bucket 16 switches length at 48, 64, 80, 96, 112)
    and wherever the sampling runs; sampling inside the step gives the tokens of sampling outside it (same seed)."""
    _, eng = engines
    hw = GRID[1] * GRID[2]
    prompt = torch.randint(0, 64000, (2, 2 * hw), generator=_gen(6))
    seen: dict[int, torch.Tensor] = {}
    eng.decode_attention = "gemm" if "gemm" in mode else "flex" if "flex" in mode else "sdpa"
    eng.fused_rope = "compiled rope" in mode
    eng.fused_step = "fused step" in mode
    try:
        out, stats = gen.generate_tokens(
            eng,
            prompt,
            eng.cfg.seq_length,
            SamplingConfig(top_p=0.9),
            _gen(0),
            on_logits=lambda p, lg: seen.__setitem__(p, lg.clone()),
            options=MCORE_MODES[mode],
        )
    finally:
        eng.decode_attention, eng.fused_rope, eng.fused_step = "sdpa", False, False
    assert sorted(seen) == list(range(2 * hw, eng.cfg.seq_length))
    full = eng.teacher_forced(out)
    diffs = torch.stack([(seen[p] - full[:, p - 1]).abs().max() for p in range(2 * hw, eng.cfg.seq_length)])
    assert diffs.max().item() < TOL, f"max |Δlogit| {diffs.max().item():.2e} at {2 * hw + diffs.argmax()}"
    assert (seen[60] - full[:, 60]).abs().max().item() > 1e-2  # negative control: one position off is far off
    if "sampling" in mode:  # the same step with the sampler outside it: the same computation, the same tokens
        host, _ = gen.generate_tokens(
            eng,
            prompt,
            eng.cfg.seq_length,
            SamplingConfig(top_p=0.9),
            _gen(0),
            options=MCORE_MODES["static, bucket 16"],
        )
        assert torch.equal(out, host)
    assert stats.step_mode == ("static fused" if "sampling" in mode else mode.split(",")[0])


def test_mcore_engine_equals_the_reference_transformer(engines):
    """One model, two implementations: Megatron's training forward and the plain-PyTorch yardstick give the same
    logits (fp32, within 1e-5) and the same greedy tokens."""
    ref, eng = engines
    tokens = torch.randint(0, 64000, (2, 120), generator=_gen(9))
    assert (eng.teacher_forced(tokens) - ref(tokens)).abs().max().item() < TOL
    prompt = tokens[:, :24]
    a, _ = gen.generate_tokens(eng, prompt, 120, SamplingConfig(temperature=0.0))
    b, _ = gen.generate_tokens(ref, prompt, 120, SamplingConfig(temperature=0.0))
    assert torch.equal(a, b) and not torch.equal(a[0, 24:], a[1, 24:])


def test_load_model_reads_model_pt(tmp_path):
    """A flat bf16 ``model.pt`` with ``model.`` keys loads into the reference transformer bit for bit."""
    ref = _tiny_model(seed=2)
    cfg = get_preset("tiny")
    path = native_io.write_model_pt(tmp_path / "model.pt", native_io.iter_native(ref.state_dict(), cfg), cfg)
    model = ck.load_reference(path, "tiny", latent_shape=GRID)
    assert model.cfg.latent_shape == GRID and model.output.weight.dtype == torch.float32
    ref.load_state_dict({k: v.bfloat16().float() for k, v in ref.state_dict().items()})  # the file holds bf16
    tokens = torch.randint(0, 64000, (1, 120), generator=_gen(8))
    with torch.no_grad():
        assert torch.equal(model(tokens), ref(tokens))


# ---------------------------------------------------------------------------------------------------------------
# End to end
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """A tiny bf16 model.pt, a tiny random tokenizer folder, a 80x120 PNG and a 12-frame 72x112 MP4."""
    return make_assets(tmp_path_factory.mktemp("generate"))


@pytest.fixture(scope="module")
def tokenizer(assets):
    return load_tokenizer(assets / "tokenizer")


_args = cli_args


def _run_cli(argv: list[str]) -> subprocess.CompletedProcess:
    """``cosmos-ar`` in a fresh interpreter; it reports every NeMo/Lightning module that got imported, and whether
    Megatron-Core's GPTModel did (generation runs on it)."""
    code = (
        "import json, sys\nfrom nemo_cosmos_ar.cli import main\nrc = main(sys.argv[1:])\n"
        f"print('IMPORTED=' + json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})))\n"
        "print('MCORE=' + str('megatron.core.models.gpt' in sys.modules))\n"
        "sys.exit(rc)"
    )
    cmd = [sys.executable, "-c", code, *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=child_env(), cwd=REPO)


@pytest.fixture(scope="module")
def image_run(assets):
    out = assets / "from_image.mp4"
    proc = _run_cli(_args(assets, assets / "input.png", out, "--save-tokens", str(assets / "from_image.pt")))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_image_to_33_frame_video_without_nemo(image_run, assets, tokenizer):
    out, proc = image_run
    assert json.loads(proc.stdout.split("IMPORTED=")[1].splitlines()[0]) == []  # no NeMo / Lightning anywhere
    assert "MCORE=True" in proc.stdout  # the Megatron-Core model that trains is the one that generated
    info = video_io.probe(out)
    assert (info.num_frames, info.height, info.width, info.fps) == (33, 64, 96, 25.0)
    assert video_io.read_frames(out).shape == (33, 64, 96, 3)
    tokens = torch.load(assets / "from_image.pt", weights_only=True)
    assert tokens.shape == (1, *GRID) and tokens.dtype == torch.int64
    # Echo: the first latent frame is the tokenized image (resized + cropped to 64x96, padded to 33 frames).
    clip = video_io.pad_frames(video_io.read_image(assets / "input.png", size=(64, 96)), 33)
    prompt = tokenizer.encode(clip[None])
    assert torch.equal(tokens[:, :1], prompt[:, :1])
    assert not torch.equal(tokens[:, 1:], prompt[:, 1:])  # the rest was generated, not copied from the padding
    assert "24 prompt + 96 generated tokens" in proc.stdout


def test_video_prompt_is_the_last_9_frames(assets, tokenizer, capsys):
    out, saved = assets / "from_video.mp4", assets / "from_video.pt"
    assert main(_args(assets, assets / "input.mp4", out, "--save-tokens", str(saved), "--no-progress")) == 0
    info = video_io.probe(out)
    assert (info.num_frames, info.height, info.width) == (33, 64, 96)
    tokens = torch.load(saved, weights_only=True)
    last9 = video_io.read_video(assets / "input.mp4", num_frames=9, start=-9, size=(64, 96))
    prompt = tokenizer.encode(video_io.pad_frames(last9, 33)[None])
    assert torch.equal(tokens[:, :2], prompt[:, :2])  # (9 - 1) / 8 + 1 = 2 latent frames echoed
    first9 = video_io.read_video(assets / "input.mp4", num_frames=9, start=0, size=(64, 96))
    assert not torch.equal(tokens[:, :2], tokenizer.encode(video_io.pad_frames(first9, 33)[None])[:, :2])
    printed = capsys.readouterr().out
    assert "48 prompt + 72 generated tokens" in printed
    # the timing line says what loading was spent on (no guardrail or diffusion-decoder weights in these assets)
    m = re.search(
        r"load ([\d.]+)s \(startup ([\d.]+)s, setup [\d.]+s, tokenizer [\d.]+s, AR model [\d.]+s\), encode", printed
    )
    assert m and float(m[2]) <= float(m[1]), printed  # the command's start-up (parsing, imports) is part of the load


def test_offloading_reloads_modules_and_changes_no_token(assets, tokenizer, monkeypatch, tmp_path):
    events: list[str] = []
    written: list[torch.Tensor] = []
    real_tok, real_model, real_write = pipeline.load_tokenizer, engine.load_engine, video_io.write_video
    monkeypatch.setattr(pipeline, "load_tokenizer", lambda *a, **k: events.append("tokenizer") or real_tok(*a, **k))
    monkeypatch.setattr(engine, "load_engine", lambda *a, **k: events.append("model") or real_model(*a, **k))
    monkeypatch.setattr(video_io, "write_video", lambda p, v, **k: written.append(v) or real_write(p, v, **k))
    results = {}
    for offload in (False, True):
        opts = pipeline.GenerateOptions(
            input=assets / "input.png",
            output=tmp_path / f"{offload}.mp4",
            checkpoint=assets / "model.pt",
            tokenizer=assets / "tokenizer",
            model="tiny",
            device="cpu",
            seed=3,
            progress=False,
            offload_ar_model=offload,
            offload_tokenizer=offload,
        )
        results[offload] = pipeline.generate_video(opts)
    # Resident: tokenizer + model loaded once up front (the tokenizer first: the prompt is encoded while the model
    # loads). Offloaded: tokenizer (encode), model, tokenizer (decode).
    assert events == ["tokenizer", "model", "tokenizer", "model", "tokenizer"]
    assert torch.equal(results[False].tokens, results[True].tokens)
    assert results[True].prompt_latent_frames == 1 and results[True].stats.generated_tokens == 96
    # What was written is the DV decoding of the returned tokens (the whole grid, prompt re-decoded), as uint8 frames.
    decoded = video_io.to_uint8_frames(tokenizer.decode(results[True].tokens)[0], "CTHW")
    assert written[1].dtype == torch.uint8 and torch.equal(written[1], torch.from_numpy(decoded))


def test_refuses_to_overwrite(image_run, assets, capsys):
    out, _ = image_run
    before = out.read_bytes()
    assert main(_args(assets, assets / "input.png", out)) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already exists" in err and "--overwrite" in err
    assert out.read_bytes() == before


def test_bad_input_path_is_exit_code_1_with_one_line(assets, tmp_path):
    missing = tmp_path / "nowhere.png"
    proc = _run_cli(_args(assets, missing, tmp_path / "out.mp4"))
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and str(missing) in err[0] and err[0].startswith("cosmos-ar generate: error:"), proc.stderr
    assert not (tmp_path / "out.mp4").exists()


def _one_line_error(argv, capsys) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    "option, bad, needle",
    [
        ("--checkpoint", "missing.pt", "does not exist"),
        ("--tokenizer", "missing_tok", "does not exist"),
        ("--checkpoint", "input.png", "is not a PyTorch checkpoint"),
    ],
)
def test_missing_or_wrong_files_are_one_line_errors(assets, tmp_path, capsys, option, bad, needle):
    argv = _args(assets, assets / "input.png", tmp_path / "out.mp4")
    argv[argv.index(option) + 1] = str(assets / bad)
    err = _one_line_error(argv, capsys)
    assert needle in err and str(assets / bad) in err
    assert not (tmp_path / "out.mp4").exists()


def test_wrong_checkpoint_shape_names_key_and_expected_shape(assets, tmp_path, capsys):
    argv = _args(assets, assets / "input.png", tmp_path / "out.mp4")
    argv[argv.index("tiny")] = "4b"
    err = _one_line_error(argv, capsys)
    assert "tok_embeddings.weight has shape [64000, 64]" in err and "expects [64000, 4096]" in err
    assert "--model tiny" in err  # the hint names the preset the weights do fit


def test_short_video_and_a_missing_diffusion_decoder_are_clear_errors(assets, tmp_path, capsys):
    short = tmp_path / "short.mp4"
    video_io.write_video(short, torch.zeros(5, 64, 96, 3, dtype=torch.uint8))
    err = _one_line_error(_args(assets, short, tmp_path / "a.mp4"), capsys)
    assert "has 5 frame(s)" in err and "--num-input-frames 1" in err
    err = _one_line_error(_args(assets, assets / "input.png", tmp_path / "b.mp4", "--diffusion-decoder"), capsys)
    assert "Cosmos-Predict1-7B-Decoder-DV8x16x16ToCV8x8x8-720p/model.pt not found" in err
    assert "--disable-diffusion-decoder" in err
    assert not (tmp_path / "a.mp4").exists() and not (tmp_path / "b.mp4").exists()


def test_the_guides_inference_command_runs_as_pasted(assets, tmp_path, capsys):
    """cosmos-predict1's flags (the guide's post-training inference command, plus --video_save_folder to keep the
    output in tmp) map onto ours: model <checkpoint_dir>/<ar_model_dir>, tokenizer <checkpoint_dir>/Cosmos-Tokenize1-
    DV8x16x16-720p, output <video_save_folder>/<video_save_name>.mp4; the diffusion decoder and the guardrails are
    looked for in <checkpoint_dir> (none there: the DV8x16x16 decoder, a warning and a note)."""
    ckdir = tmp_path / "checkpoints"
    (ckdir / "Cosmos-Predict1-4B-Base_post-trained").mkdir(parents=True)
    (ckdir / "Cosmos-Predict1-4B-Base_post-trained" / "model.pt").symlink_to(assets / "model.pt")
    (ckdir / "Cosmos-Tokenize1-DV8x16x16-720p").symlink_to(assets / "tokenizer")
    # the guide's command, line by line
    argv = ["generate", "--num_gpus", "1", "--checkpoint_dir", str(ckdir)]
    argv += ["--ar_model_dir", "Cosmos-Predict1-4B-Base_post-trained", "--input_type", "video"]
    argv += ["--input_image_or_video_path", str(assets / "input.mp4"), "--top_p", "0.8", "--temperature", "1.0"]
    argv += ["--offload_diffusion_decoder", "--offload_tokenizer", "--video_save_name", "autoregressive-4b-post-train"]
    argv += ["--video_save_folder", str(tmp_path / "outputs"), "--no-progress"]
    assert main(argv) == 0
    out = tmp_path / "outputs" / "autoregressive-4b-post-train.mp4"
    assert video_io.probe(out).num_frames == 33
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        f"cosmos-ar generate: warning: the output is NOT safety-filtered: no guardrail weights under {ckdir} (get "
        f"them with `cosmos-ar download --checkpoint-dir {ckdir}`, or pass --disable-guardrail to silence this)",
        f"cosmos-ar generate: note: the output is decoded by the DV8x16x16 decoder, blurrier than NVIDIA's default: no "
        f"7B diffusion decoder under {ckdir} (get it with `cosmos-ar download --checkpoint-dir {ckdir}`, or pass "
        "--disable-diffusion-decoder to silence this)",
    ]
    assert f"wrote {out}" in captured.out and "48 prompt + 72 generated tokens" in captured.out
    # --disable_diffusion_decoder: the DV8x16x16 decoder on purpose; --offload_diffusion_decoder maps to ours.
    from nemo_cosmos_ar.cli import build_parser
    from nemo_cosmos_ar.cli.generate import options_from_args

    args = build_parser().parse_args(argv + ["--disable_diffusion_decoder", "--disable_guardrail"])
    opts = options_from_args(args)
    got = (opts.checkpoint, opts.tokenizer, opts.output, opts.offload_tokenizer, opts.sampling.top_p)
    model_dir, tokenizer_dir = ckdir / "Cosmos-Predict1-4B-Base_post-trained", ckdir / "Cosmos-Tokenize1-DV8x16x16-720p"
    assert got == (model_dir, tokenizer_dir, out, True, 0.8)
    assert (opts.diffusion_decoder_dir, opts.offload_diffusion_decoder) == (None, True)
    assert args.guide_spelling and not build_parser().parse_args(_args(assets, "a.png", "b.mp4")).guide_spelling


def test_decode_reduce_falls_back_to_nccl_where_symmetric_memory_cannot_run(engines):
    """--decode-reduce: no reducer (the process group's all-reduce) on CPU or at TP=1, whatever "auto" or "nccl"
    asks; "symm" there is a one-line error; the flag reaches the options."""
    _, eng = engines
    try:
        for reduce in ("auto", "nccl"):
            engine.configure_decode(eng, "sdpa", "on", "on", reduce=reduce)
            assert eng.reducer is None and eng.gemv
        msg = r"^--decode-reduce symm: the model is on cpu, and symmetric memory needs CUDA GPUs; use --decode-reduce"
        with pytest.raises(ValueError, match=msg):
            engine.configure_decode(eng, "sdpa", "on", "on", reduce="symm")
        with pytest.raises(ValueError, match=r"^decode reduce must be auto, nccl or symm, got 'ring'$"):
            engine.configure_decode(eng, reduce="ring")
    finally:
        eng.decode_attention, eng.fused_step, eng.gemv, eng.pdl, eng.reducer = "sdpa", False, False, False, None
    assert symm_reduce.available(torch.device("cuda"), None) == (False, "one rank: there is nothing to reduce")
    from nemo_cosmos_ar.cli import build_parser
    from nemo_cosmos_ar.cli.generate import options_from_args

    parse = build_parser().parse_args
    assert options_from_args(parse(["generate", "--input", "a.png", "--decode-reduce", "symm"])).decode_reduce == "symm"
    assert options_from_args(parse(["generate", "--input", "a.png"])).decode_reduce == "auto"


def test_prompt_tokens_replace_the_input(assets, tmp_path, capsys):
    """A grid saved with --save-tokens gives the prompt back: greedy from it equals greedy from the image."""
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    greedy = ("--temperature", "0", "--no-progress")
    assert main(_args(assets, assets / "input.png", tmp_path / "a.mp4", "--save-tokens", str(a), *greedy)) == 0
    argv = _args(assets, "x", tmp_path / "b.mp4", "--save-tokens", str(b), *greedy)
    argv += ["--prompt-tokens", str(a), "--num-input-frames", "1"]
    i = argv.index("--input")
    assert main(argv[:i] + argv[i + 2 :]) == 0
    assert torch.equal(torch.load(a, weights_only=True), torch.load(b, weights_only=True))
    assert "24 prompt + 96 generated tokens" in capsys.readouterr().out


def test_configure_decode_picks_per_device_and_refuses_unknown(engines):
    """``auto`` on CPU: SDPA, unfused (Triton kernels and torch.compile are for CUDA); explicit choices are kept."""
    _, eng = engines
    try:
        engine.configure_decode(eng)
        assert (eng.decode_attention, eng.fused_step, eng.gemv) == ("sdpa", False, False)
        engine.configure_decode(eng, "gemm", "on")
        assert (eng.decode_attention, eng.fused_step, eng.gemv) == ("gemm", True, False)
        assert (eng.gemv_glu, eng.pdl) == (False, False)
        engine.configure_decode(eng, "sdpa", "on", "on")
        assert (eng.fused_step, eng.gemv, eng.gemv_glu, eng.pdl) == (True, True, False, False)  # no PDL on a CPU
        assert not eng.fused_cache_write
        with pytest.raises(ValueError, match=r"--decode-pdl on needs the fused step on a CUDA GPU of compute"):
            engine.configure_decode(eng, "sdpa", "on", "on", "on")
        with pytest.raises(ValueError, match=r"pdl must be auto, on or off, got 'yes'"):
            engine.configure_decode(eng, "sdpa", "on", "on", "yes")
        with pytest.raises(ValueError, match=r"--decode-gemv on needs the fused step"):
            engine.configure_decode(eng, "sdpa", "off", "on")
        with pytest.raises(ValueError, match=r"gemv must be auto, on or off, got 'yes'"):
            engine.configure_decode(eng, "auto", "auto", "yes")
        with pytest.raises(ValueError, match=r"unknown decode attention 'fast'; choose one of auto, sdpa, triton"):
            engine.configure_decode(eng, "fast")
        with pytest.raises(ValueError, match=r"fused step must be auto, on or off, got 'yes'"):
            engine.configure_decode(eng, "auto", "yes")
    finally:
        eng.decode_attention, eng.fused_step, eng.gemv, eng.gemv_glu, eng.pdl = "sdpa", False, False, False, False
        eng.fused_cache_write = False


@pytest.mark.parametrize("backend,frames", [("eager", 9), ("jit", 33)])
def test_the_prompt_encodes_only_the_real_frames_with_the_eager_backend(assets, tokenizer, backend, frames):
    """The eager network encodes only the 9 real frames (the causal tokenizer's first 2 latent frames depend on
    them alone); the TorchScript files get the padded 33, as cosmos-predict1 gives them. Both give the prompt
    tokens of the padded clip."""
    from nemo_cosmos_ar.cli import build_parser
    from nemo_cosmos_ar.cli.generate import options_from_args
    from nemo_cosmos_ar.inference.options import Job

    argv = _args(assets, assets / "input.mp4", assets / "unused.mp4", "--tokenizer-backend", backend)
    runner = pipeline.Runner(options_from_args(build_parser().parse_args(argv)))
    seen = []
    tok = runner.tokenizer()
    encode = tok.encode
    tok.encode = lambda video: seen.append(video.shape[2]) or encode(video)
    ids = runner.prompt(Job(0, assets / "input.mp4", assets / "unused.mp4", None, 0, 9))
    assert seen == [frames]
    last9 = video_io.read_video(assets / "input.mp4", num_frames=9, start=-9, size=(64, 96))
    expected = tokenizer.encode(video_io.pad_frames(last9, 33)[None])[:, :2]
    assert ids.shape == (1, 2 * GRID[1] * GRID[2])
    assert torch.equal(ids, expected.reshape(1, -1))


def test_generate_runs_with_rarer_full_collections_and_restores_the_thresholds(monkeypatch):
    """``cosmos-ar generate`` runs with full garbage collections 10x rarer (they cost ~1 s of the loads on the
    H200) and gives the caller its thresholds back, whether the command returns or raises."""
    import gc

    from nemo_cosmos_ar.cli import generate as cli_generate

    seen = []

    def fake(args):
        seen.append(gc.get_threshold())
        if len(seen) == 2:
            raise RuntimeError("boom")
        return 0

    before = gc.get_threshold()
    monkeypatch.setattr(cli_generate, "_run_handled", fake)
    try:
        gc.set_threshold(700, 10, 10)
        assert cli_generate.run(None) == 0
        assert seen[0] == (700, 10, 100) and gc.get_threshold() == (700, 10, 10)
        with pytest.raises(RuntimeError, match="boom"):
            cli_generate.run(None)
        assert seen[1] == (700, 10, 100) and gc.get_threshold() == (700, 10, 10)
        gc.set_threshold(700, 10, 500)  # a caller's own higher setting is kept
        monkeypatch.setattr(cli_generate, "_run_handled", lambda a: seen.append(gc.get_threshold()) or 0)
        assert cli_generate.run(None) == 0 and seen[2] == (700, 10, 500)
    finally:
        gc.set_threshold(*before)
