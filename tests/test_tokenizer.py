"""DV8x16x16 tokenizer: released key layout, token-grid shapes at released sizes (meta device), eager vs TorchScript
parity on a random-weight folder in the released format, chunking, causality and clear errors."""

import pytest
import torch

from nemo_cosmos_ar.tokenizer.backends import EagerTokenizer, JitTokenizer, load_tokenizer
from nemo_cosmos_ar.tokenizer.fixtures import build_random_network, write_random_tokenizer
from nemo_cosmos_ar.tokenizer.networks import CausalVideoTokenizer, TokenizerConfig, infer_config, tiny_config


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return write_random_tokenizer(tmp_path_factory.mktemp("tok") / "Cosmos-Tokenize1-DV8x16x16-720p", "tiny", seed=0)


@pytest.fixture(scope="module")
def backends(tiny_folder):
    return load_tokenizer(tiny_folder, "eager"), load_tokenizer(tiny_folder, "jit")


def _clip(batch: int, frames: int, height: int = 64, width: int = 96, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, frames, height, width, generator=g) * 2 - 1


def test_released_state_dict_layout():
    net = CausalVideoTokenizer(TokenizerConfig())  # released sizes, random init (~2 s on CPU)
    enc, dec = net.encoder_jit().state_dict(), net.decoder_jit().state_dict()
    assert len(enc) == 148 and len(dec) == 181
    assert sum(p.numel() for p in net.parameters()) == 110_898_294
    shapes = {
        "encoder.conv_in.0.conv3d.weight": (128, 192, 1, 3, 3),  # 3 * 4^3 Haar channels in
        "encoder.conv_in.1.conv3d.weight": (128, 128, 3, 1, 1),
        "encoder.down.0.block.0.nin_shortcut.conv3d.weight": (256, 128, 1, 1, 1),
        "encoder.down.0.downsample.conv2.conv3d.weight": (256, 256, 3, 1, 1),  # the one temporal down-sampling
        "encoder.mid.attn_1.0.q.conv3d.weight": (512, 512, 1, 1, 1),
        "encoder.mid.attn_1.1.norm.norm.weight": (512,),
        "encoder.conv_out.1.conv3d.weight": (16, 16, 3, 1, 1),
        "quant_conv.conv3d.weight": (6, 16, 1, 1, 1),
        "quantizer.implicit_codebook": (64000, 6),
        "encoder.patcher3d.patch_size_buffer": (1,),
    }
    for key, shape in shapes.items():
        assert tuple(enc[key].shape) == shape, key
    assert "encoder.down.1.downsample.conv2.conv3d.weight" not in enc
    assert "encoder.down.2.downsample.conv1.conv3d.weight" not in enc
    dec_shapes = {
        "inv_quant.quantizer._levels": (6,),
        "post_quant_conv.conv3d.weight": (16, 6, 1, 1, 1),
        "decoder.conv_in.0.conv3d.weight": (512, 16, 1, 3, 3),
        "decoder.up.0.block.2.conv2.1.conv3d.weight": (256, 256, 3, 1, 1),
        "decoder.up.1.upsample.conv1.conv3d.weight": (512, 512, 3, 1, 1),  # time + space
        "decoder.up.2.upsample.conv2.conv3d.weight": (512, 512, 1, 3, 3),  # space only
        "decoder.conv_out.1.conv3d.weight": (192, 192, 3, 1, 1),
        "decoder.unpatcher3d.wavelets": (2,),
    }
    for key, shape in dec_shapes.items():
        assert tuple(dec[key].shape) == shape, key
    assert "decoder.up.2.upsample.conv1.conv3d.weight" not in dec
    assert infer_config(enc, dec) == TokenizerConfig()


@pytest.mark.parametrize(
    "frames,height,width,grid",
    [(33, 640, 1024, (5, 40, 64)), (33, 384, 640, (5, 24, 40)), (17, 640, 848, (3, 40, 53))],
)
def test_token_grid_shapes_at_released_size(frames, height, width, grid):
    # The real network on the meta device: every layer's shape logic runs, no memory or compute.
    with torch.device("meta"):
        net = CausalVideoTokenizer(TokenizerConfig())
        indices, codes, _ = net.encode(torch.empty(1, 3, frames, height, width))
        video = net.decode(indices)
    assert tuple(indices.shape) == (1, *grid) and indices.dtype == torch.int32
    assert tuple(codes.shape) == (1, 6, *grid)
    assert tuple(video.shape) == (1, 3, frames, height, width)
    assert TokenizerConfig().latent_shape(frames, height, width) == grid
    if grid == (5, 40, 64):
        assert grid[0] * grid[1] * grid[2] == 12800


def test_backend_latent_shape_with_chunks(backends):
    eager, jit = backends
    assert eager.latent_shape(33, 640, 1024) == jit.latent_shape(33, 640, 1024) == (5, 40, 64)
    assert eager.latent_shape(66, 640, 1024) == (10, 40, 64)  # two independent 33-frame chunks
    assert eager.latent_shape(9, 64, 96) == (2, 4, 6)
    assert eager.codebook_size == 64000


def test_random_folder_has_released_layout(tiny_folder, backends):
    assert sorted(p.name for p in tiny_folder.iterdir()) == ["autoencoder.jit", "decoder.jit", "encoder.jit"]
    eager, jit = backends
    assert isinstance(eager, EagerTokenizer) and isinstance(jit, JitTokenizer)
    assert eager.config == tiny_config() and jit.config == tiny_config()
    assert eager.dtype == jit.dtype == torch.float32
    enc = torch.jit.load(str(tiny_folder / "encoder.jit")).state_dict()
    assert set(enc) == set(CausalVideoTokenizer(tiny_config()).encoder_jit().state_dict())


