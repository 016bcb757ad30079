"""``cosmos-ar generate`` with the 7B diffusion decoder, on CPU with the tiny random-weight decoder and CV8x8x8 folders
(``diffusion_decoder.fixtures``, written where ``cosmos-ar download`` puts the real ones): on by default when they
are under --checkpoint-dir, and the video written is exactly ``DiffusionDecoder.decode_tokens`` of the generated
tokens with --seed (the DV8x16x16 decoder never runs); the same seed gives the same video; --disable-diffusion-decoder
never builds it; --diffusion-decoder without the files is a one-line error before any model loads; no folder: the
DV8x16x16 decoder and a one-line note; --offload-diffusion-decoder reloads it per video (load counts) in a batch whose
videos each equal their own decode."""

import gc
import json
import os
import re
import weakref

import pytest
import torch

from gen_assets import cli_args, make_assets, make_diffusion_decoder
from nemo_cosmos_ar import video_io
from nemo_cosmos_ar.cli import build_parser, main
from nemo_cosmos_ar.cli.generate import DV_NOTE, options_from_args
from nemo_cosmos_ar.diffusion_decoder import pipeline as ddp
from nemo_cosmos_ar.inference import engine, pipeline, writer
from nemo_cosmos_ar.inference.options import CV_TOKENIZER_DIR, DIFFUSION_DECODER_DIR, GenerateOptions
from nemo_cosmos_ar.tokenizer import backends
from nemo_cosmos_ar.tokenizer.backends import load_tokenizer

FILES = [
    (DIFFUSION_DECODER_DIR, "model.pt"),
    (DIFFUSION_DECODER_DIR, "aux_vars.pt"),
    (CV_TOKENIZER_DIR, "decoder.jit"),
    (CV_TOKENIZER_DIR, "mean_std.pt"),
]
# The same frames encoded twice can differ (threaded x264): measured up to 0.3% of pixels, mean |diff| below 0.1.
ENCODER_TOL = 1.0


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return make_assets(tmp_path_factory.mktemp("ddgen"))


@pytest.fixture(scope="module")
def ckdir(tmp_path_factory):
    """A checkpoints folder with the tiny diffusion decoder and CV8x8x8 decoder (no guardrail weights)."""
    return make_diffusion_decoder(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="module")
def reference(ckdir):
    """The diffusion decoder built directly from the folders, as the API docs show (fp32 on CPU, as generate's)."""
    return ddp.DiffusionDecoder(ckdir / DIFFUSION_DECODER_DIR, ckdir / CV_TOKENIZER_DIR, device="cpu")


@pytest.fixture
def loads(monkeypatch):
    """Counts: decoders built, DiT and CV8x8x8 loads from disk, DV8x16x16 decodes."""
    counts = {"built": 0, "dit": 0, "cv": 0, "dv_decode": 0}

    def counted(key, real):
        return lambda *a, **k: counts.__setitem__(key, counts[key] + 1) or real(*a, **k)

    monkeypatch.setattr(ddp.DiffusionDecoder, "__init__", counted("built", ddp.DiffusionDecoder.__init__))
    monkeypatch.setattr(ddp, "load_dit", counted("dit", ddp.load_dit))
    monkeypatch.setattr(ddp, "load_cv_decoder", counted("cv", ddp.load_cv_decoder))
    for cls in (backends.EagerTokenizer, backends.JitTokenizer):
        monkeypatch.setattr(cls, "decode", counted("dv_decode", cls.decode))
    return counts


@pytest.fixture
def written(monkeypatch):
    """The decoded video of each output, before it is made the uint8 frames written: ``(video, layout)`` as
    ``writer.host_frames`` receives them."""
    calls = []
    real = writer.host_frames
    monkeypatch.setattr(writer, "host_frames", lambda v, lay: calls.append((v.clone(), lay)) or real(v, lay))
    return calls


def _argv(assets, ckdir, out, *extra):
    flags = ("--checkpoint-dir", str(ckdir), "--disable-guardrail", "--no-progress", *extra)
    return cli_args(assets, assets / "input.png", out, *flags)


def _err_lines(capsys) -> tuple[list[str], str]:
    cap = capsys.readouterr()
    return [x for x in cap.err.splitlines() if x.strip()], cap.out


