"""7B diffusion decoder: released checkpoint layout and loading errors, the EDM sampler and guidance against their
formulas, chunking and blending lengths, seeding, the CV8x8x8 decoder, and the tiny decoder end to end."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nemo_cosmos_ar.diffusion_decoder import sampler as smp
from nemo_cosmos_ar.diffusion_decoder.checkpoint import CheckpointError, expected_shapes, load_dit, load_generic_prompt
from nemo_cosmos_ar.diffusion_decoder.config import DiTConfig, SamplerConfig, get_dit_config
from nemo_cosmos_ar.diffusion_decoder.cv8x8x8 import (
    ContinuousVideoDecoder,
    CVConfig,
    infer_cv_config,
    load_cv_decoder,
)
from nemo_cosmos_ar.diffusion_decoder.fixtures import write_random_cv_tokenizer, write_random_decoder
from nemo_cosmos_ar.diffusion_decoder.network import Patchify, RoPE3D, TimestepFeatures
from nemo_cosmos_ar.diffusion_decoder.pipeline import DiffusionDecoder

REPO = Path(__file__).resolve().parents[1]
NVIDIA_SRC = Path("/work/wt/notes/cosmos-predict1")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("dd")
    dd = write_random_decoder(root / "Cosmos-Predict1-7B-Decoder-DV8x16x16ToCV8x8x8-720p", "tiny", seed=0)
    cv = write_random_cv_tokenizer(root / "Cosmos-Tokenize1-CV8x8x8-720p", "tiny", seed=0)
    return dd, cv


@pytest.fixture(scope="module")
def decoder(folders):
    return DiffusionDecoder(*folders, device="cpu")


def _tokens(t: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 64000, (1, t, 2, 2), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------------- checkpoint


def test_released_7b_key_layout():
    shapes = expected_shapes(DiTConfig())
    assert len(shapes) == 569  # 28 blocks x 20 + 9 (model.pt adds 3 logvar.* keys)
    assert sum(math.prod(s) for k, s in shapes.items() if k != "net.pos_embedder.seq") == 7_237_257_216
    b = "net.blocks.block27.blocks"
    known = {  # module shapes of NVIDIA's FADITV2 + DiffusionDecoderGeneralDIT at the DD experiment's settings
        "net.x_embedder.proj.1.weight": (4096, (16 + 32 + 1) * 4),
        "net.token_embedder.weight": (64000, 32),
        "net.pos_embedder.seq": (128,),
        "net.t_embedder.1.linear_1.weight": (4096, 4096),
        "net.t_embedder.1.linear_2.weight": (3 * 4096, 4096),
        "net.affline_norm.weight": (4096,),
        f"{b}.0.block.attn.to_q.0.weight": (4096, 4096),
        f"{b}.0.block.attn.to_q.1.weight": (128,),
        f"{b}.0.block.attn.to_k.1.weight": (128,),
        f"{b}.0.block.attn.to_v.0.weight": (4096, 4096),
        f"{b}.1.block.attn.to_k.0.weight": (4096, 1024),
        f"{b}.1.block.attn.to_v.0.weight": (4096, 1024),
        f"{b}.1.block.attn.to_out.0.weight": (4096, 4096),
        f"{b}.2.block.layer1.weight": (16384, 4096),
        f"{b}.2.block.layer2.weight": (4096, 16384),
        f"{b}.2.adaLN_modulation.1.weight": (256, 4096),
        f"{b}.2.adaLN_modulation.2.weight": (3 * 4096, 256),
        "net.final_layer.linear.weight": (2 * 2 * 16, 4096),
        "net.final_layer.adaLN_modulation.2.weight": (2 * 4096, 256),
    }
    for key, shape in known.items():
        assert shapes[key] == shape, key
    assert "net.blocks.block28.blocks.0.adaLN_modulation.1.weight" not in shapes
    assert not any("to_v.1" in k or "to_out.1" in k or "norm_state" in k for k in shapes)


def test_fixture_loads_exactly(folders):
    dd, _ = folders
    sd = torch.load(dd / "model.pt", weights_only=True)
    expected = expected_shapes(get_dit_config("tiny"))
    assert set(sd) == set(expected) | {"logvar.0.freqs", "logvar.0.phases", "logvar.1.weight"}
    assert all(v.dtype == torch.bfloat16 for v in sd.values())
    assert all(tuple(sd[k].shape) == s for k, s in expected.items())
    for dtype in (torch.float32, torch.bfloat16):
        net = load_dit(dd, dtype=dtype)  # preset detected from the shapes
        assert net.config == get_dit_config("tiny")
        for key, value in net.state_dict().items():
            assert value.dtype == dtype, key
            assert torch.equal(value, sd["net." + key].to(dtype)), key
    ctx = load_generic_prompt(dd, 32)
    assert ctx.shape == (1, 16, 32) and ctx.dtype == torch.float32


def _corrupt(folders, tmp_path, edit) -> Path:
    sd = torch.load(folders[0] / "model.pt", weights_only=True)
    edit(sd)
    torch.save(sd, tmp_path / "model.pt")
    return tmp_path / "model.pt"


BLOCK_Q = "net.blocks.block1.blocks.0.block.attn.to_q.0.weight"


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda sd: sd.pop(BLOCK_Q), f"missing key {BLOCK_Q} (shape [64, 64] in the tiny diffusion decoder)"),
        (
            lambda sd: sd.__setitem__(BLOCK_Q, torch.zeros(64, 65)),
            f"key {BLOCK_Q} has shape [64, 65], expected [64, 64] (the tiny diffusion decoder)",
        ),
        (
            lambda sd: sd.__setitem__(BLOCK_Q, torch.zeros(64, 64, dtype=torch.int32)),
            f"key {BLOCK_Q} has dtype torch.int32, expected a floating-point tensor",
        ),
        (
            lambda sd: sd.__setitem__("net.extra_pos_embedder.pos_emb_h", torch.zeros(3)),
            "unexpected key net.extra_pos_embedder.pos_emb_h, not part of the tiny diffusion decoder",
        ),
        (
            lambda sd: sd.__setitem__("net.x_embedder.proj.1.weight", torch.zeros(96, 196)),
            "net.x_embedder.proj.1.weight has shape [96, 196], which matches no diffusion decoder preset",
        ),
    ],
)
def test_checkpoint_errors_are_one_line(folders, tmp_path, edit, message):
    path = _corrupt(folders, tmp_path, edit)
    with pytest.raises(CheckpointError) as err:
        load_dit(path)
    assert message in str(err.value) and str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def _tolerated(sd):
    sd["net.blocks.block0.blocks.0.block.attn.attn_op._extra_state"] = torch.zeros(4, dtype=torch.uint8)
    sd["net.pos_embedder.dim_spatial_range"] = torch.zeros(2)
    del sd["net.pos_embedder.seq"]


def test_checkpoint_tolerates_non_weights_and_refuses_pickles(folders, tmp_path):
    net = load_dit(_corrupt(folders, tmp_path, _tolerated))
    assert torch.equal(net.pos_embedder.seq, torch.arange(32.0))  # max(16 frames, 64/2, 64/2) positions
    assert torch.equal(net.token_embedder.weight, load_dit(folders[0]).token_embedder.weight)
    torch.save({"net.x": object()}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"bad.pt is not a tensors-only PyTorch checkpoint \(.*\); it is refused"):
        load_dit(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError, match="write a test folder with fixtures.write_random_decoder"):
        load_dit(tmp_path / "missing.pt")
    torch.save({"context": torch.zeros(1, 4, 8)}, tmp_path / "aux_vars.pt")
    with pytest.raises(CheckpointError, match=r"'context' has shape \[1, 4, 8\] torch.float32, expected float "):
        load_generic_prompt(tmp_path, 32)


# ------------------------------------------------------------------------------------------------------- sampler


def test_noise_schedule_matches_karras_formula():
    cfg = SamplerConfig()
    assert (cfg.num_steps, cfg.guidance, cfg.overlap, cfg.chunk_frames) == (15, 1.8, 2, 57)
    sig = smp.karras_sigmas(cfg)
    assert sig.dtype == torch.float32 and sig.shape == (16,) and sig[-1] == 0
    hi, lo = 80 ** (1 / 7), 0.02 ** (1 / 7)
    ref = [(hi + i / 14 * (lo - hi)) ** 7 for i in range(15)]
    assert torch.allclose(sig[:-1], torch.tensor(ref, dtype=torch.float32), rtol=1e-6, atol=0)
    assert sig[0] == 80 and abs(sig[14].item() - 0.02) < 1e-8
    assert smp.initial_noise_std(cfg) == math.sqrt(6401)
    s = torch.tensor(0.5)
    c_skip, c_out, c_in = smp.preconditioning(s, 0.5)
    assert (c_skip.item(), c_in.item()) == pytest.approx((0.5, math.sqrt(2)), rel=1e-7)
    assert c_out.item() == pytest.approx(0.25 / math.sqrt(0.5), rel=1e-7)
    assert smp.noise_conditioning(torch.tensor(80.0)).item() == pytest.approx(0.25 * math.log(80), rel=1e-7)


def test_guidance_and_euler_step_match_formulas():
    g = torch.Generator().manual_seed(0)
    cond, uncond, x = (torch.randn(2, 3, generator=g) for _ in range(3))
    assert torch.equal(smp.guide(cond, uncond, 1.8), cond + 1.8 * (cond - uncond))
    assert torch.equal(smp.guide(cond, uncond, 0.0), cond)
    s, s_next, sd = torch.tensor(2.0), torch.tensor(0.7), 0.5
    denoised = sd**2 / (4 + sd**2) * x + 2 * sd / math.sqrt(4 + sd**2) * cond
    assert torch.allclose(smp.euler_step(x, cond, s, s_next, sd), x + (x - denoised) / 2 * (0.7 - 2), atol=1e-6)
    # the last step (to sigma 0) lands on the denoised estimate
    assert torch.allclose(smp.euler_step(x, cond, s, torch.tensor(0.0), sd), denoised, atol=1e-6)
    # bf16 network output: c_out * F stays bf16 (as in diffusers), the rest is fp32, the result is bf16
    xb, ob = x.bfloat16(), cond.bfloat16()
    c_skip, c_out, _ = smp.preconditioning(s, sd)
    ref = xb.float() + (xb.float() - (c_skip * xb.float() + (c_out * ob).float())) / s * (s_next - s)
    assert torch.equal(smp.euler_step(xb, ob, s, s_next, sd), ref.bfloat16())


def test_sampler_loop_against_scalar_reference():
    cfg = SamplerConfig(num_steps=6)
    calls = []

    def pair(x_in, t):
        calls.append((x_in.clone(), t.item()))
        return 0.3 * x_in + t, -0.2 * x_in

    noise = torch.tensor([[0.7], [-1.3]])
    out = smp.edm_sample(pair, noise, cfg, torch.float32)
    sig = [float(v) for v in smp.karras_sigmas(cfg)]
    for row, n0 in enumerate(noise[:, 0].tolist()):
        x = n0 * math.sqrt(80**2 + 1)
        for i in range(6):
            s, c_in = sig[i], 1 / math.sqrt(sig[i] ** 2 + 0.25)
            assert calls[i][0][row, 0].item() == pytest.approx(x * c_in, rel=1e-5)
            assert calls[i][1] == pytest.approx(0.25 * math.log(s), rel=1e-6)
            c, u = 0.3 * x * c_in + 0.25 * math.log(s), -0.2 * x * c_in
            f = c + 1.8 * (c - u)
            d = 0.25 / (s**2 + 0.25) * x + s * 0.5 / math.sqrt(s**2 + 0.25) * f
            x = x + (x - d) / s * (sig[i + 1] - s)
        assert out[row, 0].item() == pytest.approx(x, rel=1e-4)


@pytest.mark.parametrize(
    "frames, starts, last",
    [
        (5, [0], [0, 1, 2, 3, 4, 3, 2, 1]),
        (12, [0, 6], [6, 7, 8, 9, 10, 11, 10, 9]),
        (14, [0, 6], list(range(6, 14))),
        (20, [0, 6, 12], [12, 13, 14, 15, 16, 17, 18, 19]),
        (1, [0], [0] * 8),
        (3, [0], [0, 1, 2, 1, 0, 1, 2, 1]),
    ],
)
def test_split_tokens(frames, starts, last):
    tokens = torch.arange(frames).reshape(1, frames, 1, 1).expand(1, frames, 2, 3)
    chunks = smp.split_tokens(tokens, 8, 2)
    assert smp.chunk_starts(frames, 8, 2) == starts and len(chunks) == len(starts)
    assert all(c.shape == (1, 8, 2, 3) for c in chunks)
    assert chunks[-1][0, :, 0, 0].tolist() == last
    if 8 - (frames - starts[-1]) < frames - starts[-1]:  # where torch's reflect padding is defined, it agrees
        tail = tokens[:, None, starts[-1] :].float()  # NVIDIA pads [B, 1, T, h, w] along T
        ref = F.pad(tail, (0, 0, 0, 0, 0, 8 - tail.shape[2]), mode="reflect")[:, 0]
        assert torch.equal(chunks[-1].float(), ref)


@pytest.mark.parametrize("blend, overlap", [("aligned", 9), ("nvidia", 2)])
def test_blend_lengths_and_weights(blend, overlap):
    cfg = SamplerConfig(blend=blend)
    assert smp.blend_overlap(cfg) == overlap
    vids = [torch.full((1, 3, 57, 2, 2), float(k)) for k in range(3)]
    out = smp.blend_chunks(vids, overlap)
    assert out.shape == (1, 3, 3 * 57 - 2 * overlap, 2, 2)
    w = torch.linspace(0, 1, overlap)
    assert torch.equal(out[0, 0, : 57 - overlap, 0, 0], torch.zeros(57 - overlap))
    assert torch.allclose(out[0, 0, 57 - overlap : 57, 0, 0], w)
    assert torch.allclose(out[0, 0, 2 * (57 - overlap) : 2 * (57 - overlap) + overlap, 0, 0], 1 + w)
    assert torch.equal(out[0, 0, -1, 0, 0], torch.tensor(2.0))
    assert torch.equal(smp.blend_chunks(vids[:1], overlap), vids[0])


@pytest.mark.parametrize(
    "chunks, keep, overlap, want",
    [
        (1, 33, 9, 5),  # the 33-frame video: 5 real latent frames of 8
        (1, 57, 9, 8),
        (1, 9, 9, 2),
        (1, 1, 9, 1),
        (2, 105, 9, 8),  # a 14-frame grid: the last chunk is all real frames
        (2, 89, 9, 6),  # a 12-frame grid: 6 real of 8; 48 frames before it, 41 kept from it
        (2, 89, 2, 6),  # NVIDIA's blend: 55 before, 34 kept
        (2, 9, 9, 2),  # frames kept only from the first chunk: the last still yields the blended head
    ],
)
def test_last_chunk_latent_frames(chunks, keep, overlap, want):
    assert smp.last_chunk_latent_frames(chunks, keep, 8, 8, overlap) == want


def test_blend_with_a_shorter_last_chunk_equals_blending_whole_chunks_then_cutting():
    g = torch.Generator().manual_seed(0)
    vids = [torch.randn(1, 3, 57, 2, 2, generator=g) for _ in range(3)]
    whole = smp.blend_chunks(vids, 9)
    short = smp.blend_chunks(vids[:2] + [vids[2][:, :, :20]], 9)
    assert short.shape[2] == 2 * 48 + 20 and torch.equal(short, whole[:, :, : short.shape[2]])
    with pytest.raises(ValueError, match="cannot blend chunks"):
        smp.blend_chunks(vids[:2] + [vids[2][:, :, :8]], 9)  # shorter than the cross-fade


# --------------------------------------------------------------------------------------------------- network bits


def test_patchify_order_and_time_features():
    x = torch.randn(1, 3, 2, 4, 6)
    y = Patchify(2, 1)(x)
    assert y.shape == (1, 2, 2, 3, 12)
    t, h, w = 1, 1, 2
    expect = [x[0, c, t, 2 * h + m, 2 * w + n] for c in range(3) for m in range(2) for n in range(2)]
    assert torch.equal(y[0, t, h, w], torch.stack(expect))
    feats = TimestepFeatures(8)(torch.tensor([0.5]))
    freqs = [10000 ** (-i / 4) for i in range(4)]
    ref = [math.cos(0.5 * f) for f in freqs] + [math.sin(0.5 * f) for f in freqs]
    assert torch.allclose(feats[0], torch.tensor(ref), atol=1e-6)


def test_rope_angles_formula():
    cfg = get_dit_config("tiny")  # head dim 16: dim_h = dim_w = 4, dim_t = 8; h/w extrapolation 1.5
    ang = RoPE3D(cfg).angles(2, 3, 4, fps=24.0)
    assert ang.shape == (24, 16)
    th, tt = 10000 * 1.5 ** (4 / 2), 10000.0
    pos = 1 * 12 + 2 * 4 + 3  # (t=1, h=2, w=3)
    half = [1 * tt ** (-2 * i / 8) for i in range(4)] + [2 * th ** (-2 * i / 4) for i in range(2)]
    half += [3 * th ** (-2 * i / 4) for i in range(2)]
    assert torch.allclose(ang[pos], torch.tensor(half + half), rtol=1e-6)
    assert torch.allclose(RoPE3D(cfg).angles(2, 1, 1, fps=12.0)[1, :4], 2 * ang[12, :4], rtol=1e-6)


# ------------------------------------------------------------------------------------------------------- CV8x8x8


def test_cv8x8x8_released_layout():
    with torch.device("meta"):
        sd = ContinuousVideoDecoder(CVConfig()).state_dict()
    shapes = {
        "post_quant_conv.conv3d.weight": (16, 16, 1, 1, 1),
        "decoder.conv_in.0.conv3d.weight": (512, 16, 1, 3, 3),
        "decoder.up.2.block.0.conv1.0.conv3d.weight": (512, 512, 1, 3, 3),
        "decoder.up.1.upsample.conv1.conv3d.weight": (512, 512, 3, 1, 1),  # time and space at the middle level
        "decoder.up.1.upsample.conv2.conv3d.weight": (512, 512, 1, 3, 3),
        "decoder.up.0.block.2.conv2.1.conv3d.weight": (256, 256, 3, 1, 1),
        "decoder.up.0.block.0.nin_shortcut.conv3d.weight": (256, 512, 1, 1, 1),
        "decoder.conv_out.1.conv3d.weight": (192, 192, 3, 1, 1),
        "decoder.unpatcher3d.wavelets": (2,),
    }
    for key, shape in shapes.items():
        assert tuple(sd[key].shape) == shape, key
    assert not any(k.startswith("decoder.up.2.upsample") for k in sd)  # NVIDIA's identity up-sampler
    inferred, released = infer_cv_config(sd), CVConfig()
    assert inferred.widths == released.widths == (256, 512, 512)
    assert inferred == CVConfig(channels=256, channels_mult=(1, 2, 2))  # the same network, written with the gcd


def test_cv_decoder_backends_and_normalisation(folders, tmp_path):
    _, cv = folders
    jit, eager = load_cv_decoder(cv, "jit"), load_cv_decoder(cv, "eager")
    lat = torch.randn(1, 16, 16, 4, 4, generator=torch.Generator().manual_seed(1))
    a, b = jit.decode(lat), eager.decode(lat)
    assert a.shape == (1, 3, 2 * 57, 32, 32) and torch.equal(a, b)  # two chunks of 8 latent frames
    mean, std = torch.load(cv / "mean_std.pt", weights_only=True)
    first = lat[:, :, :8] / 0.5 * std[:, :, :8] + mean[:, :, :8]
    with torch.no_grad():
        assert torch.equal(a[:, :, :57], eager.network(first))
    torch.save((torch.zeros(16 * 4), torch.ones(16 * 4)), tmp_path / "mean_std.pt")
    (tmp_path / "decoder.jit").write_bytes((cv / "decoder.jit").read_bytes())
    with pytest.raises(ValueError, match=r"mean has 64 values; expected 16 channels x at least 8 latent frames"):
        load_cv_decoder(tmp_path)
    with pytest.raises(ValueError, match=r"was traced in torch.float32 and runs only in it"):
        load_cv_decoder(cv, "jit", dtype=torch.bfloat16)


@pytest.mark.parametrize("backend", ["jit", "eager"])
def test_cv_decoder_is_causal_so_a_prefix_of_latent_frames_decodes_to_a_prefix_of_frames(folders, backend):
    """Why the pipeline decodes only the latent frames whose frames it keeps: the first n of a chunk give the first
    1 + 8 (n - 1) frames of the whole chunk's decode (fp32 on CPU: within 1e-5; on the H200 in bf16 the convolutions
    round differently at another shape, BENCHMARKS.md issue 13)."""
    dec = load_cv_decoder(folders[1], backend)
    lat = torch.randn(1, 16, 8, 4, 4, generator=torch.Generator().manual_seed(2))
    whole = dec.decode(lat)
    assert whole.shape == (1, 3, 57, 32, 32)
    for n in (1, 2, 5):
        part = dec.decode(lat[:, :, :n])
        assert part.shape == (1, 3, 1 + 8 * (n - 1), 32, 32)
        assert (part - whole[:, :, : part.shape[2]]).abs().max().item() < 1e-5
    two = dec.decode(torch.cat([lat, lat[:, :, :3]], dim=2))  # a whole chunk, then a 3-frame one
    assert two.shape == (1, 3, 57 + 17, 32, 32) and torch.equal(two[:, :, :57], whole)


@pytest.mark.parametrize("frames", [5, 12, 14])
def test_decoding_only_the_kept_latent_frames_matches_decoding_whole_chunks(decoder, monkeypatch, frames):
    """The pipeline's cut against decoding every chunk whole (NVIDIA's work), the same seed: the same frames."""
    got = decoder.decode_tokens(_tokens(frames), seed=4)
    monkeypatch.setattr(smp, "last_chunk_latent_frames", lambda *args: 8)  # every chunk decoded whole
    whole = decoder.decode_tokens(_tokens(frames), seed=4)
    assert got.shape == whole.shape == (1, 3, 1 + 8 * (frames - 1), 32, 32)
    assert (got - whole).abs().max().item() < 1e-5


# ------------------------------------------------------------------------------------------------------ pipeline


def test_tiny_decoder_end_to_end(decoder):
    video = decoder.decode_tokens(_tokens(), seed=0)
    assert video.shape == (1, 3, 33, 32, 32) and video.dtype == torch.float32
    assert torch.isfinite(video).all() and video.min() >= -1 and video.max() <= 1
    assert decoder.stats.chunks == 1 and len(decoder.stats.step_s) == 15
    other = decoder.decode_tokens(_tokens(seed=1), seed=0)
    assert (video - other).abs().max() > 0.1  # the tokens condition the result


def test_same_seed_same_video_and_offload(decoder, folders):
    a = decoder.decode_tokens(_tokens(), seed=7)
    assert torch.equal(a, decoder.decode_tokens(_tokens(), seed=7))
    assert not torch.equal(a, decoder.decode_tokens(_tokens(), seed=8))
    off = DiffusionDecoder(
        *folders, device="cpu", offload_network=True, offload_tokenizer=True, tokenizer_backend="eager"
    )
    assert off.network is None and off.tokenizer is None
    assert torch.equal(a, off.decode_tokens(_tokens(), seed=7))
    assert off.network is None and off.stats.load_network_s > 0 and off.stats.load_tokenizer_s > 0


def test_generate_grid_to_33_frame_mp4(decoder, tmp_path):
    # The tiny generate preset's grid (5 x 4 x 6 tokens, 64x96) through decode_tokens and the generate writer.
    from nemo_cosmos_ar import video_io

    grid = torch.randint(0, 64000, (1, 5, 4, 6), generator=torch.Generator().manual_seed(2))
    video = decoder.decode_tokens(grid, seed=0)[0]
    assert video.shape == (3, 33, 64, 96)
    video_io.write_video(tmp_path / "out.mp4", video, fps=25.0, layout="CTHW")
    info = video_io.probe(tmp_path / "out.mp4")
    assert (info.num_frames, info.height, info.width, info.fps) == (33, 64, 96, 25.0)


@pytest.mark.parametrize("frames, chunks", [(5, 1), (14, 2)])
def test_chunked_decode_lengths(decoder, folders, frames, chunks):
    video = decoder.decode_tokens(_tokens(frames), seed=0)
    assert video.shape == (1, 3, 1 + 8 * (frames - 1), 32, 32) and decoder.stats.chunks == chunks
    nv = DiffusionDecoder(*folders, device="cpu", sampler=SamplerConfig(blend="nvidia", num_steps=2))
    assert nv.decode_tokens(_tokens(frames), seed=0).shape == video.shape
    assert decoder.decode_tokens(_tokens(frames), seed=0, num_frames=9).shape[2] == 9


def test_guidance_inputs_and_batched_passes(decoder, folders):
    seen = []
    net = decoder.network
    forward = net.forward

    def spy(x, t, context, tokens, fps=24.0, context_rows=None):
        seen.append((context.clone(), tokens.clone(), context_rows))
        return forward(x, t, context, tokens, fps, context_rows)

    net.forward = spy
    try:
        batched = decoder.decode_tokens(_tokens(), seed=3)
    finally:
        del net.forward
    ctx, tok, rows = seen[0]
    assert rows == 1  # the unconditional row's cross-attention is skipped
    chunk = smp.split_tokens(_tokens(), 8, 2)[0]
    assert len(seen) == 15 and ctx.shape == (2, 16, 32) and tok.shape == (2, 8, 2, 2)
    assert torch.equal(ctx[0], load_generic_prompt(folders[0], 32)[0]) and torch.equal(tok[0], chunk[0])
    assert torch.equal(ctx[1], torch.zeros(16, 32)) and torch.equal(tok[1], torch.zeros(8, 2, 2, dtype=torch.long))
    two = DiffusionDecoder(*folders, device="cpu", sampler=SamplerConfig(batch_guidance=False))
    assert torch.allclose(two.decode_tokens(_tokens(), seed=3), batched, atol=1e-4)


def test_zero_context_rows_skip_cross_attention_exactly(decoder):
    """An all-zero context makes the cross-attention exactly zero (RMS-normed keys and values of 0), so skipping it
    for rows past ``context_rows`` changes nothing: checked row by row against the full computation."""
    net = decoder.network
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 16, 8, 4, 4, generator=g)
    ctx = torch.randn(3, 16, 32, generator=g)
    ctx[1:] = 0
    tok = torch.randint(0, 64000, (3, 8, 2, 2), generator=g)
    t = torch.tensor(0.3)
    full = net(x, t, ctx, tok)
    skipped = net(x, t, ctx, tok, context_rows=1)
    assert torch.equal(skipped[1:], full[1:])  # the same kernels at the same batch: bit-equal
    # row 0's cross-attention ran at batch 1 instead of 3: only the GEMMs' blocking differs (fp32 CPU)
    torch.testing.assert_close(skipped[:1], full[:1], rtol=0, atol=1e-6)
    torch.testing.assert_close(net(x[1:], t, ctx[1:], tok[1:], context_rows=0), full[1:], rtol=0, atol=1e-6)
    ctx[1, 0, 0] = 1.0  # a context that is not zero does attend: skipping it would be wrong
    assert not torch.equal(net(x, t, ctx, tok)[1], full[1])


@pytest.mark.parametrize("batch_guidance", [True, False])
def test_sampling_keeps_tensors_on_the_network_device(folders, batch_guidance):
    # The meta device refuses to mix with CPU tensors (other than 0-dim scalars), as CUDA does: a stand-in for the
    # GPU path (noise, context, tokens and the sampler's scalars must all reach the network's device).
    sampler = SamplerConfig(num_steps=2, batch_guidance=batch_guidance)
    dd = DiffusionDecoder(*folders, device="meta", dtype=torch.bfloat16, offload_tokenizer=True, sampler=sampler)
    chunk = smp.split_tokens(_tokens(), 8, 2)[0]
    lat = dd._sample_chunk(dd.network, chunk, dd.context, torch.Generator().manual_seed(0))
    assert lat.device.type == "meta" and lat.dtype == torch.bfloat16 and lat.shape == (1, 16, 8, 4, 4)
    pixels = load_cv_decoder(folders[1], "eager", device="meta", dtype=torch.bfloat16).decode(lat)
    assert pixels.device.type == "meta" and pixels.shape == (1, 3, 57, 32, 32)


def test_pipeline_errors(decoder, folders, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model.pt not found: the diffusion decoder needs"):
        DiffusionDecoder(tmp_path, folders[1])
    with pytest.raises(ValueError, match=r"expected an integer token grid \[B, T, h, w\], got \(1, 5, 2, 2\) torch"):
        decoder.decode_tokens(_tokens().float())
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 64000\)"):
        decoder.decode_tokens(_tokens() + 64000)
    with pytest.raises(ValueError, match=r"num_frames must be in \[1, 33\] for a 5-frame grid, got 34"):
        decoder.decode_tokens(_tokens(), num_frames=34)
    with pytest.raises(ValueError, match="unknown attention backend 'flash'"):
        DiffusionDecoder(*folders, attention="flash")


@pytest.mark.skipif(not NVIDIA_SRC.is_dir(), reason="NVIDIA's cosmos-predict1 source is not unpacked here")
def test_parity_with_nvidia_modules():
    script = REPO / "tests" / "scripts" / "parity_diffusion_decoder.py"
    cmd = [sys.executable, str(script), "--stub-missing", "--src", str(NVIDIA_SRC)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "PARITY OK" in proc.stdout
