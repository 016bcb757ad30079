"""The CUDA decode attention's host side and partition (``inference/attention_cuda.py``) on a CPU: ``emulate``
follows the kernels' cut of the filled slots, their per-half-warp online softmax and their two merges; it must give
the attention over exactly slots ``0..pos``, including where splits find no slot and where this step's K/V are
written. The kernels themselves run in the GPU tier (``tests/test_gpu.py``)."""

import pytest
import torch

from nemo_cosmos_ar.inference import attention_cuda as AC


def _case(b=1, groups=2, hpg=4, hd=16, length=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(1, b, groups * hpg, hd, generator=g)
    k = torch.randn(b, groups, length, hd, generator=g)
    v = torch.randn(b, groups, length, hd, generator=g)
    return q, k, v


@pytest.mark.parametrize(
    ("pos", "splits", "warps", "unroll"),
    [(0, 4, 2, 2), (2, 8, 2, 2), (17, 3, 1, 2), (39, 4, 2, 2), (39, 1, 4, 3), (25, 5, 2, 1)],
)
def test_partition_gives_the_attention_over_the_filled_slots(pos, splits, warps, unroll):
    """Every cut (more splits than slots, one split, tiles past the end) equals the reference within 1e-5, and the
    slots past pos are never read: filling them with NaN changes nothing."""
    q, k, v = _case()
    k[:, :, pos + 1 :] = float("nan")
    v[:, :, pos + 1 :] = float("nan")
    p = torch.tensor([pos])
    got = AC.emulate(q, k, v, p, splits=splits, warps=warps, unroll=unroll)
    want = AC.reference(q, k.nan_to_num(), v.nan_to_num(), p)
    assert got.shape == (1, 1, 8 * 16)
    assert torch.isfinite(got).all()
    assert (got - want).abs().max().item() < 1e-5


def test_written_slot_is_this_steps_kv():
    """With k_new/v_new the slot pos holds them afterwards and the output is the attention with them in it; without
    them the output differs (the old slot's values were used)."""
    q, k, v = _case(b=2, length=24)
    kn, vn = torch.randn(2, 2, 16), torch.randn(2, 2, 16)
    p = torch.tensor([13])
    old = AC.emulate(q, k.clone(), v.clone(), p, splits=3)
    got = AC.emulate(q, k, v, p, k_new=kn, v_new=vn, splits=3)
    assert torch.equal(k[:, :, 13], kn) and torch.equal(v[:, :, 13], vn)
    assert (got - AC.reference(q, k, v, p)).abs().max().item() < 1e-5
    assert (got - old).abs().max().item() > 1e-3


def test_split_count_and_refusals():
    """About ``waves`` blocks per SM, at least one per group; bad shapes and CPU tensors are refused in one line."""
    assert AC.num_splits(1, 8, 132, 3.0) == 50
    assert AC.num_splits(1, 8, 132, 0.01) == 1
    assert AC.num_splits(4, 8, 132, 3.0) == 12
    q, k, v = (t.bfloat16() for t in _case(hd=128))
    p = torch.tensor([3])
    with pytest.raises(ValueError, match="CUDA tensors only"):
        AC.decode_attention(q, k, v, p)
    with pytest.raises(ValueError, match="head_dim 128"):
        AC.decode_attention(*(t.bfloat16() for t in _case(hd=64)), p)
    with pytest.raises(ValueError, match="k_new and v_new together"):
        AC.decode_attention(q, k, v, p, k_new=k[:, :, 0])
    with pytest.raises(ValueError, match="does not fit"):
        AC.decode_attention(q, k, v[:, :1].clone(), p)
    assert not AC.available(torch.device("cpu"), pdl=False)


def test_source_has_one_variant_per_option_set():
    """The eight option sets (PDL, write, reduce-scatter) differ only in their defines; each has both kernels."""
    srcs = AC.check_sources()
    assert len(set(srcs)) == 8
    for s in srcs:
        assert "attn_split" in s and "attn_combine" in s and "%(" not in s  # every template field filled
