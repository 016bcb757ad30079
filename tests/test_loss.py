"""The cosmos-predict1 loss: first-latent-frame target mask and z-loss, checked against direct formulas; the chunked
loss (what training runs) against the plain autograd version and against independent formulas; the training-loop
reduction against ``cosmos_ar_loss`` on the same batch."""

import math

import pytest
import torch
import torch.nn.functional as F

from nemo_cosmos_ar.model.loss import (
    Z_LOSS_COEFF,
    cosmos_ar_loss,
    first_frame_loss_mask,
    split_clip,
    token_terms,
    token_terms_reference,
)


def test_mask_counts_for_training_grids():
    for shape, kept in [((5, 24, 40), 3840), ((5, 40, 53), 8480), ((5, 40, 64), 10240)]:
        m = first_frame_loss_mask(shape)
        t, h, w = shape
        assert m.shape == (t * h * w - 1,)
        assert int(m.sum()) == kept
        assert m[: h * w - 1].sum() == 0 and m[h * w - 1] == 1  # first kept target = first token of frame 1


def test_z_loss_coefficient_is_cosmos_predict1s():
    assert Z_LOSS_COEFF == 1e-4


def test_loss_equals_direct_formula():
    g = torch.Generator().manual_seed(0)
    shape, vocab = (3, 2, 3), 50
    clip = torch.randint(0, vocab, (2, 18), generator=g)
    tokens, labels = split_clip(clip)
    logits = torch.randn(2, 17, vocab, generator=g) * 3
    mask = first_frame_loss_mask(shape)[None].expand(2, -1)
    loss, metrics = cosmos_ar_loss(logits, labels, mask, vocab_parallel=False)
    lab = labels.clone()
    lab[:, :5] = -100  # H·W − 1 = 5 targets of frame 0 ignored
    ce = F.cross_entropy(logits.reshape(-1, vocab), lab.reshape(-1), ignore_index=-100)
    z = torch.logsumexp(logits, -1).pow(2).mean()  # over all 17 positions, masked ones included
    assert torch.allclose(loss, ce + 1e-4 * z, atol=1e-6)
    assert torch.allclose(metrics["ce"], ce, atol=1e-6)
    assert torch.allclose(metrics["z_loss"], z, atol=1e-5)
    hits = (logits.argmax(-1) == labels).float()[:, 5:].mean()
    assert torch.allclose(metrics["accuracy"], hits)


def test_loss_value_on_fixed_logits():
    """Hand-computable case: uniform logits over V give CE = lse = ln V, so loss = ln V + 1e-4 (ln V)²."""
    v = 64
    logits = torch.zeros(1, 4, v)
    labels = torch.tensor([[1, 2, 3, 4]])
    loss, _ = cosmos_ar_loss(logits, labels, torch.ones(1, 4), vocab_parallel=False)
    assert loss.item() == pytest.approx(math.log(v) + 1e-4 * math.log(v) ** 2, abs=1e-6)


@pytest.mark.parametrize("chunk_rows", [1, 5, 0])
def test_chunked_terms_equal_reference_fp32(chunk_rows):
    """Values and gradients of the chunked loss equal plain autograd within 1e-5 (fp32), for any chunking."""
    g = torch.Generator().manual_seed(1)
    logits = (torch.randn(3, 23, 300, generator=g) * 5).requires_grad_()
    labels = torch.randint(0, 300, (3, 23), generator=g)
    ref_in = logits.detach().clone().requires_grad_()
    got, want = token_terms(logits, labels, False, chunk_rows), token_terms_reference(ref_in, labels, False)
    for a, b in ((got.ce, want.ce), (got.lse, want.lse), (got.correct, want.correct)):
        assert (a - b).abs().max().item() < 1e-5
    w = torch.rand(3, 23, generator=g)
    ((got.ce * w).sum() + 0.1 * got.lse.pow(2).sum()).backward()
    ((want.ce * w).sum() + 0.1 * want.lse.pow(2).sum()).backward()
    assert (logits.grad - ref_in.grad).abs().max().item() < 1e-5
    assert logits.grad.abs().max().item() > 0.1  # the comparison is not between two zeros


def test_chunked_gradient_matches_formula_and_keeps_dtype():
    """d/dx (ce + lse) = 2·softmax − onehot, in the logits' dtype; the input logits are left untouched."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(6, 40, generator=g)
    labels = torch.randint(0, 40, (6,), generator=g)
    for dtype, tol in ((torch.float32, 1e-6), (torch.bfloat16, 8e-3)):
        xi = x.to(dtype).detach().clone().requires_grad_()
        before = xi.detach().clone()
        t = token_terms(xi, labels, False, 4)
        (t.ce + t.lse).sum().backward()
        want = 2 * torch.softmax(xi.detach().float(), -1) - F.one_hot(labels, 40)
        assert xi.grad.dtype == dtype
        assert (xi.grad.float() - want).abs().max().item() < tol
        assert torch.equal(xi.detach(), before)


def test_training_reduction_equals_cosmos_ar_loss():
    """What the NeMo training step optimises (loss_sum / num_tokens) and logs equals ``cosmos_ar_loss``; the z-loss
    is scaled by the token count so that Megatron's division by it leaves z·mean(lse²)."""
    from nemo_cosmos_ar.nemo_glue.model import CosmosARLossReduction

    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 17, 50, generator=g) * 3
    labels = torch.randint(0, 50, (2, 17), generator=g)
    mask = first_frame_loss_mask((3, 2, 3))[None].expand(2, -1).contiguous()
    red = CosmosARLossReduction(z_loss_coeff=1e-2)
    loss_sum, n, extra = red.forward({"labels": labels, "loss_mask": mask}, logits)
    want, metrics = cosmos_ar_loss(logits, labels, mask, z_loss_coeff=1e-2, vocab_parallel=False)
    assert int(n) == int(mask.sum()) == 24
    assert (loss_sum / n).item() == pytest.approx(want.item(), abs=1e-5)
    stats = extra["stats"]
    assert (stats[1] / stats[4]).item() == pytest.approx(metrics["ce"].item(), abs=1e-5)
    assert (stats[2] / stats[4]).item() == pytest.approx(metrics["z_loss"].item(), abs=1e-4)
    assert (stats[3] / stats[4]).item() == pytest.approx(metrics["accuracy"].item(), abs=1e-6)


def test_training_step_loss_on_fixed_logits_uses_cosmos_predict1s_coefficient():
    """The reduction NeMo's training step builds from the default config (no coefficient passed anywhere) gives the
    hand-computed loss: each of 3 positions has logit 2 at one of V = 8 ids and 0 elsewhere, so lse = ln(e² + 7) at
    every position; the 2 unmasked targets are hit (CE = lse − 2), the masked one is not (it would be CE = lse)."""
    from nemo_cosmos_ar.nemo_glue.model import CosmosARConfigTiny, CosmosARModel

    red = CosmosARModel(CosmosARConfigTiny()).training_loss_reduction
    logits = torch.zeros(1, 3, 8)
    logits[0, torch.arange(3), torch.tensor([1, 4, 6])] = 2.0
    labels = torch.tensor([[0, 4, 6]])
    mask = torch.tensor([[0.0, 1.0, 1.0]])
    loss_sum, n, _ = red.forward({"labels": labels, "loss_mask": mask}, logits)
    lse = math.log(math.exp(2.0) + 7.0)
    assert int(n) == 2
    assert (loss_sum / n).item() == pytest.approx((lse - 2.0) + 1e-4 * lse**2, abs=1e-6)