def test_eager_and_torchscript_agree(backends):
    eager, jit = backends
    video = _clip(2, 17)  # traced on a 9x64x64 clip: this also checks that the trace generalises
    ids_eager, ids_jit = eager.encode(video), jit.encode(video)
    assert ids_eager.shape == (2, 3, 4, 6) and ids_eager.dtype == torch.int64
    assert torch.equal(ids_eager, ids_jit)
    assert ids_eager.unique().numel() > 20  # random weights still spread over many codes
    assert 0 <= int(ids_eager.min()) and int(ids_eager.max()) < 64000
    rec_eager, rec_jit = eager.decode(ids_eager), jit.decode(ids_eager)
    assert rec_eager.shape == (2, 3, 17, 64, 96) and rec_eager.dtype == torch.float32
    assert (rec_eager - rec_jit).abs().max() < 1e-4
    assert rec_eager.abs().max() > 0.1  # not a degenerate all-zero output


def test_autoencoder_jit_matches(tiny_folder, backends):
    eager, _ = backends
    auto = torch.jit.load(str(tiny_folder / "autoencoder.jit"))
    video = _clip(1, 9, seed=3)
    rec, _, ids = auto(video)
    assert torch.equal(ids.long(), eager.encode(video))
    assert (rec - eager.decode(ids)).abs().max() < 1e-4


def test_chunks_and_sub_batches_are_independent(tiny_folder):
    chunked = load_tokenizer(tiny_folder, pixel_chunk_duration=9, max_enc_batch_size=1, max_dec_batch_size=1)
    whole = load_tokenizer(tiny_folder, pixel_chunk_duration=None)
    video = _clip(2, 18, seed=1)
    ids = chunked.encode(video)
    assert ids.shape == (2, 4, 4, 6)
    expected = torch.cat([whole.encode(video[:, :, :9]), whole.encode(video[:, :, 9:])], dim=1)
    assert torch.equal(ids, expected)
    rec = chunked.decode(ids)
    assert rec.shape == (2, 3, 18, 64, 96)
    expected_rec = torch.cat([whole.decode(ids[:, :2]), whole.decode(ids[:, 2:])], dim=2)
    assert (rec - expected_rec).abs().max() < 1e-5


def test_tokenizer_is_causal(backends):
    eager, _ = backends
    video = _clip(1, 17, seed=2)
    ids = eager.encode(video)
    assert torch.equal(eager.encode(video[:, :, :9]), ids[:, :2])
    assert torch.equal(eager.encode(video[:, :, :1]), ids[:, :1])
    assert (eager.decode(ids[:, :2]) - eager.decode(ids)[:, :, :9]).abs().max() < 1e-4


def test_bf16_eager_and_dtype_rules(tiny_folder, backends):
    eager, _ = backends
    bf16 = load_tokenizer(tiny_folder, dtype=torch.bfloat16)
    video = _clip(1, 9, seed=4)
    ids = bf16.encode(video)
    assert ids.dtype == torch.int64 and ids.shape == (1, 2, 4, 6)
    assert (ids == eager.encode(video)).float().mean() > 0.5  # bf16 rounding flips only some codes
    assert bf16.decode(ids).dtype == torch.float32
    with pytest.raises(ValueError, match="traced in torch.float32.*backend='eager'"):
        load_tokenizer(tiny_folder, "jit", dtype=torch.bfloat16)


def test_bf16_folder_eager_and_torchscript_agree(tmp_path):
    # A folder traced in bf16, like NVIDIA's export: both backends run it in bf16 and give the same numbers.
    folder = write_random_tokenizer(tmp_path / "bf16", "tiny", seed=5, dtype=torch.bfloat16, autoencoder=False)
    eager, jit = load_tokenizer(folder), load_tokenizer(folder, "jit")
    assert eager.dtype == jit.dtype == torch.bfloat16
    video = _clip(1, 17, seed=6)
    ids = eager.encode(video)
    assert torch.equal(ids, jit.encode(video))
    assert (eager.decode(ids) - jit.decode(ids)).abs().max() < 1e-4


def test_random_weights_are_seeded():
    a, b, c = build_random_network("tiny", 0), build_random_network("tiny", 0), build_random_network("tiny", 1)
    wa, wb, wc = (n.encoder.conv_in[0].conv3d.weight for n in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_clear_errors(tmp_path, tiny_folder, backends):
    eager, _ = backends
    with pytest.raises(FileNotFoundError, match="does not exist.*write_random_tokenizer"):
        load_tokenizer(tmp_path / "nowhere")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "encoder.jit").write_bytes((tiny_folder / "encoder.jit").read_bytes())
    with pytest.raises(FileNotFoundError, match="decoder.jit not found"):
        load_tokenizer(partial)
    (partial / "decoder.jit").write_bytes(b"not torchscript")
    with pytest.raises(ValueError, match="decoder.jit is not a readable TorchScript file"):
        load_tokenizer(partial)
    with pytest.raises(ValueError, match="unknown tokenizer backend"):
        load_tokenizer(tiny_folder, "onnx")
    with pytest.raises(ValueError, match=r"16 frames.*1 \+ 8k"):
        eager.encode(_clip(1, 16))
    with pytest.raises(ValueError, match="40 frames cannot be cut into chunks of 33"):
        eager.encode(_clip(1, 40))
    with pytest.raises(ValueError, match="not a multiple of 16"):
        eager.encode(_clip(1, 9, height=60))
    with pytest.raises(ValueError, match=r"expected video \[B, 3, T, H, W\]"):
        eager.encode(torch.zeros(3, 9, 64, 96))
    with pytest.raises(ValueError, match="must lie in"):
        eager.decode(torch.full((1, 2, 4, 6), 64002))
