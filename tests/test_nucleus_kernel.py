"""The top-p distribution without a sort (``nucleus_kernel``), against sampling's ops with a stable sort.

Without a GPU the kernels run in Triton's interpreter: as in test_sample_kernel.py, the tests run in a child pytest
with ``TRITON_INTERPRET=1`` set from the start (``test_in_the_interpreter``) and skip in the parent.
"""

import os
import re

import pytest
import torch

pytest.importorskip("triton")

from conftest import run_in_triton_interpreter  # noqa: E402
from nemo_cosmos_ar.inference import nucleus_kernel as nk  # noqa: E402
from nemo_cosmos_ar.inference import sampling as sm  # noqa: E402

HERE = torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"
here = pytest.mark.skipif(not HERE, reason="runs in the child pytest with TRITON_INTERPRET=1")
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
V = 2 * nk.TILE + 917  # three tiles, the last one partial


def _ops(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """sampling's top-p ops on the fp32 logits with a stable sort, in vocabulary order ([B, V] fp32)."""
    cfg = sm.SamplingConfig(temperature=temperature, top_p=top_p, kernel="torch")
    sorted_p, order = torch.sort(sm._probs(logits.float(), cfg), dim=-1, descending=True, stable=True)
    out = torch.zeros(logits.shape, device=logits.device)
    return out.scatter_(-1, order, sm._nucleus_of_sorted(sorted_p, top_p)).cpu()


def _assert_ops_distribution(got: torch.Tensor, want: torch.Tensor) -> None:
    """At most one rank differs at a nucleus's edge in at most 2 rows (sums in another order); every other row keeps
    the same tokens with the same probabilities up to fp32 rounding; rows sum to 1."""
    got = got.cpu()
    diff = ((got > 0).sum(-1) - (want > 0).sum(-1)).abs()
    assert int(diff.max()) <= 1 and int((diff > 0).sum()) <= 2, diff
    same = diff == 0
    assert torch.equal(got[same] > 0, want[same] > 0)
    assert float((got[same] - want[same]).abs().max()) <= 2e-6 * float(want.max())
    assert torch.allclose(got.sum(-1), torch.ones(got.shape[0]), atol=1e-5)


# scale 1: a wide nucleus (~45% of V at top_p 0.8, across all three tiles); scale 6: a few tokens; top_p 1.0 keeps
# everything; 0.01 keeps only the most likely token (the mass before it is 0).
@here
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=["fp32", "bf16", "fp16"])
@pytest.mark.parametrize(
    "scale,top_p,temperature", [(1.0, 0.8, 1.0), (6.0, 0.8, 0.7), (1.0, 1.0, 1.3), (3.0, 0.01, 1.0)]
)
def test_the_ops_distribution(dtype, scale, top_p, temperature):
    g = torch.Generator().manual_seed(3)
    logits = (torch.randn(24, V, generator=g) * scale).to(DEVICE, dtype)
    got = nk.nucleus_probs(logits, temperature, top_p)
    assert got.dtype == torch.float32 and got.shape == (24, V)
    _assert_ops_distribution(got, _ops(logits, temperature, top_p))
    if top_p == 1.0:
        assert bool((got > 0).all())
    if top_p == 0.01:  # only the most likely token
        assert torch.equal(got.argmax(-1).cpu(), logits.float().argmax(-1).cpu())
        assert torch.equal(got.max(-1).values.cpu(), torch.ones(24))


@here
def test_ties_at_the_edge_keep_the_first_in_vocabulary_order():
    """Logits on a coarse grid (every value shared by hundreds of tokens, -0 beside +0): the nucleus's edge falls
    inside a run of equal logits, and of those the kept ones are the lowest token ids, as the stable sort keeps them;
    the count matches the ops' within one."""
    g = torch.Generator().manual_seed(7)
    grid = (torch.randn(6, V, generator=g) * 2).round() / 2  # values -4 .. 4 in steps of 0.5
    grid[:, ::7] = -0.0  # a signed zero among the +0 entries
    logits = grid.to(DEVICE, torch.bfloat16)
    got = nk.nucleus_probs(logits, 1.0, 0.8).cpu()
    want = _ops(logits, 1.0, 0.8)
    _assert_ops_distribution(got, want)
    x = logits.float().cpu()
    for row in range(6):
        kept = got[row] > 0
        edge = float(x[row][kept].min())  # the smallest kept value: its run is cut somewhere
        run = (x[row] == edge).nonzero()[:, 0]
        n = int(kept[run].sum())
        assert 0 < n and torch.equal(kept[run], torch.arange(len(run)) < n), row  # a prefix of the run
        assert bool(kept[x[row] > edge].all()) and not bool(kept[x[row] < edge].any())
    assert int((got > 0).sum()) > 0 and bool(((got > 0).sum(-1) < V).all())


@here
def test_minus_infinity_and_one_hot_rows():
    """-inf logits (masked tokens) are never kept, even at top_p 1; a row with one finite logit is a one-hot."""
    logits = torch.randn(3, V, generator=torch.Generator().manual_seed(1))
    logits[0, 100:3000] = float("-inf")
    logits[1, :] = float("-inf")
    logits[1, 4321] = 2.0
    logits = logits.to(DEVICE, torch.bfloat16)
    got = nk.nucleus_probs(logits, 1.0, 1.0).cpu()
    assert not bool((got[0, 100:3000] > 0).any()) and int((got[0] > 0).sum()) == V - 2900
    assert got[1, 4321] == 1.0 and int((got[1] > 0).sum()) == 1
    _assert_ops_distribution(got, _ops(logits, 1.0, 1.0))


@here
def test_deterministic_and_row_strided_input():
    """The same logits give the same bits (no atomics); rows with a stride past V (a view of a wider buffer) read
    only their V entries."""
    wide = torch.randn(5, V + 64, generator=torch.Generator().manual_seed(2)).to(DEVICE, torch.bfloat16)
    rows = wide[:, :V]
    a, b = nk.nucleus_probs(rows, 1.0, 0.8), nk.nucleus_probs(rows.contiguous(), 1.0, 0.8)
    assert torch.equal(a, b) and torch.equal(a, nk.nucleus_probs(rows, 1.0, 0.8))


@here
def test_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match=r"row-contiguous \[B, V\]"):
        nk.nucleus_probs(torch.zeros(V, device=DEVICE), 1.0, 0.8)
    with pytest.raises(ValueError, match=r"temperature > 0"):
        nk.nucleus_probs(torch.zeros(2, V, device=DEVICE), 0.0, 0.8)
    with pytest.raises(ValueError, match=r"bf16, fp16 or fp32 logits, got torch.float64"):
        nk.nucleus_probs(torch.zeros(2, V, device=DEVICE, dtype=torch.float64), 1.0, 0.8)


@pytest.mark.skipif(HERE, reason="the tests ran in this process")
def test_in_the_interpreter():
    """This file's tests in a child pytest that sets TRITON_INTERPRET=1 before anything imports Triton: all pass."""
    summary = run_in_triton_interpreter(__file__)
    assert re.fullmatch(r"=* ?16 passed, 1 skipped in [\d.]+s( \([\d:]+\))? ?=*", summary), summary
