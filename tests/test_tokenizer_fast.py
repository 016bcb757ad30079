"""The ``fast`` tokenizer backend (issue 15) on CPU in fp32: the fused Haar transforms equal the level-by-level ones
within rounding, and the fast backend gives the eager backend's indices exactly and its decoded frames within 1e-5.

torch.compile is exercised with the ``aot_eager`` compiler backend (the same graph capture and functionalisation as
inductor, without generating C++ kernels, which takes minutes on a CPU); the inductor kernels are measured on the
GPU by bench/bench_tokenizer.py.
"""

import pytest
import torch

from nemo_cosmos_ar.tokenizer import backends
from nemo_cosmos_ar.tokenizer.backends import load_tokenizer, resolve_backend
from nemo_cosmos_ar.tokenizer.fast import FastOptions, FastTokenizer
from nemo_cosmos_ar.tokenizer.fixtures import write_random_tokenizer
from nemo_cosmos_ar.tokenizer.fused_haar import FusedPatcher3D, FusedUnPatcher3D, patcher_kernel, unpatcher_kernel
from nemo_cosmos_ar.tokenizer.modules import Patcher3D, UnPatcher3D
from nemo_cosmos_ar.tokenizer.networks import CausalVideoTokenizer, tiny_config

# Fused vs level-by-level Haar, fp32, values in [-1, 1]: the originals multiply by a rounded 1/sqrt(2) three times
# per level; measured 1.8e-7 (forward) and 8.9e-7 (inverse).
HAAR_FP32_TOL = 2e-6
# bf16: the fused convolution rounds once, the original once per level; measured 0.0039 / 0.0195, i.e. within one
# bf16 step (2^-5) at the magnitudes involved (low bands reach 8).
HAAR_BF16_TOL = 2**-5
# Decoded frames, fast vs eager backend, fp32: the fused un-patcher's rounding, measured 3.3e-6.
DECODE_FP32_TOL = 1e-5


def _clip(batch: int, frames: int, height: int = 64, width: int = 96, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, frames, height, width, generator=g) * 2 - 1


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


def test_fused_haar_kernels_are_exact_signs():
    p = Patcher3D(4)
    k, u = patcher_kernel(p, 3), unpatcher_kernel(UnPatcher3D(4), 3)
    assert k.shape == u.shape == (192, 3, 4, 4, 4)
    assert set((k * 64).abs().unique().tolist()) == {0.0, 1.0} and set(u.abs().unique().tolist()) == {0.0, 1.0}
    # band b of channel c reads only channel c; the lll band (b = 0) is the block mean
    assert torch.equal(k[0, 0], torch.full((4, 4, 4), 1 / 64, dtype=torch.float64)) and not k[0, 1:].any()
    assert torch.equal(k[4, 1], k[3, 0])  # band 1 of channel 1 is band 1 of channel 0 (channel = band * 3 + c)
    # the inverse undoes the forward on a block: sum over bands of U[band, q] F[band, p] = [p == q]
    f_mat, u_mat = k[0::3, 0].reshape(64, 64), u[0::3, 0].reshape(64, 64)
    assert torch.equal(u_mat.T @ f_mat, torch.eye(64, dtype=torch.float64))


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


def test_fused_haar_bf16_and_fallback():
    x = _clip(1, 9, seed=2).bfloat16()
    p, fp, u, fu = Patcher3D(4), FusedPatcher3D(4, 3), UnPatcher3D(4), FusedUnPatcher3D(4, 3)
    bands = p(x)
    assert fp(x).dtype == torch.bfloat16 and (fp(x).float() - bands.float()).abs().max() <= HAAR_BF16_TOL
    assert (fu(bands).float() - u(bands).float()).abs().max() <= HAAR_BF16_TOL
    odd = _clip(1, 9, height=18, width=20, seed=3)  # not a multiple of 4: the level-by-level path, bit for bit
    assert torch.equal(fp(odd), p(odd))


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


def test_warmup_and_chunked_clips(folder):
    fast = load_tokenizer(folder, "fast", pixel_chunk_duration=9, fast_options=FastOptions(compile=False))
    assert fast.warmup(9, 64, 96, batch=1, calls=1) > 0
    assert set(fast.compile_seconds) == {("encode", (1, 3, 9, 64, 96)), ("decode", (1, 6, 2, 4, 6))}
    eager = load_tokenizer(folder, pixel_chunk_duration=9)
    video = _clip(1, 18, seed=4)
    assert torch.equal(fast.encode(video), eager.encode(video))


def test_backend_switch_and_errors(folder):
    assert resolve_backend("auto", "cpu") == "eager"
    assert resolve_backend("auto", "cuda") == backends.DEFAULT_GPU_BACKEND
    assert resolve_backend("fast", "cpu") == "fast"
    assert type(load_tokenizer(folder, "auto")).__name__ == "EagerTokenizer"
    with pytest.raises(ValueError, match="unknown compile_mode 'fastest'"):
        FastOptions(compile_mode="fastest")
    with pytest.raises(ValueError, match=r"choose one of \('eager', 'jit', 'fast'\) or 'auto'"):
        load_tokenizer(folder, "onnx")
    assert FastOptions(compile_mode="reduce-overhead").cuda_graphs and not FastOptions().cuda_graphs