def _file_diff(a, b) -> float:
    """Mean |uint8 difference| of two MP4s' decoded frames."""
    return (video_io.read_frames(a).float() - video_io.read_frames(b).float()).abs().mean().item()


def _tokens(path):
    return torch.load(path, weights_only=True)


def test_default_on_writes_exactly_what_decode_tokens_makes(assets, ckdir, reference, loads, written, tmp_path, capsys):
    out, tok = tmp_path / "v.mp4", tmp_path / "v.pt"
    assert main(_argv(assets, ckdir, out, "--seed", "3", "--save-tokens", str(tok))) == 0
    err, stdout = _err_lines(capsys)
    assert err == []  # no note: the decoder was found
    assert "diffusion decode " in stdout and "(15 steps, " in stdout and "DV decode" not in stdout
    assert loads == {"built": 1, "dit": 1, "cv": 1, "dv_decode": 0}  # resident, loaded once; no DV decode
    ((frames, layout),) = written
    assert layout == "CTHW" and frames.dtype == torch.float32 and frames.shape == (3, 33, 64, 96)
    tokens = _tokens(tok)
    assert tokens.shape == (1, 5, 4, 6)
    want = reference.decode_tokens(tokens, seed=3)[0]
    assert torch.equal(frames, want)  # bit-exact: the same call with the run's tokens and --seed
    # The MP4 is those frames encoded: it decodes to what encoding them again gives (random weights make pixel noise,
    # which H.264 at 64x96 changes by ~57/255 on average, so the file is compared with an encoding, not the frames) ...
    video_io.write_video(tmp_path / "want.mp4", want, fps=25.0, layout="CTHW")
    assert video_io.probe(out).num_frames == 33
    assert _file_diff(out, tmp_path / "want.mp4") < ENCODER_TOL
    # ... and they are not what the DV8x16x16 decoder makes of the same tokens (a DV path would show).
    dv = load_tokenizer(assets / "tokenizer").decode(tokens)[0]
    assert (dv - want).abs().mean().item() > 0.1


def test_the_decoders_seed_is_seed_and_repeats(assets, ckdir, reference, written, tmp_path):
    """Greedy tokens do not depend on the seed, so seeds 1, 1, 2 give one grid: the first two videos are identical,
    the third differs, and each is decode_tokens with its --seed."""
    for i, seed in enumerate((1, 1, 2)):
        extra = ("--temperature", "0", "--seed", str(seed), "--save-tokens", str(tmp_path / f"{i}.pt"))
        argv = _argv(assets, ckdir, tmp_path / f"{i}.mp4", *extra)
        assert main(argv) == 0
    grids = [_tokens(tmp_path / f"{i}.pt") for i in range(3)]
    assert torch.equal(grids[0], grids[1]) and torch.equal(grids[0], grids[2])
    videos = [v for v, _ in written]
    assert torch.equal(videos[0], videos[1])
    assert _file_diff(tmp_path / "0.mp4", tmp_path / "1.mp4") < ENCODER_TOL
    assert (videos[0] - videos[2]).abs().mean().item() > 0.1  # another seed, another noise ...
    assert _file_diff(tmp_path / "0.mp4", tmp_path / "2.mp4") > 10  # ... far beyond the encoder's jitter
    assert torch.equal(videos[2], reference.decode_tokens(grids[0], seed=2)[0])


@pytest.mark.parametrize("flag", ["--disable-diffusion-decoder", "--disable_diffusion_decoder"])
def test_disable_never_builds_the_decoder(assets, ckdir, loads, written, tmp_path, capsys, flag):
    out, tok = tmp_path / "v.mp4", tmp_path / "v.pt"
    assert main(_argv(assets, ckdir, out, flag, "--save-tokens", str(tok))) == 0
    err, stdout = _err_lines(capsys)
    assert err == [] and "DV decode " in stdout  # no note either
    assert loads == {"built": 0, "dit": 0, "cv": 0, "dv_decode": 1}
    ((frames, layout),) = written
    assert layout == "CTHW" and torch.equal(frames, load_tokenizer(assets / "tokenizer").decode(_tokens(tok))[0])
    assert video_io.probe(out).num_frames == 33


