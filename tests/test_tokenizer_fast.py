"""The ``fast`` tokenizer backend (issue 15) on CPU: the fused Haar transforms are bit-identical to the level-by-level
ones in bf16 (and fp16), within rounding in fp32; the fast backend gives the eager backend's indices exactly and its
decoded frames within 1e-5 in fp32.

torch.compile is exercised with the ``aot_eager`` compiler backend (the same graph capture and functionalisation as
inductor, without generating C++ kernels, which takes minutes on a CPU); the inductor kernels are measured on the
GPU by bench/bench_tokenizer.py.
"""

import pytest
import torch

from nemo_cosmos_ar import video_io
from nemo_cosmos_ar.data import samples
from nemo_cosmos_ar.tokenizer import backends
from nemo_cosmos_ar.tokenizer.backends import load_tokenizer, resolve_backend
from nemo_cosmos_ar.tokenizer.fast import EagerGroupNorm, FastOptions, FastTokenizer
from nemo_cosmos_ar.tokenizer.fixtures import write_random_tokenizer
from nemo_cosmos_ar.tokenizer.fused_haar import FusedPatcher3D, FusedUnPatcher3D
from nemo_cosmos_ar.tokenizer.modules import _HAAR_3D_SCALE, Patcher3D, UnPatcher3D
from nemo_cosmos_ar.tokenizer.networks import CausalVideoTokenizer, tiny_config

# Fused vs level-by-level Haar, fp32, values in [-1, 1]: the originals' convolutions may round x0·k0 + x1·k1 as one
# fused multiply-add, the fused form rounds the products first; measured 1.8e-7 (forward), 0 (inverse).
HAAR_FP32_TOL = 1e-6
# Decoded frames, fast vs eager backend, fp32: the fused patcher's rounding, through the network.
DECODE_FP32_TOL = 1e-5


def _clip(batch: int, frames: int, height: int = 64, width: int = 96, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, frames, height, width, generator=g) * 2 - 1


