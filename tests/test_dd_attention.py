"""The DiT's attention backends (``diffusion_decoder/attention.py``): which one "auto" picks, the errors where a
backend cannot run, and SDPA's output against attention written out in fp64. FlashAttention-4 itself needs a
Hopper or Blackwell GPU: its output against SDPA's is in the GPU tier (tests/test_gpu.py)."""

import pytest
import torch

from nemo_cosmos_ar.diffusion_decoder import attention as att
from nemo_cosmos_ar.diffusion_decoder.config import get_dit_config
from nemo_cosmos_ar.diffusion_decoder.network import DiffusionDecoderDiT


def _reference(q, k, v):
    """Softmax(q k^T / sqrt(D)) v in fp64, per head: ``[B, S, H, D]`` -> ``[B, S, H*D]``."""
    q, k, v = (t.double().transpose(1, 2) for t in (q, k, v))
    w = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)
    out = (w @ v).transpose(1, 2)
    return out.reshape(*out.shape[:2], -1)


@pytest.mark.parametrize("kv_len", [37, 5], ids=["self", "cross"])
def test_sdpa_matches_written_out_attention(kv_len):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 37, 3, 16, generator=g)
    k, v = torch.randn(2, kv_len, 3, 16, generator=g), torch.randn(2, kv_len, 3, 16, generator=g)
    out = att.attend(q, k, v, "sdpa", {})
    assert out.shape == (2, 37, 48)
    assert (out.double() - _reference(q, k, v)).abs().max().item() < 1e-5


def test_auto_resolves_to_sdpa_on_cpu_and_fa4_or_unknown_names_are_refused():
    assert att.resolve("auto", torch.device("cpu")) == "sdpa"
    assert att.resolve("sdpa", torch.device("cpu")) == "sdpa"
    with pytest.raises(
        ValueError, match=r"^attention backend 'fa4': FlashAttention-4 runs on CUDA GPUs only, not on cpu"
    ):
        att.resolve("fa4", torch.device("cpu"))
    with pytest.raises(
        ValueError, match=r"unknown attention backend 'flash'; choose one of \('auto', 'sdpa', 'te', 'fa4'\)"
    ):
        att.resolve("flash", torch.device("cpu"))
    net = DiffusionDecoderDiT(get_dit_config("tiny"))
    with pytest.raises(ValueError, match="unknown attention backend 'auto'"):  # resolved by the caller, not the net
        net.set_attention_backend("auto")
    net.set_attention_backend("fa4")
    assert {m.backend for m in net.modules() if hasattr(m, "backend")} == {"fa4"}


@pytest.mark.skipif(att.fa4_installed(), reason="FlashAttention-4 is installed here")
def test_fa4_missing_is_a_clear_error_at_the_first_call(monkeypatch):
    """Without the package, ``preload``'s thread fails quietly and the first attention call says how to fix it."""
    monkeypatch.setattr(att, "_fa4_import", None)
    att.preload()
    q = torch.randn(1, 4, 2, 8)
    with pytest.raises(RuntimeError, match=r"^attention backend 'fa4' could not import flash_attn\.cute\.interface .*"
                       r"pip install flash-attn-4, or use 'sdpa'$"):  # fmt: skip
        att.attend(q, q, q, "fa4", {})
    with pytest.raises(RuntimeError, match="could not import"):  # the same error again, not a hang
        att.fa4_module()