def test_no_decoder_folder_the_dv_decoder_and_a_one_line_note(assets, loads, written, tmp_path, capsys):
    out = tmp_path / "v.mp4"
    assert main(_argv(assets, assets, out)) == 0  # --checkpoint-dir: the assets, no decoder there
    err, stdout = _err_lines(capsys)
    assert err == [DV_NOTE.format(what="the output is", folder=assets)]
    assert err[0] == (
        f"cosmos-ar generate: note: the output is decoded by the DV8x16x16 decoder, blurrier than "
        f"NVIDIA's default: no 7B diffusion decoder under {assets} (get it with `cosmos-ar download "
        f"--checkpoint-dir {assets}`, or pass --disable-diffusion-decoder to silence this)"
    )
    assert f"wrote {out}" in stdout and "DV decode " in stdout
    assert loads == {"built": 0, "dit": 0, "cv": 0, "dv_decode": 1} and [lay for _, lay in written] == ["CTHW"]
    assert video_io.probe(out).num_frames == 33


def _partial(ckdir, root, missing):
    """A checkpoints folder linking every decoder file of ``ckdir`` but ``missing``."""
    for folder, name in FILES:
        (root / folder).mkdir(parents=True, exist_ok=True)
        if (folder, name) != missing:
            os.symlink(ckdir / folder / name, root / folder / name)
    return root