def _real_looking(frames: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """``[1, 3, T, H, W]``: 8-bit frames of a rendered scene in [-1, 1], as the tokenizer sees decoded video."""
    return video_io.to_model_range(samples.render_bouncing_balls(frames, height, width, seed=seed))[None]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_random_tokenizer(tmp_path_factory.mktemp("tok") / "tok", "tiny", seed=0, autoencoder=False)


@pytest.fixture(scope="module")
def eager_ref(folder):
    """Eager fp32 indices and reconstruction of a 2x17x64x96 clip batch."""
    eager = load_tokenizer(folder)
    video = _clip(2, 17)
    ids = eager.encode(video)
    return video, ids, eager.decode(ids)


def test_haar_scaling_rounds_alike_every_way():
    """Every finite bf16 value: eager's bf16 ``y / s`` and ``y * s`` equal fp32 division, multiplication by the fp32
    reciprocal (how CUDA kernels divide by a scalar) and fp64 arithmetic, each rounded to bf16 once -- so the fused
    transforms' scaling cannot depend on the device or on how a compiler divides. (Not so in fp16, whose 3 more
    mantissa bits let the fp32 reciprocal land on the other side of a rounding boundary.)"""
    v = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    v = v[torch.isfinite(v)]
    bits = lambda t: t.to(torch.bfloat16).view(torch.int16)  # noqa: E731  (bit for bit: -0 is not +0 here)
    inv32 = 1 / torch.tensor(_HAAR_3D_SCALE, dtype=torch.float32)
    for way in (v.float() / _HAAR_3D_SCALE, v.float() * inv32, v.double() / _HAAR_3D_SCALE):
        assert torch.equal(bits(way), bits(v / _HAAR_3D_SCALE))
    for way in (v.float() * _HAAR_3D_SCALE, v.double() * _HAAR_3D_SCALE):
        assert torch.equal(bits(way), bits(v * _HAAR_3D_SCALE))
    h = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16).view(torch.float16)
    h = h[torch.isfinite(h)]
    assert not torch.equal((h.float() * inv32).half(), (h.float() / _HAAR_3D_SCALE).half())  # the fp16 caveat


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_fused_haar_bit_exact_in_low_precision(dtype):
    """Real-looking and noise clips (1 + 8k frames; 1 frame): the fused patcher's bands and the fused un-patcher's
    frames are the level-by-level modules' bit for bit, eager and (first clip) traced by torch.compile."""
    p, fp = Patcher3D(4).to(dtype), FusedPatcher3D(4, 3).to(dtype)
    u, fu = UnPatcher3D(4).to(dtype), FusedUnPatcher3D(4, 3).to(dtype)
    clips = [
        _real_looking(17, 64, 96),
        _real_looking(9, 32, 48, seed=1),
        _clip(2, 9, 32, 16, seed=5),
        _clip(1, 1, 16, 32),
    ]
    for i, video in enumerate(clips):
        x = video.to(dtype)
        bands, frames = p(x), u(p(x))
        assert bands.shape == (x.shape[0], 192, (x.shape[2] + 3) // 4, x.shape[3] // 4, x.shape[4] // 4)
        assert frames.shape == x.shape and frames.dtype == dtype
        assert torch.equal(fp(x), bands) and torch.equal(fu(bands), frames)
        if i == 0:  # one shape: each new shape traces again
            compile_kw = dict(backend="aot_eager", fullgraph=True, dynamic=False)
            assert torch.equal(torch.compile(fp, **compile_kw)(x), bands)
            assert torch.equal(torch.compile(fu, **compile_kw)(bands), frames)
            # the opaque un-patcher (what the fast backend compiles): one op in the graph, the same bits
            ou = FusedUnPatcher3D(4, 3, opaque=True).to(dtype)
            graphs = []

            def keep(gm, example_inputs, graphs=graphs):
                graphs.append(gm)
                return gm.forward

            assert torch.equal(torch.compile(ou, backend=keep, fullgraph=True)(bands), frames)
            # its fake (shape/stride) kernel agrees with the real op, as inductor asserts on the GPU
            torch.library.opcheck(torch.ops.nemo_cosmos_ar.haar_unpatch.default, (bands, ou.wavelets, 4))
            called = [str(n.target) for g in graphs for n in g.graph.nodes if n.op == "call_function"]
            assert called == ["nemo_cosmos_ar.haar_unpatch.default"]
    noise_bands = (torch.randn(1, 192, 3, 4, 6, generator=torch.Generator().manual_seed(6)) * 4).to(dtype)
    assert torch.equal(fu(noise_bands), u(noise_bands))  # any bands, not only a patcher's
    # the rounding matters: the exact transform (fp32, rounded once) differs from eager on many bands
    exact = Patcher3D(4)(clips[0]).to(dtype)
    assert (exact != p(clips[0].to(dtype))).float().mean() > 0.05


@pytest.mark.parametrize("shape", [(2, 3, 17, 64, 96), (1, 3, 1, 16, 32), (1, 3, 33, 32, 16)])
def test_fused_haar_equals_original_fp32(shape):
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    p, fp = Patcher3D(4), FusedPatcher3D(4, 3)
    bands, fused = p(x), fp(x)
    assert fused.shape == bands.shape == (shape[0], 192, (shape[2] + 3) // 4, shape[3] // 4, shape[4] // 4)
    assert (fused - bands).abs().max() <= HAAR_FP32_TOL
    u, fu = UnPatcher3D(4), FusedUnPatcher3D(4, 3)
    assert (fu(bands) - u(bands)).abs().max() <= HAAR_FP32_TOL
    assert (fu(fused) - x).abs().max() <= 2 * HAAR_FP32_TOL  # perfect reconstruction


def test_fused_haar_fallback_and_state_dict():
    fp = FusedPatcher3D(4, 3)
    odd = _clip(1, 9, height=18, width=20, seed=3)  # not a multiple of 4: the level-by-level path, bit for bit
    assert torch.equal(fp(odd), Patcher3D(4)(odd))
    assert set(fp.state_dict()) == set(Patcher3D(4).state_dict())  # released keys, nothing added
    assert set(FusedUnPatcher3D(4, 3).state_dict()) == set(UnPatcher3D(4).state_dict())


def test_fast_backend_gives_eager_indices_in_fp32(folder, eager_ref):
    video, ids, rec = eager_ref
    for opts in (FastOptions(compile=False), FastOptions(compile=False, channels_last=True, fused_haar=False)):
        fast = load_tokenizer(folder, "fast", fast_options=opts)
        assert isinstance(fast, FastTokenizer) and fast.options.cudnn_benchmark is False  # resolved for CPU
        assert torch.equal(fast.encode(video), ids), opts
        assert (fast.decode(ids) - rec).abs().max() <= DECODE_FP32_TOL, opts
    assert ids.unique().numel() > 20  # many codes in play, so equal indices mean something


def test_compiled_fast_backend_gives_eager_indices(folder, eager_ref):
    video, ids, rec = eager_ref
    fast = load_tokenizer(folder, "fast", fast_options=FastOptions(compile_backend="aot_eager"))
    assert torch.equal(fast.encode(video), ids)
    out = fast.decode(ids)
    assert out.shape == (2, 3, 17, 64, 96) and out.dtype == torch.float32
    assert (out - rec).abs().max() <= DECODE_FP32_TOL
    # compiled once per shape: the two shapes seen so far, each timed on its first call only
    assert set(fast.compile_seconds) == {("encode", (2, 3, 17, 64, 96)), ("decode", (2, 6, 3, 4, 6))}
    first = dict(fast.compile_seconds)
    assert torch.equal(fast.encode(video), ids) and fast.compile_seconds == first
    # the state dict keeps the released keys (the fused kernels are not persistent)
    ref_keys = set(CausalVideoTokenizer(tiny_config()).encoder_jit().state_dict())
    assert set(fast.network.encoder_jit().state_dict()) == ref_keys


def test_eager_reductions_keep_bf16_indices_when_compiled(folder):
    """bf16, compiled with inductor's decompositions run by eager kernels (``aot_eager_decomp_partition``, the CPU
    stand-in for inductor): with the GroupNorms and softmaxes kept eager the fast backend gives eager bf16's indices
    and decoded frames bit for bit; decomposed, it does not (inductor's reductions sum in another order; measured
    99.3 % of indices equal here, and 83.1 % with inductor's C++ kernels on the released sizes)."""
    bf16 = torch.bfloat16
    video = torch.cat([_real_looking(17, 128, 192, seed=s) for s in range(2)])
    eager = load_tokenizer(folder, dtype=bf16)
    ids = eager.encode(video)
    rec = eager.decode(ids)
    opts = dict(compile_backend="aot_eager_decomp_partition")
    fast = load_tokenizer(folder, "fast", dtype=bf16, fast_options=FastOptions(**opts))
    norms = [m for m in fast.network.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert norms and all(isinstance(m, EagerGroupNorm) for m in norms)
    assert torch.equal(fast.encode(video), ids) and torch.equal(fast.decode(ids), rec)
    decomposed = load_tokenizer(folder, "fast", dtype=bf16, fast_options=FastOptions(**opts, eager_reductions=False))
    assert not torch.equal(decomposed.encode(video), ids)


def test_warmup_and_chunked_clips(folder):
    fast = load_tokenizer(folder, "fast", pixel_chunk_duration=9, fast_options=FastOptions(compile=False))
    assert fast.warmup(9, 64, 96, batch=1, calls=1) > 0
    assert set(fast.compile_seconds) == {("encode", (1, 3, 9, 64, 96)), ("decode", (1, 6, 2, 4, 6))}
    eager = load_tokenizer(folder, pixel_chunk_duration=9)
    video = _clip(1, 18, seed=4)
    assert torch.equal(fast.encode(video), eager.encode(video))


def test_backend_switch_and_errors(folder):
    assert resolve_backend("auto", "cpu") == "eager"
    assert resolve_backend("auto", "cuda") == backends.DEFAULT_GPU_BACKEND == "fast"  # measured on the H200
    assert resolve_backend("fast", "cpu") == "fast"
    assert type(load_tokenizer(folder, "auto")).__name__ == "EagerTokenizer"
    with pytest.raises(ValueError, match="unknown compile_mode 'fastest'"):
        FastOptions(compile_mode="fastest")
    with pytest.raises(ValueError, match=r"choose one of \('eager', 'jit', 'fast'\) or 'auto'"):
        load_tokenizer(folder, "onnx")
    assert FastOptions(compile_mode="reduce-overhead").cuda_graphs and not FastOptions().cuda_graphs
    # the accuracy-safe defaults on a GPU: fused Haar (bit-exact), no channels-last layout; None = on CUDA
    cuda = FastOptions().resolved(torch.device("cuda"))
    assert cuda.fused_haar and cuda.channels_last is False and cuda.cudnn_benchmark is True
    assert FastOptions(channels_last=None).resolved(torch.device("cuda")).channels_last is True
