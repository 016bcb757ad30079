"""The top-p distribution without a sort (``nucleus_kernel``), against the nucleus in float64 with a stable sort.

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

HERE = torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"
here = pytest.mark.skipif(not HERE, reason="runs in the child pytest with TRITON_INTERPRET=1")
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
# The interpreter's time grows with the row length and the search does not depend on the tile: on CPU the tests run
# at a 1,024-logit tile (the GPU tier runs the shipped one).
TILE = nk.TILE if DEVICE.type == "cuda" else 1024
V = 2 * TILE + 917  # three tiles, the last one partial
ROWS = 8


@pytest.fixture(autouse=True)
def _tile(monkeypatch):
    monkeypatch.setattr(nk, "TILE", TILE)


def _exact(logits: torch.Tensor, temperature: float, top_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The nucleus in float64 with a stable sort: ``(distribution [B, V] in vocabulary order, mass before each
    rank [B, V] in sorted order)``, on the CPU."""
    probs = torch.softmax(logits.double().cpu() / temperature, dim=-1)
    sorted_p, order = torch.sort(probs, dim=-1, descending=True, stable=True)
    before = sorted_p.cumsum(-1) - sorted_p
    kept = sorted_p.masked_fill(before > top_p, 0.0)
    return torch.zeros_like(probs).scatter_(-1, order, kept / kept.sum(-1, keepdim=True)), before


def _assert_distribution(got: torch.Tensor, logits: torch.Tensor, temperature: float, top_p: float) -> None:
    """Against float64: a row may keep one rank more or fewer only where that rank's mass before it lies within fp32
    rounding of top_p (5e-6: sums of up to 64,000 terms); every other row keeps the same tokens with the same
    probabilities within 2e-6 of the largest; rows sum to 1."""
    got = got.cpu()
    want, before = _exact(logits, temperature, top_p)
    n_got, n_want = (got > 0).sum(-1), (want > 0).sum(-1)
    assert int((n_got - n_want).abs().max()) <= 1, n_got - n_want
    for row in (n_got != n_want).nonzero()[:, 0].tolist():
        edge = float(before[row, min(int(n_got[row]), int(n_want[row]))])
        assert abs(edge - top_p) <= 5e-6, (row, edge)
    same = n_got == n_want
    assert torch.equal(got[same] > 0, want[same] > 0)
    assert float((got[same] - want[same]).abs().max()) <= 2e-6 * float(want.max())
    assert torch.allclose(got.sum(-1), torch.ones(got.shape[0]), atol=1e-5)


# scale 1: a wide nucleus (~45% of V at top_p 0.8, across all three tiles); scale 6: a few tokens; top_p 1.0 keeps
# everything; 0.01 keeps only the most likely token (the mass before it is 0).
@here
@pytest.mark.parametrize(
    "dtype,scale,top_p,temperature",
    [
        (torch.bfloat16, 1.0, 0.8, 1.0),
        (torch.bfloat16, 6.0, 0.8, 0.7),
        (torch.bfloat16, 1.0, 1.0, 1.3),
        (torch.bfloat16, 3.0, 0.01, 1.0),
        (torch.float32, 1.0, 0.8, 1.0),  # 32-bit keys: 8 rounds
        (torch.float32, 6.0, 0.8, 0.7),
        (torch.float16, 1.0, 0.8, 1.0),
    ],
    ids=["bf16-wide", "bf16-narrow", "bf16-all", "bf16-top1", "fp32-wide", "fp32-narrow", "fp16-wide"],
)
def test_the_float64_distribution(dtype, scale, top_p, temperature):
    g = torch.Generator().manual_seed(3)
    logits = (torch.randn(ROWS, V, generator=g) * scale).to(DEVICE, dtype)
    got = nk.nucleus_probs(logits, temperature, top_p)
    assert got.dtype == torch.float32 and got.shape == (ROWS, V)
    _assert_distribution(got, logits, temperature, top_p)
    if top_p == 1.0:
        assert bool((got > 0).all())
    if top_p == 0.01:  # only the most likely token
        assert torch.equal(got.argmax(-1).cpu(), logits.float().argmax(-1).cpu())
        assert torch.equal(got.max(-1).values.cpu(), torch.ones(ROWS))


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
    _assert_distribution(got, logits, 1.0, 0.8)
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
    logits[0, 100:2000] = float("-inf")
    logits[1, :] = float("-inf")
    logits[1, V - 7] = 2.0
    logits = logits.to(DEVICE, torch.bfloat16)
    got = nk.nucleus_probs(logits, 1.0, 1.0).cpu()
    assert not bool((got[0, 100:2000] > 0).any()) and int((got[0] > 0).sum()) == V - 1900
    assert got[1, V - 7] == 1.0 and int((got[1] > 0).sum()) == 1
    _assert_distribution(got, logits, 1.0, 1.0)


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
    assert re.fullmatch(r"=* ?11 passed, 1 skipped in [\d.]+s( \([\d:]+\))? ?=*", summary), summary
