"""The DiT's GEMM epilogues (``diffusion_decoder/epilogues.py``) on CPU: the real code (``torch._addmm_activation``
with its GELU, the gate folded into the weight, ``addmm_`` into the residual), which on the GPU is cuBLASLt's
epilogue and cuBLAS with beta = 1; here only the device check is opened so it runs on CPU tensors. On the CPU torch's
GELU epilogue is the exact GELU, so in fp32 the fused path is the separate passes' maths to fp32 rounding. The GPU
tier (tests/test_gpu.py) checks the cuBLAS kernels at the 7B widths against fp32.
"""

import pytest
import torch

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
def on_cpu(monkeypatch):
    """``usable`` without its CUDA/bf16 condition, and a record of every fused call: ``gelu`` operand shapes,
    ``gate`` operand shapes and whether the call fused (False: it returned None, the separate ops ran)."""
    calls = {"gelu": [], "gate": []}
    real_gelu, real_gate = epilogues.linear_gelu, epilogues.linear_gate_residual

    def gelu(x, w):
        calls["gelu"].append((tuple(x.shape), tuple(w.shape)))
        return real_gelu(x, w)

    def gate(y, w, x, g):
        shapes = (tuple(y.shape), tuple(w.shape), tuple(x.shape), tuple(g.shape))
        out = real_gate(y, w, x, g)
        calls["gate"].append((shapes, out is not None))
        return out

    def usable(x, w, mode):
        if mode not in epilogues.EPILOGUES:
            raise ValueError(f"unknown DiT epilogues {mode!r}")
        return mode == "auto" and not torch.is_grad_enabled()

    monkeypatch.setattr(epilogues, "usable", usable)
    monkeypatch.setattr(epilogues, "linear_gelu", gelu)
    monkeypatch.setattr(epilogues, "linear_gate_residual", gate)
    return calls


def test_every_sub_block_ends_in_a_fused_product_and_matches_the_separate_passes(on_cpu):
    net, args, cfg = _net_and_args()
    with torch.no_grad():
        net.set_epilogues("off")
        want, want_uncond = net(*args), net(*args, context_rows=1)
        assert on_cpu == {"gelu": [], "gate": []}
        net.set_epilogues("auto")
        got = net(*args)
        # the unconditional row's cross-attention is skipped (context_rows=1): its sub-block runs on row 0 only,
        # and its product writes row 0 of x in place, the other row untouched
        got_uncond = net(*args, context_rows=1)
    scale = want.abs().max().item()
    assert (got - want).abs().max().item() < 1e-5 * scale  # fp32, exact GELU on CPU: the same maths
    assert (got_uncond - want_uncond).abs().max().item() < 1e-5 * scale
    assert (got_uncond - got).abs().max().item() > 1e-3 * scale  # the skip is a different computation
    d, hidden, blocks, tokens = cfg.model_channels, cfg.mlp_hidden, cfg.num_blocks, 2 * 4 * 4
    assert on_cpu["gelu"] == [((2, tokens, d), (hidden, d))] * blocks * 2
    full = [
        ((2, tokens, d), (d, d), (2, tokens, d), (2, 1, d)),  # self-attention out
        ((2, tokens, d), (d, d), (2, tokens, d), (2, 1, d)),  # cross-attention out
        ((2, tokens, hidden), (d, hidden), (2, tokens, d), (2, 1, d)),  # MLP down
    ]
    uncond = [full[0], ((1, tokens, d), (d, d), (1, tokens, d), (1, 1, d)), full[2]]
    assert on_cpu["gate"] == [(c, True) for c in full * blocks + uncond * blocks]  # every one fused


def test_rows_with_their_own_noise_level_take_the_separate_passes(on_cpu):
    net, (x, _, ctx, tok, fps), cfg = _net_and_args()
    t = torch.tensor([0.3, 0.7])  # one noise level per row: the gates differ, one GEMM cannot apply them
    with torch.no_grad():
        net.set_epilogues("off")
        want = net(x, t, ctx, tok, fps)
        net.set_epilogues("auto")
        got = net(x, t, ctx, tok, fps)
    assert (got - want).abs().max().item() < 1e-5 * want.abs().max().item()
    assert len(on_cpu["gate"]) == 3 * cfg.num_blocks and not any(fused for _, fused in on_cpu["gate"])
    assert len(on_cpu["gelu"]) == cfg.num_blocks  # the GELU needs no shared gate


def test_one_noise_level_as_a_scalar_or_per_row_gives_the_same_output():
    # the scalar shares one modulation between the rows (stride-0 views), the [2] tensor computes each row's
    net, (x, t, ctx, tok, fps), _ = _net_and_args()
    with torch.no_grad():
        shared, per_row = net(x, t, ctx, tok, fps), net(x, t.expand(2).clone(), ctx, tok, fps)
    assert (shared - per_row).abs().max().item() < 1e-5 * per_row.abs().max().item()


def test_bf16_epilogues_are_as_close_to_fp32_as_the_separate_passes(on_cpu):
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
    assert err_on < 1.5 * err_off + 1e-3 * scale


def test_gate_residual_writes_into_x_and_checks_its_operands():
    g = torch.Generator().manual_seed(3)
    y, w, x = torch.randn(2, 5, 8, generator=g), torch.randn(4, 8, generator=g), torch.randn(2, 5, 4, generator=g)
    gate_row = torch.randn(1, 1, 4, generator=g)
    want = x + gate_row * (y @ w.T)
    keep = x.clone()
    out = epilogues.linear_gate_residual(y, w, x, gate_row.expand(2, 1, 4))
    assert out is x and (x - want).abs().max().item() < 1e-5  # in place
    x = keep.clone()
    assert epilogues.linear_gate_residual(y, w, x, torch.randn(2, 1, 4, generator=g)) is None  # two gates
    assert epilogues.linear_gate_residual(y.transpose(0, 1).contiguous().transpose(0, 1), w, x, gate_row) is None
    assert torch.equal(x, keep)  # refused: untouched
    assert epilogues.shared_gate(gate_row).shape == (4,)
    assert epilogues.shared_gate(torch.randn(4)) is None


def test_linear_gelu_is_the_gelu_of_the_product():
    g = torch.Generator().manual_seed(4)
    x, w = torch.randn(2, 3, 16, generator=g), torch.randn(32, 16, generator=g)
    out = epilogues.linear_gelu(x, w)
    assert out.shape == (2, 3, 32)
    assert (out - torch.nn.functional.gelu(x @ w.T)).abs().max().item() < 1e-5  # CPU: the exact GELU


def test_usable_needs_bf16_cuda_and_a_known_mode():
    x, w = torch.zeros(4, 256, dtype=torch.bfloat16), torch.zeros(256, 256, dtype=torch.bfloat16)
    assert not epilogues.usable(x, w, "auto")  # a CPU tensor
    assert not epilogues.usable(x, w, "off")
    with pytest.raises(ValueError, match="unknown DiT epilogues 'fast'"):
        epilogues.usable(x, w, "fast")
    with pytest.raises(ValueError, match="unknown DiT epilogues 'fast'"):
        DiffusionDecoderDiT(get_dit_config("tiny")).set_epilogues("fast")


def test_generate_options_check_the_epilogues():
    with pytest.raises(ValueError, match="--diffusion-decoder-epilogues must be auto or off, got 'on'"):
        GenerateOptions(input="a.png", dd_epilogues="on")
