"""The cosmos-predict1 loss: first-latent-frame target mask and z-loss, checked against direct formulas."""

import torch
import torch.nn.functional as F

from nemo_cosmos_ar.model.loss import cosmos_ar_loss, first_frame_loss_mask, split_clip


def test_mask_counts_for_training_grids():
    for shape, kept in [((5, 24, 40), 3840), ((5, 40, 53), 8480), ((5, 40, 64), 10240)]:
        m = first_frame_loss_mask(shape)
        t, h, w = shape
        assert m.shape == (t * h * w - 1,)
        assert int(m.sum()) == kept
        assert m[: h * w - 1].sum() == 0 and m[h * w - 1] == 1  # first kept target = first token of frame 1


def test_loss_equals_direct_formula():
    g = torch.Generator().manual_seed(0)
    shape, vocab = (3, 2, 3), 50
    clip = torch.randint(0, vocab, (2, 18), generator=g)
    tokens, labels = split_clip(clip)
    logits = torch.randn(2, 17, vocab, generator=g) * 3
    mask = first_frame_loss_mask(shape)[None].expand(2, -1)
    loss, metrics = cosmos_ar_loss(logits, labels, mask, z_loss_coeff=1e-4, vocab_parallel=False)
    lab = labels.clone()
    lab[:, :5] = -100  # H·W − 1 = 5 targets of frame 0 ignored
    ce = F.cross_entropy(logits.reshape(-1, vocab), lab.reshape(-1), ignore_index=-100)
    z = torch.logsumexp(logits, -1).pow(2).mean()  # over all 17 positions, masked ones included
    assert torch.allclose(loss, ce + 1e-4 * z, atol=1e-6)
    assert torch.allclose(metrics["ce"], ce, atol=1e-6)
    hits = (logits.argmax(-1) == labels).float()[:, 5:].mean()
    assert torch.allclose(metrics["accuracy"], hits)