@pytest.mark.skipif(att.fa4_installed(), reason="FlashAttention-4 is installed here")
def test_decoder_falls_back_to_sdpa_when_an_auto_picked_fa4_fails_to_import(tmp_path, monkeypatch):
    """Where "auto" picked FA4 (a GPU with the package) but its import fails, the decoder warns and decodes with SDPA:
    the same video as an SDPA decoder's, bit for bit. Asked for by name, the failure is an error. (On this CPU
    machine the pick is set by hand: "auto" itself resolves to SDPA here.)"""
    from nemo_cosmos_ar.diffusion_decoder.fixtures import write_random_cv_tokenizer, write_random_decoder
    from nemo_cosmos_ar.diffusion_decoder.pipeline import DiffusionDecoder

    dd_dir = write_random_decoder(tmp_path / "dd", "tiny", seed=0)
    cv_dir = write_random_cv_tokenizer(tmp_path / "cv", "tiny", seed=0)
    tokens = torch.randint(0, 64_000, (1, 5, 4, 6), generator=torch.Generator().manual_seed(0))
    dd = DiffusionDecoder(dd_dir, cv_dir, device="cpu", attention="auto")
    assert dd.attention == "sdpa"
    want = dd.decode_tokens(tokens, seed=3)
    monkeypatch.setattr(att, "_fa4_import", None)
    dd.attention = "fa4"  # what "auto" resolves to on a Hopper GPU with the package found
    with pytest.warns(UserWarning, match=r"FlashAttention-4 is installed but failed to import \(.*\); the diffusion "):
        got = dd.decode_tokens(tokens, seed=3)
    assert torch.equal(got, want) and dd.attention == "sdpa" and dd.stats.attention == "sdpa"
    named = DiffusionDecoder(dd_dir, cv_dir, device="cpu", attention="sdpa")
    named.attention = "fa4"  # asked for by name: no fallback
    with pytest.raises(RuntimeError, match="attention backend 'fa4' could not import"):
        named.decode_tokens(tokens, seed=3)


def test_fa4_tuned_tiles_only_for_hopper_self_attention_at_head_dim_128():
    """The 192-row tiles (measured on the H200 at the DiT's 20,480-token self-attention) are asked for only there:
    not for the 512-row cross-attention, other head dims or Blackwell, which keep FA4's own choice."""
    tuned = {"tile_mn": (192, 128), "mma_pv_is_rs": False, "intra_wg_overlap": True}
    assert att.fa4_tiles(128, 20_480, (9, 0)) == tuned == att.SM90_LONG_TILES
    assert att.fa4_tiles(128, att.LONG_KV, (9, 0)) == tuned
    assert att.fa4_tiles(128, 512, (9, 0)) is None
    assert att.fa4_tiles(64, 20_480, (9, 0)) is None
    assert att.fa4_tiles(128, 20_480, (10, 0)) is None


class _StubFA4:
    """Stands in for FA4's interface module on CPU (the package needs a Hopper GPU): the public call is SDPA; the
    private one returns SDPA too, or raises as a package that refuses the tiles would."""

    def __init__(self, refuse: bool) -> None:
        self.refuse, self.private_calls, self.public_calls = refuse, 0, 0

    def _flash_attn_fwd(self, q, k, v, **tiles):
        self.private_calls += 1
        assert tiles == att.SM90_LONG_TILES
        if self.refuse:
            raise TypeError("_flash_attn_fwd() got an unexpected keyword argument 'tile_mn'")
        return (self.flash_attn_func(q, k, v), None)

    def flash_attn_func(self, q, k, v):
        self.public_calls += 1
        return att.attend(q, k, v, "sdpa", {}).reshape(q.shape)


class _Done:
    def __init__(self, value) -> None:
        self.value = value

    def result(self):
        return self.value


@pytest.mark.parametrize("refuse", [False, True], ids=["taken", "refused"])
def test_fa4_tuned_tiles_fall_back_to_the_default_once_with_one_warning(monkeypatch, refuse):
    stub = _StubFA4(refuse)
    monkeypatch.setattr(att, "_fa4_import", _Done(stub))
    monkeypatch.setattr(att, "_tiles_refused", None)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 9, 2, 8, generator=g) for _ in range(3))
    want = att.attend(q, k, v, "sdpa", {}).reshape(q.shape)
    if refuse:
        with pytest.warns(UserWarning, match=r"FlashAttention-4 refused the DiT's tuned tiles \(TypeError: .*tile_mn"):
            first = att.fa4_attend(q, k, v, att.SM90_LONG_TILES)
    else:
        first = att.fa4_attend(q, k, v, att.SM90_LONG_TILES)
    second = att.fa4_attend(q, k, v, att.SM90_LONG_TILES)  # a refusal is not retried (and not warned again)
    assert torch.equal(first, want) and torch.equal(second, want)
    assert (stub.private_calls, stub.public_calls) == ((1, 2) if refuse else (2, 2))
    assert (att._tiles_refused is not None) == refuse
    assert att.fa4_tiles(128, 20_480, (9, 0)) == (None if refuse else att.SM90_LONG_TILES)
