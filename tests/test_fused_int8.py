"""The int8 decode step with the norms, residual adds and SwiGLU folded into the CUDA kernel
(``inference/fused_int8.py``, ``--decode-int8-kernel fused``), on a CPU: the products run as
``gemv_cuda.reference`` (the kernel's arithmetic in torch), so the layer loop's structure is checked here and the
kernel against ``reference`` in the GPU tier (``tests/test_gpu.py``)."""

import pytest
import torch
import torch.nn.functional as F

from gen_assets import tiny_mcore_engine
from nemo_cosmos_ar.inference import engine as en
from nemo_cosmos_ar.inference import fused_int8, gemv_cuda, quant


def test_interleave_glu_puts_each_gate_row_beside_its_up_row():
    """Rows ``[g0, g1, g2, u0, u1, u2]`` become ``[g0, u0, g1, u1, g2, u2]``, scales alike; odd rows are refused."""
    q = torch.arange(6 * 4, dtype=torch.int8).view(6, 4)
    s = torch.arange(6, dtype=torch.float32)
    qi, si = quant.interleave_glu(q, s)
    assert [int(r[0]) // 4 for r in qi] == [0, 3, 1, 4, 2, 5]
    assert si.tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    assert qi.is_contiguous() and torch.equal(qi[1], q[3])
    with pytest.raises(ValueError, match=r"interleave_glu: needs \[2F, K\] rows and 2F scales, got \(5, 4\)"):
        quant.interleave_glu(q[:5], s[:5])


def _operands(n: int, k: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    q, s = quant.quantize_rows(torch.randn(n, k, generator=g) * 0.05)
    x = torch.randn(1, 1, k, generator=g).bfloat16()
    return q, s, x, g


def test_reference_fusions_equal_the_unfused_ops_in_bf16():
    """``reference`` with each fusion against the unfused bf16 ops (F.rms_norm, the product rounded to bf16,
    F.silu(gate) * up, the residual add): within 2 units in bf16's last place (2^-6 relative + 1e-2 absolute);
    and the fusions change the result (a wrong norm weight or no residual are far off)."""
    k, n = 256, 96
    q, s, x, g = _operands(n, k, 0)
    w = (1 + 0.1 * torch.randn(k, generator=g)).bfloat16()
    deq = q.float() * s[:, None]

    def close(a, b):
        a, b = a.float(), b.float()
        return bool(((a - b).abs() <= 2**-6 * b.abs() + 1e-2).all())

    h = F.rms_norm(x.float(), (k,), w.float(), 1e-5).bfloat16()
    y_norm = gemv_cuda.reference(x, q, s, norm=(w, 1e-5))
    assert y_norm.shape == (1, 1, n) and y_norm.dtype == torch.bfloat16
    assert close(y_norm, (h.float() @ deq.t()).bfloat16())
    assert not close(gemv_cuda.reference(x, q, s, norm=(w * 2, 1e-5)), y_norm)

    r = torch.randn(1, 1, n, generator=g).bfloat16()
    y_res = gemv_cuda.reference(x, q, s, residual=r)
    assert close(y_res, r + (x.float() @ deq.t()).bfloat16())
    assert not close(y_res, gemv_cuda.reference(x, q, s))

    qi, si = quant.interleave_glu(q, s)
    y_glu = gemv_cuda.reference(x, qi, si, glu=True)
    gate, up = (x.float() @ deq.t()).bfloat16().chunk(2, dim=-1)
    assert y_glu.shape == (1, 1, n // 2)
    assert close(y_glu, F.silu(gate.float()) * up.float())
    with pytest.raises(ValueError, match=r"residual needs 96 torch.bfloat16 values \(and no glu\)"):
        gemv_cuda.reference(x, q, s, residual=r[..., :95])


def test_fused_step_gives_the_unfused_step_logits():
    """Two batch-1 decode steps after a prompt (tiny model, fp32, so the roundings are none): the fused int8 step
    (``fused_int8.run_layers`` with ``reference`` products) gives the unfused step's logits (torch on the dequantized
    weights) within 1e-5. It must read the int8 copies, fc1's interleaved: doubling the dequantized weights changes
    nothing, and swapping fc1's gate and up halves changes the logits."""
    eng = tiny_mcore_engine(seed=11)
    with torch.no_grad():
        quant.quantize_model(eng.model)
    assert fused_int8.supported(eng)
    fused_int8.prepare(eng.model, drop_plain=False)
    prompt = torch.randint(0, 64000, (1, 40), generator=torch.Generator().manual_seed(4))
    nxt = torch.tensor([[7], [4242]])
    cache0 = eng.new_cache(1, 48)

    def two_steps():
        cache = [(k.clone(), v.clone()) for k, v in cache0]
        return [eng.dynamic_step(nxt[i : i + 1], 40 + i, cache) for i in range(2)]

    with torch.inference_mode():
        eng.prefill(prompt, cache0)
        ref = two_steps()
        eng.fused_step = eng.gemv = True
        eng.int8_kernel = "fused"
        for _, module in quant.decode_projections(eng.model):
            module.weight.mul_(2.0)
        got = two_steps()
        for a, b in zip(ref, got):
            assert a.shape == b.shape == (1, 64000)
            assert (a - b).abs().max().item() < 1e-5
            assert a.abs().max().item() > 0.1
        fc1 = eng.model.decoder.layers[0].mlp.linear_fc1
        fc1.weight_int8_glu = fc1.weight_int8_glu.view(-1, 2, fc1.weight_int8_glu.shape[1]).flip(1).flatten(0, 1)
        swapped = two_steps()
        assert (swapped[0] - ref[0]).abs().max().item() > 1e-3


def test_prepare_drops_the_plain_fc1_copy_and_fused_is_refused_on_a_cpu():
    """``prepare`` keeps one int8 copy of fc1 (the interleaved one): the bytes it reports added are 0; the other
    projections keep theirs. ``configure_decode(int8_kernel="fused")`` on a CPU is a one-line error."""
    eng = tiny_mcore_engine(seed=12)
    with torch.no_grad():
        quant.quantize_model(eng.model)
    fc1 = eng.model.decoder.layers[0].mlp.linear_fc1
    n = fc1.weight_int8.shape[0]
    assert fused_int8.prepare(eng.model) == 0
    assert not hasattr(fc1, "weight_int8") and fc1.weight_int8_glu.shape[0] == n
    assert quant.int8_weight(fc1)[1] is None  # other paths multiply the dequantized bf16/fp32 weight
    assert quant.int8_weight(eng.model.decoder.layers[0].mlp.linear_fc2)[1] is not None
    with pytest.raises(ValueError, match=r"^--decode-int8-kernel fused: the CUDA kernel does not compile here"):
        en.configure_decode(eng, "sdpa", "on", "on", "off", weights="int8", int8_kernel="fused")
