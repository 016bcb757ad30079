"""Stand-ins for the apex / TransformerEngine kernels Megatron-Core asks for (model/fused_wgrad.py,
model/fused_rope.py): the same function as Megatron's unfused path."""

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
