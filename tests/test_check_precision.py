"""``cosmos-ar check-precision`` (``inference/precision_check.py``): the PSNR and logit statistics against their
formulas (hand-computed cases; chunking changes nothing), the AR check on the tiny Megatron engine against an
independent teacher-forced NLL before and after quantization, and the command end to end on the tiny random-weight
models and a 40-frame MP4: the JSON's numbers equal the ones recomputed from the decoders directly; bad input is one
line and writes nothing."""

import json
import math

import numpy as np
import pytest
import torch

from gen_assets import make_assets, make_diffusion_decoder, tiny_mcore_engine
from nemo_cosmos_ar import video_io
from nemo_cosmos_ar.cli import main
from nemo_cosmos_ar.data.token_layout import flatten_grid
from nemo_cosmos_ar.diffusion_decoder.pipeline import DiffusionDecoder
from nemo_cosmos_ar.inference import precision_check as pc
from nemo_cosmos_ar.inference import quant
from nemo_cosmos_ar.inference.options import CV_TOKENIZER_DIR, DIFFUSION_DECODER_DIR
from nemo_cosmos_ar.inference.sampling import SamplingConfig, sampling_probs
from nemo_cosmos_ar.tokenizer.backends import load_tokenizer

SAMPLING = SamplingConfig(temperature=1.0, top_p=0.8)


def test_psnr_formula():
    """Pixels in [0, 1] are (x + 1) / 2: a model-range difference of 0.25 everywhere is 1/8 there, MSE 1/64,
    10 log10(64) = 18.06 dB; equal videos are inf; different shapes are refused."""
    a = torch.zeros(3, 2, 4, 4)
    assert pc.psnr(a, a + 0.25) == pytest.approx(10 * math.log10(64), abs=1e-12)
    assert pc.psnr(a, a + 2.0) == pytest.approx(0.0, abs=1e-12)  # the full range: MSE 1
    assert pc.psnr(a, a) == math.inf
    with pytest.raises(ValueError, match="different shapes"):
        pc.psnr(a, a[:, :1])


