"""The DiT's GEMM epilogues (``diffusion_decoder/epilogues.py``): the wiring through the network, the fallback and
the argument checks, on CPU. QuACK runs only on a Hopper GPU; here the two fused products are stood in for by their
definitions in fp32 without the intermediate bf16 roundings (what the epilogue computes), so the tests check that
every sub-block routes its last GEMM through them, with the right operands, and that a failure falls back to the
separate passes. The GPU tier (tests/test_gpu.py) checks QuACK's kernels themselves.
"""

import warnings

import pytest
import torch
import torch.nn.functional as F

from nemo_cosmos_ar.diffusion_decoder import epilogues
from nemo_cosmos_ar.diffusion_decoder.config import get_dit_config
from nemo_cosmos_ar.diffusion_decoder.network import DiffusionDecoderDiT
from nemo_cosmos_ar.inference.options import GenerateOptions


def _net_and_args(dtype=torch.float32):
    cfg = get_dit_config("tiny")
    torch.manual_seed(0)
    net = DiffusionDecoderDiT(cfg).eval()
    with torch.no_grad():  # norms not all ones, as in the released checkpoints
        for p in net.parameters():
            if p.ndim == 1:
                p.add_(0.1 * torch.randn_like(p))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, cfg.latent_channels, 2, 8, 8, generator=g)
    ctx = torch.randn(2, 6, cfg.context_dim, generator=g)
    tok = torch.randint(0, cfg.token_vocab_size, (2, 2, 4, 4), generator=g)
    return net.to(dtype), (x.to(dtype), torch.tensor(0.3, dtype=dtype), ctx.to(dtype), tok, 24.0), cfg


@pytest.fixture
def stand_ins(monkeypatch):
    """QuACK's two products replaced by their fp32 definitions; returns the calls' operand shapes."""
    calls = {"gelu": [], "gate": []}

    def gelu(x, w):
        calls["gelu"].append((tuple(x.shape), tuple(w.shape)))
        return F.gelu(x.float() @ w.float().T).to(x.dtype)

    def gate(y, w, x, g):
        calls["gate"].append((tuple(y.shape), tuple(w.shape), tuple(x.shape), tuple(g.shape)))
        return (x.float() + g.float() * (y.float() @ w.float().T)).to(x.dtype)

    monkeypatch.setattr(epilogues, "usable", lambda x, w, mode: mode == "auto")
    monkeypatch.setattr(epilogues, "linear_gelu", gelu)
    monkeypatch.setattr(epilogues, "linear_gate_residual", gate)
    return calls


def test_every_sub_block_ends_in_the_fused_products_and_matches_the_separate_passes(stand_ins):
    net, args, cfg = _net_and_args()
    with torch.no_grad():
        net.set_epilogues("off")
        want = net(*args)
        assert stand_ins == {"gelu": [], "gate": []}
        net.set_epilogues("auto")
        got = net(*args)
        # the unconditional rows' cross-attention is skipped (context_rows=1): its sub-block makes no product
        net(*args, context_rows=1)
    d, hidden, blocks, tokens = cfg.model_channels, cfg.mlp_hidden, cfg.num_blocks, 2 * 4 * 4
    assert (got - want).abs().max().item() < 1e-5 * want.abs().max().item()  # fp32: the same maths
    assert stand_ins["gelu"] == [((2, tokens, d), (hidden, d))] * blocks * 2
    gate_calls = [
        ((2, tokens, d), (d, d), (2, tokens, d), (2, 1, d)),  # self-attention out
        ((2, tokens, d), (d, d), (2, tokens, d), (2, 1, d)),  # cross-attention out
        ((2, tokens, hidden), (d, hidden), (2, tokens, d), (2, 1, d)),  # MLP down
    ]
    uncond = [gate_calls[0], ((1, tokens, d), (d, d), (1, tokens, d), (1, 1, d)), gate_calls[2]]
    assert stand_ins["gate"] == gate_calls * blocks + uncond * blocks


def test_bf16_epilogues_differ_from_the_separate_passes_by_bf16_rounding_only(stand_ins):
    net, args, _ = _net_and_args(torch.bfloat16)
    ref_net, ref_args, _ = _net_and_args(torch.float32)
    with torch.no_grad():
        ref = ref_net(*ref_args)
        net.set_epilogues("off")
        off = net(*args).float()
        net.set_epilogues("auto")
        on = net(*args).float()
    scale = ref.abs().max().item()
    err_off, err_on = (off - ref).abs().max().item(), (on - ref).abs().max().item()
    assert 0 < (on - off).abs().max().item() < 0.05 * scale  # fewer roundings: different bits, same values
    assert err_on < 1.5 * err_off + 1e-3 * scale  # no worse against fp32 than the separate passes


def test_a_failed_product_falls_back_to_the_separate_passes(stand_ins, monkeypatch):
    net, args, _ = _net_and_args()
    with torch.no_grad():
        net.set_epilogues("off")
        want = net(*args)
        monkeypatch.setattr(epilogues, "linear_gelu", lambda x, w: None)  # as after QuACK failed
        monkeypatch.setattr(epilogues, "linear_gate_residual", lambda y, w, x, g: None)
        net.set_epilogues("auto")
        got = net(*args)
    assert torch.equal(got, want)


def test_usable_and_the_failure_record(monkeypatch):
    x, w = torch.zeros(4, 256, dtype=torch.bfloat16), torch.zeros(256, 256, dtype=torch.bfloat16)
    assert not epilogues.usable(x, w, "auto")  # a CPU tensor
    assert not epilogues.usable(x, w, "off")
    with pytest.raises(ValueError, match="unknown DiT epilogues 'fast'"):
        epilogues.usable(x, w, "fast")
    with pytest.raises(ValueError, match="unknown DiT epilogues 'fast'"):
        DiffusionDecoderDiT(get_dit_config("tiny")).set_epilogues("fast")
    monkeypatch.setattr(epilogues, "FAILURES", [])

    def broken():
        raise RuntimeError("no kernel for this GPU\nsecond line")

    with pytest.warns(UserWarning, match=r"fused GEMM epilogues failed \(RuntimeError: no kernel for this GPU\)"):
        assert epilogues._run(broken) is False
    assert epilogues.FAILURES == ["RuntimeError: no kernel for this GPU\nsecond line"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not epilogues.usable(x, w, "auto")  # off for good after a failure, without another warning


def test_generate_options_check_the_epilogues():
    with pytest.raises(ValueError, match="--diffusion-decoder-epilogues must be auto or off, got 'on'"):
        GenerateOptions(input="a.png", dd_epilogues="on")
