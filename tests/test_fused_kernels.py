"""Stand-ins for the apex / TransformerEngine kernels Megatron-Core asks for (model/fused_wgrad.py,
model/fused_rope.py): the same function as Megatron's unfused path."""

import pytest
import torch


def test_wgrad_accumulation_equals_matmul_plus_add():
    from nemo_cosmos_ar.model.fused_wgrad import TorchWgradAccum

    g = torch.Generator().manual_seed(0)
    x, dy = torch.randn(13, 8, generator=g), torch.randn(13, 6, generator=g)
    buf = torch.randn(6, 8, generator=g)
    want = buf + dy.t() @ x
    TorchWgradAccum.wgrad_gemm_accum_fp16(x, dy, buf)  # fp32 operands work too: addmm into the buffer
    assert (buf - want).abs().max().item() < 1e-5
    b16 = torch.zeros(6, 8, dtype=torch.bfloat16)
    TorchWgradAccum.wgrad_gemm_accum_fp16(x.bfloat16(), dy.bfloat16(), b16)
    assert torch.equal(b16, (dy.bfloat16().t() @ x.bfloat16()))  # one product into a zeroed buffer: identical
    f32 = torch.zeros(6, 8)
    TorchWgradAccum.wgrad_gemm_accum_fp32(x.bfloat16(), dy.bfloat16(), f32)
    assert torch.equal(f32, (dy.bfloat16().t() @ x.bfloat16()).float())


def test_wgrad_install_enables_megatron_fusion():
    from megatron.core.tensor_parallel import layers

    from nemo_cosmos_ar.model import fused_wgrad

    fused_wgrad.install()
    assert layers._grad_accum_fusion_available and layers.fused_weight_gradient_mlp_cuda is fused_wgrad.TorchWgradAccum


def test_fused_rope_equals_megatron_unfused_forward_and_backward():
    from megatron.core.models.common.embeddings import rope_utils

    from nemo_cosmos_ar.model import fused_rope

    g = torch.Generator().manual_seed(1)
    t = torch.randn(9, 2, 4, 16, generator=g, requires_grad=True)
    freqs = torch.randn(9, 1, 1, 16, generator=g)
    want = rope_utils._apply_rotary_pos_emb_bshd(t, freqs)
    t2 = t.detach().clone().requires_grad_()
    got = fused_rope.fused_apply_rotary_pos_emb(t2, freqs)
    w = torch.randn(want.shape, generator=g)
    (want * w).sum().backward()
    (got * w).sum().backward()
    assert (got - want).abs().max().item() < 1e-5
    assert (t2.grad - t.grad).abs().max().item() < 1e-5
    fused_rope.install()
    assert rope_utils.fused_apply_rotary_pos_emb is not None


def _frozen_linear_dgrads(b: int, layout: str) -> dict:
    """grad_input of a ``[s=37, b, h=16] -> [.., v=64]`` linear under Megatron's frozen-weight Function, ours, and
    Megatron's trainable-weight Function, for one upstream gradient of the given layout (fp32)."""
    from megatron.core.tensor_parallel import layers

    from nemo_cosmos_ar.model.frozen_linear import FoldedLinearWithFrozenWeight

    g = torch.Generator().manual_seed(10 + b)
    s, h, v = 37, 16, 64
    w, x = torch.randn(v, h, generator=g) / v**0.5, torch.randn(s, b, h, generator=g)
    if layout == "transposed":  # as the output layer's gradient: GPTModel hands the loss logits.transpose(0, 1)
        grad = torch.randn(b, s, v, generator=g).transpose(0, 1)
    elif layout == "strided":  # every second column: neither contiguous nor transposed
        grad = torch.randn(s, b, 2 * v, generator=g)[..., ::2]
    else:
        grad = torch.randn(s, b, v, generator=g)
    out = {}
    for name, fn in (("megatron", FoldedLinearWithFrozenWeight.__base__), ("ours", FoldedLinearWithFrozenWeight)):
        xi = x.clone().requires_grad_()
        fn.apply(xi, w, None, False, None).backward(grad)
        out[name] = xi.grad
    xi, wt = x.clone().requires_grad_(), w.clone().requires_grad_()
    layers.LinearWithGradAccumulationAndAsyncCommunication.apply(
        xi, wt, None, False, False, False, None, None, None
    ).backward(grad)
    out["trainable"] = xi.grad
    out["exact"] = grad.double().matmul(w.double())
    return out


@pytest.mark.parametrize("b", [1, 2])
@pytest.mark.parametrize("layout", ["transposed", "contiguous", "strided"])
def test_frozen_linear_dgrad_is_megatrons(b, layout):
    """Our frozen-weight backward gives Megatron's grad_input (fp32): bit-identical to the trainable-weight path's
    (the same 2-D GEMM), and within 1e-6 of the frozen path's own, which for the transposed gradient is a bmm of
    one-row products (summed in another order) and otherwise the same GEMM (then bit-identical too)."""
    d = _frozen_linear_dgrads(b, layout)
    assert d["ours"].shape == (37, b, 16)
    assert torch.equal(d["ours"], d["trainable"])
    assert (d["ours"] - d["megatron"]).abs().max().item() <= 1e-6
    assert layout == "transposed" or torch.equal(d["ours"], d["megatron"])
    assert (d["ours"].double() - d["exact"]).abs().max().item() <= 2e-6


def test_frozen_linear_install_replaces_megatrons_function():
    from megatron.core.tensor_parallel import layers

    from nemo_cosmos_ar.model import frozen_linear

    frozen_linear.install()
    assert layers.LinearWithFrozenWeight is frozen_linear.FoldedLinearWithFrozenWeight
    assert frozen_linear.install() is False  # idempotent