def test_compare_logits_by_hand():
    """Two positions, vocab 3, written out: NLL of the targets, top-1, KL at T = 1, TV of the top-p 0.8
    distributions (the nucleus keeps each sorted token whose mass before it is <= 0.8)."""
    ref = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    test = torch.tensor([[2.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    targets = torch.tensor([0, 2])
    p = [torch.softmax(r.double(), -1) for r in ref]
    q = [torch.softmax(r.double(), -1) for r in test]
    nll_ref = -(math.log(p[0][0]) + math.log(p[1][2])) / 2
    nll_test = -(math.log(q[0][0]) + math.log(q[1][2])) / 2
    kl = [float((pi * (pi / qi).log()).sum()) for pi, qi in zip(p, q)]
    e = math.e
    # position 0: ref's top token has e^3/(e^3+2) = 0.91 > 0.8, so its nucleus is that token alone; test's has
    # e^2/(e^2+2) = 0.79 <= 0.8, so one of the two tied others joins it: renormalised e^2/(e^2+1), and TV is the
    # mass test puts off token 0.
    tv0 = 1 / (e**2 + 1)
    # position 1: ref is uniform (before the third: 2/3); test's masses e/(e+2), then two of 1/(e+2) (before the
    # third: 0.79): both keep all three, and TV is the plain one.
    tv1 = 0.5 * float((p[1] - q[1]).abs().sum())
    # drafts 1 and 2: ref's nucleus at position 0 is token 0 alone (p(1) = 0); at position 1 all three, 1/3 each
    got = pc.compare_logits(ref, test, targets, SAMPLING, drafts=torch.tensor([1, 2]))
    assert got["draft_acceptance"] == pytest.approx(1 / 6, rel=1e-6)
    assert "draft_acceptance" not in pc.compare_logits(ref, test, targets, SAMPLING)
    assert got["nll_bf16"] == pytest.approx(nll_ref, rel=1e-6)
    assert got["nll_int8"] == pytest.approx(nll_test, rel=1e-6)
    assert got["top1_agreement"] == 1.0  # position 1's ties resolve to index 0 on both
    assert got["kl_mean"] == pytest.approx(sum(kl) / 2, rel=1e-5)
    assert got["kl_max"] == pytest.approx(max(kl), rel=1e-5)
    assert got["tv_mean"] == pytest.approx((tv0 + tv1) / 2, rel=1e-5)
    diff = (test - ref).double()
    assert got["logit_rel_l2"] == pytest.approx(float(diff.norm() / ref.double().norm()), rel=1e-6)
    assert got["logit_max_abs"] == 1.0


def test_compare_logits_chunks_and_identity(monkeypatch):
    """The same numbers in chunks of 2 rows as in one; a logit set against itself: equal NLL, full agreement,
    zero KL, TV and difference."""
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(7, 50, generator=g) * 3
    test = ref + 0.1 * torch.randn(7, 50, generator=g)
    targets = torch.randint(0, 50, (7,), generator=g)
    whole = pc.compare_logits(ref, test, targets, SAMPLING)
    monkeypatch.setattr(pc, "ROWS_PER_CHUNK", 2)
    chunked = pc.compare_logits(ref, test, targets, SAMPLING)
    assert chunked == pytest.approx(whole, rel=1e-6, abs=1e-9)
    same = pc.compare_logits(ref, ref, targets, SAMPLING)
    assert same["nll_bf16"] == same["nll_int8"] and same["top1_agreement"] == 1.0
    assert same["kl_mean"] == 0.0 and same["tv_mean"] == 0.0 and same["logit_rel_l2"] == 0.0
    assert whole["kl_mean"] > 0 and 0 < whole["tv_mean"] < 1 and whole["logit_max_abs"] > 0


def test_check_ar_tiny_engine(megatron_tp1):
    """On the tiny Megatron engine: 72 scored positions (3 of 5 latent frames of 4x6); the NLLs equal the ones
    computed here from ``teacher_forced`` before and after ``quantize_model``; the previous-frame draft statistics
    equal theirs computed here (frames 3 and 4 repeat frame 2, so 48 of the 72 real tokens equal their draft); the
    engine is left quantized, and a second check is refused. With a speculative window both decoders generate the
    72 tokens from the clip's prompt, the speculative one in fewer forwards than tokens."""
    eng = tiny_mcore_engine(seed=3)
    g = torch.Generator().manual_seed(1)
    grid = torch.randint(0, eng.vocab_size, (1, 5, 4, 6), generator=g)
    grid[:, 3:] = grid[:, 2:3]
    seq = flatten_grid(grid).long()
    drafts = seq[0, 24:-24]  # the token one latent frame (24 tokens) before each scored one

    def logits() -> torch.Tensor:
        return eng.teacher_forced(seq[:, :-1])[0, 47:].double()  # position 47 predicts token 48, the first generated

    def nll() -> float:
        return float(-torch.log_softmax(logits(), -1).gather(1, seq[0, 48:, None]).mean())

    before = nll()
    acceptance = float(sampling_probs(logits().float(), SAMPLING).gather(1, drafts[:, None]).mean())
    r = pc.check_ar(eng, grid, prompt_frames=2, sampling=SAMPLING, speculative_window=4)
    assert quant.is_quantized(eng.model)
    sp = r.speculative
    assert sp["window"] == 4 and sp["tokens"] == 72 and 1 <= sp["forwards"] < 72
    assert sp["tokens_per_forward"] == 72 / sp["forwards"] and sp["seconds"] > 0 and sp["one_token_seconds"] > 0
    after = nll()
    assert r.positions == 72 and r.draft_equal == 48 / 72
    assert r.draft_acceptance == pytest.approx(acceptance, rel=1e-5)
    assert r.nll_bf16 == pytest.approx(before, rel=1e-6) and r.nll_int8 == pytest.approx(after, rel=1e-6)
    assert before != after  # int8 moved the model
    assert 0 < r.logit_rel_l2 < 0.05 and r.top1_agreement > 0.9  # per-row int8 on random weights: ~1% error
    with pytest.raises(ValueError, match="already int8-quantized"):
        pc.check_ar(eng, grid, prompt_frames=2, sampling=SAMPLING)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """The tiny generate assets, the tiny diffusion decoder beside them, and a 40-frame 72x112 MP4."""
    root = make_diffusion_decoder(make_assets(tmp_path_factory.mktemp("pcheck")))
    yy, xx = np.mgrid[0:72, 0:112]
    base = np.stack([(xx * 2) % 256, (yy * 3) % 256, ((xx + yy) * 2) % 256], -1).astype(np.uint8)
    video_io.write_video(root / "clip.mp4", torch.stack([torch.from_numpy(np.roll(base, 3 * i, 1)) for i in range(40)]))
    return root


def _argv(root, *extra):
    return [
        "check-precision", "--input", str(root / "clip.mp4"), "--model", "tiny", "--checkpoint", str(root / "model.pt"),
        "--tokenizer", str(root / "tokenizer"), "--checkpoint-dir", str(root), "--device", "cpu", *extra,
    ]  # fmt: skip


def test_command_end_to_end(assets, tmp_path, capsys):
    """Both parts by default (the decoder is found); the JSON's DD numbers equal PSNRs recomputed from the
    decoders built here (same seed); FP8 differs from bf16 (finite PSNR) and by less than a change of seed."""
    report = tmp_path / "r.json"
    assert main(_argv(assets, "--seed", "5", "--report", str(report))) == 0
    out = capsys.readouterr().out
    assert "NLL of the clip's real tokens" in out and "FP8 moves the video less than a change of seed" in out
    r = json.loads(report.read_text())
    assert (r["frames"], r["grid"], r["resolution"], r["prompt_latent_frames"]) == (33, [5, 4, 6], [64, 96], 2)
    assert r["ar"]["positions"] == 72 and r["sampling"] == {"temperature": 1.0, "top_p": 0.8}
    assert r["ar"]["speculative"]["window"] == 24 and r["ar"]["speculative"]["tokens"] == 72  # 63 > a frame (4 x 6)
    assert r["ar"]["nll_change"] == pytest.approx((r["ar"]["nll_int8"] - r["ar"]["nll_bf16"]) / r["ar"]["nll_bf16"])
    clip = pc.read_clip(assets / "clip.mp4", 0, 33, 64, 96)
    tok = load_tokenizer(assets / "tokenizer", "eager", "cpu", torch.float32)
    grid = tok.encode(clip[None])
    dd = DiffusionDecoder(assets / DIFFUSION_DECODER_DIR, assets / CV_TOKENIZER_DIR, device="cpu")
    bf16 = dd.decode_tokens(grid, seed=5)
    d = r["dd"]
    assert d["psnr_bf16"] == pytest.approx(pc.psnr(bf16, clip[None]), abs=1e-9)
    assert d["psnr_seed_vs_seed"] == pytest.approx(pc.psnr(bf16, dd.decode_tokens(grid, seed=6)), abs=1e-9)
    assert d["psnr_dv"] == pytest.approx(pc.psnr(tok.decode(grid).clamp(-1, 1), clip[None]), abs=1e-9)
    assert math.isfinite(d["psnr_fp8_vs_bf16"]) and d["psnr_fp8_vs_bf16"] > d["psnr_seed_vs_seed"]


def test_command_ar_only_without_decoder(tmp_path, capsys):
    """No decoder under --checkpoint-dir: the AR part only, said in one line; the JSON's dd is null."""
    root = make_assets(tmp_path / "a")
    yy, xx = np.mgrid[0:64, 0:96]
    frame = torch.from_numpy(np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1).astype(np.uint8))
    video_io.write_video(root / "clip.mp4", frame[None].repeat(33, 1, 1, 1))
    report = tmp_path / "r.json"
    assert main(_argv(root, "--report", str(report), "--num-input-frames", "1")) == 0
    err = capsys.readouterr().err
    assert "no diffusion decoder under" in err and "checking the AR model only" in err
    r = json.loads(report.read_text())
    assert r["dd"] is None and r["ar"]["positions"] == 96 and r["prompt_latent_frames"] == 1  # 4 of 5 frames


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--input", "{root}/input.mp4"), "input.mp4 has 12 frames; a video of at least 33 frames is needed"),
        (("--start-frame", "10"), "clip.mp4 has 40 frames; .* at least 43 frames is needed \\(33 from frame 10\\)"),
        (("--input", "{root}/input.png"), "input.png is an image; a video of at least 33 frames"),
        (("--input", "{root}/model.pt"), "model.pt: cannot decode as a video"),
        (("--input", "{root}/none.mp4"), "none.mp4: no such file"),
        (("--report", "{root}/exists.json"), "exists.json already exists; pass --overwrite"),
        (("--report", "{root}/r.txt"), "must end in .json"),
        (("--parts", "dd", "--diffusion-decoder-dir", "{root}/nowhere"), "nowhere/model.pt"),
        (("--tokenizer", "{root}/no_tokenizer"), "no_tokenizer: no such folder"),
    ],
    ids=[
        "short-video",
        "past-the-end",
        "image",
        "not-a-video",
        "no-input",
        "report-exists",
        "report-suffix",
        "no-decoder",
        "no-tokenizer",
    ],
)
def test_bad_input_one_line(assets, capsys, extra, message):
    """Each mistake: exit 1, one line on stderr naming the file or flag, nothing written (an existing report is
    left as it was)."""
    existing = assets / "exists.json"
    existing.write_text("keep")
    before = sorted(p.name for p in assets.iterdir())
    argv = _argv(assets) + [x.format(root=assets) for x in extra]
    assert main(argv) == 1
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("cosmos-ar check-precision: error")]
    assert len(lines) == 1, lines
    assert __import__("re").search(message, lines[0]), lines[0]
    assert sorted(p.name for p in assets.iterdir()) == before and existing.read_text() == "keep"


def test_parts_flag_refuses_unknown(assets, capsys):
    with pytest.raises(SystemExit) as e:
        main(_argv(assets, "--parts", "ar,xyz"))
    assert e.value.code == 2 and "--parts takes a comma list of ar, dd" in capsys.readouterr().err