@pytest.mark.parametrize("missing", FILES, ids=[name for _, name in FILES])
def test_required_decoder_without_its_files_is_an_error_before_any_model_loads(
    assets, ckdir, loads, tmp_path, capsys, monkeypatch, missing
):
    def expensive(*a, **k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(engine, "load_engine", expensive)
    monkeypatch.setattr(pipeline, "load_tokenizer", expensive)
    root = _partial(ckdir, tmp_path / "checkpoints", missing)
    out = tmp_path / "out"
    assert main(_argv(assets, root, out / "v.mp4", "--diffusion-decoder")) == 1
    err, stdout = _err_lines(capsys)
    dd, cv = root / DIFFUSION_DECODER_DIR, root / CV_TOKENIZER_DIR
    assert err == [
        f"cosmos-ar generate: error: diffusion decoder file {root / missing[0] / missing[1]} not found (the "
        f"decoder needs model.pt + aux_vars.pt in {dd} and decoder.jit + mean_std.pt in {cv}): get them "
        f"with `cosmos-ar download --checkpoint-dir {root}`, point --diffusion-decoder-dir / --cv-tokenizer "
        "at them, or pass --disable-diffusion-decoder"
    ]
    assert stdout == "" and not out.exists() and loads == {"built": 0, "dit": 0, "cv": 0, "dv_decode": 0}


def test_asking_for_the_decoder_without_its_folder_and_conflicting_flags(assets, loads, tmp_path, capsys):
    out, nope = tmp_path / "out" / "v.mp4", tmp_path / "nope"
    for extra, first in (
        (["--diffusion-decoder"], assets / DIFFUSION_DECODER_DIR / "model.pt"),
        (["--diffusion-decoder-dir", str(nope)], nope / "model.pt"),
        (["--cv-tokenizer", str(nope)], assets / DIFFUSION_DECODER_DIR / "model.pt"),
    ):
        assert main(_argv(assets, assets, out, *extra)) == 1  # the assets hold no decoder
        err, _ = _err_lines(capsys)
        assert len(err) == 1 and err[0].startswith(
            f"cosmos-ar generate: error: diffusion decoder file {first} not found ("
        ), err
    for extra in (["--diffusion-decoder"], ["--cv-tokenizer", "x"]):
        assert main(_argv(assets, assets, out, *extra, "--disable-diffusion-decoder")) == 1
        assert _err_lines(capsys)[0] == [
            "cosmos-ar generate: error: pass either --diffusion-decoder "
            "(--diffusion-decoder-dir, --cv-tokenizer) or --disable-diffusion-decoder, "
            "not both"
        ]
    assert not out.parent.exists() and loads == {"built": 0, "dit": 0, "cv": 0, "dv_decode": 0}


@pytest.mark.parametrize("offload", [False, True], ids=["resident", "offload"])
def test_batch_decodes_each_video_with_its_seed_and_offloading_reloads(
    assets, ckdir, reference, loads, written, tmp_path, capsys, offload
):
    """Two lines, one prompt, seeds 0 and 1, generated as one AR batch of 2: each video is decode_tokens of its own
    grid with its own seed. Resident: the decoder loads once; offloaded (the guide's spelling): once per video."""
    jsonl = tmp_path / "in.jsonl"
    lines = [{"visual_input": str(assets / "input.png"), "seed": i, "video_save_name": f"v{i}"} for i in range(2)]
    jsonl.write_text("".join(json.dumps(x) + "\n" for x in lines))
    argv = ["generate", "--model", "tiny", "--checkpoint", str(assets / "model.pt")]
    argv += ["--tokenizer", str(assets / "tokenizer"), "--checkpoint_dir", str(ckdir), "--batch-input-path", str(jsonl)]
    argv += ["--output-folder", str(tmp_path / "out")]
    argv += ["--save-tokens", str(tmp_path / "tok"), "--batch-size", "2", "--device", "cpu", "--no-progress"]
    argv += ["--disable-guardrail", *(["--offload_diffusion_decoder"] if offload else [])]
    assert main(argv) == 0
    err, stdout = _err_lines(capsys)
    assert err == [] and "wrote 2 of 2 videos" in stdout
    totals = re.search(
        r"totals: load ([\d.]+)s, encode ([\d.]+)s, prefill ([\d.]+)s, compile and graph capture ([\d.]+)s, "
        r"decode ([\d.]+)s, video decode ([\d.]+)s, write ([\d.]+)s",
        stdout,
    )
    assert totals is not None, stdout
    assert float(totals[5]) > 0 and float(totals[6]) > 0  # the AR decode and both videos' diffusion decodes
    n = 2 if offload else 1
    assert loads == {"built": 1, "dit": n, "cv": n, "dv_decode": 0}
    grids = [_tokens(tmp_path / "tok" / f"v{i}.pt") for i in range(2)]
    assert not torch.equal(grids[0], grids[1])
    assert len(written) == 2
    for i, (frames, _) in enumerate(written):
        assert torch.equal(frames, reference.decode_tokens(grids[i], seed=i)[0]), f"line {i + 1}"
        assert video_io.probe(tmp_path / "out" / f"v{i}.mp4").num_frames == 33


def test_options_from_the_flags(ckdir, assets, tmp_path):
    def opts(*extra):
        o = options_from_args(build_parser().parse_args(["generate", "--input", "a.png", *extra]))
        return o.diffusion_decoder_dir, o.cv_tokenizer, o.offload_diffusion_decoder

    dd, cv = ckdir / DIFFUSION_DECODER_DIR, ckdir / CV_TOKENIZER_DIR
    assert opts("--checkpoint-dir", str(ckdir)) == opts("--checkpoint_dir", str(ckdir)) == (dd, cv, False)
    assert opts("--checkpoint-dir", str(assets)) == (None, None, False)  # default on, not there: off (noted)
    there = assets / DIFFUSION_DECODER_DIR, assets / CV_TOKENIZER_DIR
    assert opts("--checkpoint-dir", str(assets), "--diffusion-decoder") == (*there, False)  # required: checked later
    x, y = tmp_path / "x", tmp_path / "y"
    assert opts("--checkpoint-dir", str(assets), "--diffusion-decoder-dir", str(x)) == (x, there[1], False)
    assert opts("--checkpoint-dir", str(ckdir), "--cv-tokenizer", str(y)) == (dd, y, False)
    assert opts("--checkpoint-dir", str(ckdir), "--disable_diffusion_decoder") == (None, None, False)
    assert opts("--checkpoint-dir", str(ckdir), "--offload_diffusion_decoder") == (dd, cv, True)
    assert opts("--checkpoint-dir", str(ckdir), "--offload-diffusion-decoder") == (dd, cv, True)
    argv = ["generate", "--input", "a.png", "--checkpoint-dir", str(ckdir), "--offload-tokenizer"]
    o = options_from_args(build_parser().parse_args(argv))
    assert (o.offload_tokenizer, o.offload_diffusion_decoder) == (True, False)  # the DV tokenizer only
    # Python: the CV8x8x8 folder defaults to the one next to the decoder's; no decoder by default.
    assert GenerateOptions(input="a.png", diffusion_decoder_dir=str(dd)).cv_tokenizer == cv
    assert GenerateOptions(input="a.png").diffusion_decoder_dir is None


def _check_choice_flag(flag: str, field: str, default: str, other: str, bad: str, refusal: str) -> None:
    """A choice flag of generate: ``default`` unless given, ``other`` when given, ``bad`` refused by the parser and
    by ``GenerateOptions`` (whose message matches ``refusal``)."""

    def parsed(*extra):
        return getattr(options_from_args(build_parser().parse_args(["generate", "--input", "a.png", *extra])), field)

    assert parsed() == default and parsed(flag, other) == other
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--input", "a.png", flag, bad])
    with pytest.raises(ValueError, match=f"{flag} {refusal}, got '{bad}'"):
        GenerateOptions(input="a.png", **{field: bad})


def test_fp8_gemm_flag_reaches_the_decoder(assets, ckdir, written, tmp_path):
    """--diffusion-decoder-gemm fp8: the run's video is the FP8 decoder's decode_tokens with the run's tokens and
    seed (bit-exact), close to the bf16 one but not equal; bf16 is the default and other values are refused."""

    _check_choice_flag("--diffusion-decoder-gemm", "dd_gemm", "bf16", "fp8", "fp16", "must be bf16 or fp8")
    out, tok = tmp_path / "v.mp4", tmp_path / "v.pt"
    assert (
        main(_argv(assets, ckdir, out, "--seed", "3", "--save-tokens", str(tok), "--diffusion-decoder-gemm", "fp8"))
        == 0
    )
    ((frames, _),) = written
    tokens = _tokens(tok)
    dd = ddp.DiffusionDecoder(ckdir / DIFFUSION_DECODER_DIR, ckdir / CV_TOKENIZER_DIR, device="cpu", gemm="fp8")
    assert torch.equal(frames, dd.decode_tokens(tokens, seed=3)[0])
    exact = ddp.DiffusionDecoder(ckdir / DIFFUSION_DECODER_DIR, ckdir / CV_TOKENIZER_DIR, device="cpu")
    diff = (frames - exact.decode_tokens(tokens, seed=3)[0]).abs()
    assert 0 < diff.max().item() and diff.mean().item() < 0.02


def test_fp8_without_the_decoder_is_a_one_line_note(assets, loads, written, tmp_path, capsys):
    argv = _argv(assets, assets, tmp_path / "v.mp4", "--disable-diffusion-decoder", "--diffusion-decoder-gemm", "fp8")
    assert main(argv) == 0
    err, _ = _err_lines(capsys)
    assert err == ["cosmos-ar generate: note: --diffusion-decoder-gemm fp8 has no effect: the diffusion decoder is off"]
    assert loads["built"] == 0 and len(written) == 1


@pytest.mark.parametrize("offload", [False, True], ids=["resident", "offload-tokenizer"])
def test_the_dv_tokenizer_is_released_without_a_collection_unless_offloading(
    assets, ckdir, tmp_path, monkeypatch, offload
):
    """With the diffusion decoder on, the DV8x16x16 tokenizer is dropped after the prompt. Only --offload-tokenizer
    pays a full collection and empty_cache (``runtime.free_memory``, ~0.27 s in a process holding Megatron-Core):
    otherwise the tokenizer is freed by reference counting alone, its blocks left in torch's cache for the decoder."""
    collected, seen = [], []
    monkeypatch.setattr(pipeline, "free_memory", lambda device: collected.append(str(device)))
    real_load = pipeline.load_tokenizer

    def load(*a, **k):  # a weak reference to each tokenizer generate builds
        tok = real_load(*a, **k)
        seen.append(weakref.ref(tok))
        return tok

    monkeypatch.setattr(pipeline, "load_tokenizer", load)
    gc.disable()  # no automatic collection may free it either
    try:
        extra = ("--offload-tokenizer",) if offload else ()
        assert main(_argv(assets, ckdir, tmp_path / "v.mp4", *extra)) == 0
        assert len(seen) == 1 and seen[0]() is None  # built once (the prompt) and already freed
    finally:
        gc.enable()
    # offloaded: dropped after the prompt and again after the video (cosmos-predict1's two offload points)
    assert collected == (["cpu", "cpu"] if offload else [])


def test_the_decoders_load_starts_before_the_ar_model_loads(assets, ckdir, reference, written, tmp_path, monkeypatch):
    """Resident with the prompt encoded on a thread: the decoder is built (its background load started) and warmed
    before the AR model loads, so the load overlaps less of the AR decode; the video is still exactly
    ``decode_tokens`` of the run's tokens. With --offload-ar-model (the prompt encoded first, no load beside it)
    the decoder is built after the encode and the AR model loads last, when it generates."""
    events = []

    def log(name, real):
        return lambda *a, **k: events.append(name) or real(*a, **k)

    monkeypatch.setattr(ddp.DiffusionDecoder, "__init__", log("dd", ddp.DiffusionDecoder.__init__))
    monkeypatch.setattr(engine, "load_engine", log("ar", engine.load_engine))
    monkeypatch.setattr(pipeline.Runner, "prompt", log("encode", pipeline.Runner.prompt))
    monkeypatch.setattr(pipeline.Runner, "prompt_done", log("wait", pipeline.Runner.prompt_done))
    tok = tmp_path / "v.pt"
    assert main(_argv(assets, ckdir, tmp_path / "v.mp4", "--seed", "4", "--save-tokens", str(tok))) == 0
    assert [e for e in events if e != "encode"] == ["dd", "ar", "wait"], events  # "encode": on its thread, any time
    ((frames, _),) = written
    assert torch.equal(frames, reference.decode_tokens(_tokens(tok), seed=4)[0])
    events.clear()
    assert main(_argv(assets, ckdir, tmp_path / "w.mp4", "--offload-ar-model")) == 0
    assert events == ["encode", "dd", "ar"], events


def test_junk_decoder_weights_fail_before_the_ar_model_loads(assets, ckdir, tmp_path, capsys, monkeypatch):
    """One process: the decoder is built before the AR model loads, so unreadable weights are a one-line error that
    costs no AR model load, and nothing is written."""

    def expensive(*a, **k):
        raise AssertionError("the AR model was loaded")

    root = _partial(ckdir, tmp_path / "checkpoints", (DIFFUSION_DECODER_DIR, "model.pt"))
    (root / DIFFUSION_DECODER_DIR / "model.pt").write_bytes(os.urandom(256))
    monkeypatch.setattr(engine, "load_engine", expensive)
    out = tmp_path / "out" / "v.mp4"
    assert main(_argv(assets, root, out)) == 1
    err, _ = _err_lines(capsys)
    assert len(err) == 1 and err[0].startswith("cosmos-ar generate: error: ") and "model.pt" in err[0], err
    assert not out.parent.exists()


def test_attention_flag_reaches_the_decoder_and_fa4_on_cpu_fails_before_the_ar_model_loads(
    assets, ckdir, tmp_path, capsys, monkeypatch
):
    """--diffusion-decoder-attention: auto is the default and resolves to SDPA on the CPU (the timing line says
    which ran); fa4 where it cannot run is a one-line error before the AR model loads, with nothing written."""

    _check_choice_flag("--diffusion-decoder-attention", "dd_attention", "auto", "fa4", "flash", "must be one of .*")
    out = tmp_path / "v.mp4"
    assert main(_argv(assets, ckdir, out)) == 0
    _, stdout = _err_lines(capsys)
    assert "; attention sdpa)" in stdout, stdout

    def expensive(*a, **k):
        raise AssertionError("the AR model was loaded")

    monkeypatch.setattr(engine, "load_engine", expensive)
    out = tmp_path / "out" / "v.mp4"
    assert main(_argv(assets, ckdir, out, "--diffusion-decoder-attention", "fa4")) == 1
    err, _ = _err_lines(capsys)
    assert err == [
        "cosmos-ar generate: error: attention backend 'fa4': FlashAttention-4 runs on CUDA GPUs only, not on cpu; "
        "use 'sdpa' (or 'auto')"
    ]
    assert not out.parent.exists()
