"""Speculative decoding's residual races and proposal carry as Triton kernels (``coupled_kernel``) against the torch
ops they replace on CUDA: the same tokens and the same proposals, bit for bit, from the same random numbers.

Without a GPU the kernels run in Triton's interpreter: the tests run in a child pytest with ``TRITON_INTERPRET=1``
set from the start (``test_in_the_interpreter``) and skip in the parent.
"""

import os
import re
from types import SimpleNamespace

import pytest
import torch

pytest.importorskip("triton")

from conftest import run_in_triton_interpreter  # noqa: E402
from nemo_cosmos_ar.inference import coupled_kernel as ck  # noqa: E402
from nemo_cosmos_ar.inference import speculative  # noqa: E402
from nemo_cosmos_ar.inference.sampling import SamplingConfig, exponential_draw, sampling_probs  # noqa: E402

HERE = torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"
here = pytest.mark.skipif(not HERE, reason="runs in the child pytest with TRITON_INTERPRET=1")
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
V = 2 * ck.TILE + 917  # three tiles, the last one partial


def _probs(rows: int, seed: int, top_p: float = 0.8) -> torch.Tensor:
    logits = torch.randn(rows, V, generator=torch.Generator().manual_seed(seed)) * 3
    return sampling_probs(logits, SamplingConfig(top_p=top_p, kernel="torch")).to(DEVICE)


@here
def test_residual_race_is_the_ops_draw():
    """Rows racing max(p - q, 0), a row whose q equals p (the residual is empty: p's race), a point-mass q, and the
    bonus row (no q): the ops' tokens exactly."""
    p = _probs(6, 0)
    q = _probs(5, 1)
    q[2] = p[2]  # empty residual
    q[3] = 0.0
    q[3, int(p[3].argmax())] = 1.0  # a previous-frame draft's point mass
    exp = exponential_draw(6, V, torch.Generator(DEVICE).manual_seed(2), DEVICE)
    got = ck.residual_race(p, q, exp)
    residual = (p[:5] - q).clamp_min(0.0)
    residual = torch.where(residual.sum(1, keepdim=True) > 0, residual, p[:5])
    want = torch.cat([speculative.race(residual, exp[:5]), speculative.race(p[5:], exp[5:])])
    assert got.dtype == torch.int64 and torch.equal(got.cpu(), want.cpu())
    assert int(got[2]) == int(speculative.race(p[2:3], exp[2:3])[0])  # the fallback row raced p itself
    assert torch.equal(ck.residual_race(p[:1], q[:0], exp[:1]).cpu(), speculative.race(p[:1], exp[:1]).cpu())


@here
@pytest.mark.parametrize("uniform", [False, True], ids=["previous-frame", "random"])
def test_carry_proposals_is_the_ops_update(uniform):
    p = _probs(5, 3)
    q = torch.full((4, V), 7.0, device=DEVICE)  # every entry must be overwritten
    src = torch.tensor([2, 3, 4, 4], device=DEVICE)
    carried = torch.tensor([True, True, True, False], device=DEVICE)
    tokens = torch.tensor([5, 4500, 17, 4096], device=DEVICE)
    ck.carry_proposals(q, p, src, carried, tokens, uniform)
    new = torch.full((4, V), 1.0 / V, device=DEVICE) if uniform else torch.zeros(4, V, device=DEVICE)
    if not uniform:
        new.scatter_(1, tokens[:, None], 1.0)
    assert torch.equal(q.cpu(), torch.where(carried[:, None], p.index_select(0, src), new).cpu())


@here
@pytest.mark.parametrize("init", ["previous-frame", "random"])
def test_a_window_step_with_the_kernels_equals_the_ops(init):
    """``_Window.advance`` from the same state and generator with the kernels and with the torch ops: the same
    grid, proposals and position after each of three steps."""
    L, frame, total = 5, 8, 60

    def window(fused: bool):
        grid = torch.randint(0, V, (total + 2 * L + 2,), generator=torch.Generator().manual_seed(4)).to(DEVICE)
        win = speculative._Window(
            SimpleNamespace(vocab_size=V), grid, total, speculative.SpeculativeConfig(window=L, init=init), frame,
            SamplingConfig(top_p=0.8, kernel="torch"), torch.Generator(DEVICE).manual_seed(9),
        )  # fmt: skip
        win.fused = fused
        win.start(20)
        return win

    ops, fused = window(False), window(True)
    for step in range(3):
        logits = torch.randn(L + 1, V, generator=torch.Generator().manual_seed(10 + step)).to(DEVICE) * 2
        ops.advance(logits)
        fused.advance(logits)
        assert fused.fused, "the kernels fell back to the ops"
        assert torch.equal(ops.grid, fused.grid) and torch.equal(ops.q, fused.q) and torch.equal(ops.n, fused.n)
    assert int(ops.n) > 20


@here
def test_refuses_mismatched_shapes():
    p = torch.zeros(3, V, device=DEVICE)
    with pytest.raises(ValueError, match="q needs one row fewer"):
        ck.residual_race(p, torch.zeros(3, V, device=DEVICE), p)
    with pytest.raises(ValueError, match="fp32 with rows of unit stride"):
        ck.residual_race(p.double(), torch.zeros(2, V, device=DEVICE, dtype=torch.float64), p.double())


def test_failing_kernels_leave_the_ops_with_one_warning(monkeypatch):
    """A GPU or Triton build the kernels do not compile for: one warning, this step finished by the torch ops from
    the same random numbers (the same state as a window that never tried), and the ops from then on."""

    def broken(*args):
        raise RuntimeError("no kernel image is available for execution on the device")

    monkeypatch.setattr(ck, "residual_race", broken)
    monkeypatch.setattr(speculative, "FUSED_FAILURES", [])
    L, frame, total = 3, 8, 40
    wins = []
    for fused in (False, True):
        grid = torch.randint(0, 500, (total + 2 * L + 2,), generator=torch.Generator().manual_seed(1))
        win = speculative._Window(
            SimpleNamespace(vocab_size=500), grid, total, speculative.SpeculativeConfig(window=L), frame,
            SamplingConfig(top_p=0.8), torch.Generator().manual_seed(2),
        )  # fmt: skip
        win.fused = fused
        win.start(10)
        wins.append(win)
    logits = torch.randn(L + 1, 500, generator=torch.Generator().manual_seed(3))
    wins[0].advance(logits)
    with pytest.warns(UserWarning, match=r"speculative decoding's Triton kernels failed \(RuntimeError: no kernel"):
        wins[1].advance(logits)
    assert not wins[1].fused and len(speculative.FUSED_FAILURES) == 1
    assert torch.equal(wins[0].grid, wins[1].grid) and torch.equal(wins[0].q, wins[1].q)
    assert not speculative._fused_available(torch.device("cpu"), SamplingConfig())


@pytest.mark.skipif(HERE, reason="the tests ran in this process")
def test_in_the_interpreter():
    """This file's tests in a child pytest that sets TRITON_INTERPRET=1 before anything imports Triton: all pass."""
    summary = run_in_triton_interpreter(__file__)
    assert re.fullmatch(r"=* ?7 passed, 1 skipped in [\d.]+s( \([\d:]+\))? ?=*", summary), summary
