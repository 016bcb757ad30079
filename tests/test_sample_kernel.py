"""The top-p draw as one sort + one Triton kernel (``sample_kernel``), against the torch ops it replaces on CUDA.

Without a GPU the kernel runs in Triton's interpreter: as in test_decode_kernel.py, this file's tests run in a child
pytest with ``TRITON_INTERPRET=1`` set from the start (``test_in_the_interpreter``) and skip in the parent.

The yardstick is ``sampling``'s own ops with a **stable** sort. On CUDA the reference's 64,000-way sort is a radix
sort, stable, so ties stay in vocabulary order; on CPU ``torch.sort`` does not promise that, and bf16 logits tie a lot.
"""

import os
import re

import pytest
import torch

pytest.importorskip("triton")

from conftest import run_in_triton_interpreter  # noqa: E402
from nemo_cosmos_ar.inference import nucleus_kernel as nk  # noqa: E402
from nemo_cosmos_ar.inference import sample_kernel as sk  # noqa: E402
from nemo_cosmos_ar.inference import sampling as sm  # noqa: E402

HERE = torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"
here = pytest.mark.skipif(not HERE, reason="runs in the child pytest with TRITON_INTERPRET=1")
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
V = 2 * sk.TILE + 917  # three tiles, the last one partial


def _logits(rows: int, scale: float, dtype, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(rows, V, generator=g) * scale).to(DEVICE, dtype)


def _reference(logits: torch.Tensor, temperature: float, top_p: float, race: torch.Tensor):
    """sampling's top-p ops with a stable sort: (tokens [B], kept count [B])."""
    cfg = sm.SamplingConfig(temperature=temperature, top_p=top_p, kernel="torch")
    probs = sm._probs(logits.float(), cfg)
    sorted_p, order = torch.sort(probs, dim=-1, descending=True, stable=True)
    kept = sm._nucleus_of_sorted(sorted_p, top_p)
    tokens = order.gather(-1, (kept / race).argmax(dim=-1, keepdim=True))[:, 0]
    return tokens, (kept > 0).sum(dim=-1)


# scale 1: a wide nucleus (~45% of V at top_p 0.8, across all three tiles); scale 6: a few tokens; top_p 1.0 keeps
# everything; 0.01 keeps only the most likely token (the mass before it is 0).
@here
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize(
    "scale,top_p,temperature", [(1.0, 0.8, 1.0), (6.0, 0.8, 0.7), (1.0, 1.0, 1.3), (3.0, 0.01, 1.0)]
)
def test_same_tokens_and_nucleus_as_the_ops(dtype, scale, top_p, temperature):
    rows = 40
    logits = _logits(rows, scale, dtype)
    race = sm.exponential_draw(rows, V, torch.Generator(DEVICE).manual_seed(5), DEVICE)
    want, want_kept = _reference(logits, temperature, top_p, race)
    keys, order = torch.sort(logits, dim=-1, descending=True, stable=True)
    got, kept = sk.race_sorted(keys, order, race, temperature, top_p)
    assert got.dtype == torch.int64 and got.shape == (rows,)
    # Sums in another order: a rank at the nucleus edge may fall the other way (its mass before it within rounding
    # of top_p), in 1 of these 40 rows at scale 1 in fp32. Every row whose nucleus agrees draws the same token.
    diff = (kept.long() - want_kept).abs().cpu()
    assert int(diff.max()) <= 1 and int((diff > 0).sum()) <= 2, diff
    same = diff == 0
    assert torch.equal(got.cpu()[same], want.cpu()[same])
    if top_p == 1.0:
        assert (kept == V).all()
    if top_p == 0.01:
        assert (kept == 1).all() and torch.equal(got.cpu(), logits.float().argmax(-1).cpu())


@here
def test_sample_draws_the_same_random_numbers():
    """sample_top_p consumes one [B, V] exponential fill per call, as the reference: a generator seeded alike then
    gives the reference's next draw, and the same seed gives the same tokens."""
    logits = _logits(8, 2.0, torch.bfloat16, seed=1)
    runs = []
    for _ in range(2):
        g = torch.Generator(DEVICE).manual_seed(11)
        race = sm.exponential_draw(8, V, g, DEVICE)
        runs.append(sk.sample_top_p(logits, 1.0, 0.8, race))
        runs.append(g.get_state())
    ref = torch.Generator(DEVICE).manual_seed(11)
    sm.exponential_draw(8, V, ref, DEVICE)
    assert torch.equal(runs[0], runs[2]) and torch.equal(runs[1], ref.get_state())
    assert torch.equal(runs[0].cpu(), _reference(logits, 1.0, 0.8, sm.exponential_draw(
        8, V, torch.Generator(DEVICE).manual_seed(11), DEVICE))[0].cpu())  # fmt: skip


@here
def test_mismatched_inputs_are_refused():
    keys = torch.zeros(2, V, device=DEVICE)
    order = torch.zeros(2, V, dtype=torch.long, device=DEVICE)
    with pytest.raises(ValueError, match=r"must match"):
        sk.race_sorted(keys, order, torch.ones(2, V - 1, device=DEVICE), 1.0, 0.8)
    with pytest.raises(ValueError, match=r"race fp32"):
        sk.race_sorted(keys, order, torch.ones(2, V, dtype=torch.float64, device=DEVICE), 1.0, 0.8)


def test_which_draws_take_the_kernel():
    """Only CUDA top-p draws with the full-sort nucleus and kernel "auto"; the rest keep the torch ops."""
    cpu = torch.zeros(1, 10)
    assert not sm._kernel_path(cpu, sm.SamplingConfig())
    meta = torch.empty(1, 10, device="meta")  # is_cuda is False for meta too: the CPU machine cannot show True here
    assert not sm._kernel_path(meta, sm.SamplingConfig())
    with pytest.raises(ValueError, match=r"kernel must be one of \('auto', 'torch'\), got 'fast'"):
        sm.SamplingConfig(kernel="fast")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the dispatch to the kernel happens on CUDA tensors only")
@pytest.mark.parametrize(
    "cfg,taken",
    [
        (sm.SamplingConfig(), True),
        (sm.SamplingConfig(kernel="torch"), False),
        (sm.SamplingConfig(temperature=0), False),
        (sm.SamplingConfig(top_k=5), False),
        (sm.SamplingConfig(nucleus="topk"), False),
    ],
)
def test_cuda_dispatch(cfg, taken):
    assert sm._kernel_path(torch.zeros(1, 10, device="cuda"), cfg) is taken


@pytest.mark.skipif(HERE, reason="the tests ran in this process")
def test_in_the_interpreter():
    """This file's tests in a child pytest that sets TRITON_INTERPRET=1 before anything imports Triton: all pass."""
    summary = run_in_triton_interpreter(__file__)
    assert re.fullmatch(r"=* ?13 passed, 6 skipped in [\d.]+s( \([\d:]+\))? ?=*", summary), summary


def test_kernels_that_fail_leave_the_torch_ops_with_the_same_draw(monkeypatch):
    """A GPU or Triton build the kernels do not compile for: one warning, the draw made by the torch ops from the race
    already drawn (so the generator advances once, as always), and the ops from then on. Forced here on CPU tensors."""
    calls = []

    def broken(*args):
        calls.append(1)
        raise RuntimeError("no kernel image is available for execution on the device\nsecond line")

    monkeypatch.setattr(sk, "sample_top_p", broken)
    monkeypatch.setattr(sm, "KERNEL_FAILURES", [])
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda t: True))  # the kernel path, on CPU tensors
    logits = torch.randn(3, 500, generator=torch.Generator().manual_seed(0))
    cfg = sm.SamplingConfig(top_p=0.7)
    got, ref = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    with pytest.warns(UserWarning, match=r"top-p Triton kernels failed on cpu \(RuntimeError: no kernel image is "
                      r"available for execution on the device\); sampling with the torch ops"):  # fmt: skip
        first = sm.sample(logits, cfg, got)
    assert torch.equal(first, sm.sample(logits, sm.SamplingConfig(top_p=0.7, kernel="torch"), ref))
    assert torch.equal(got.get_state(), ref.get_state())
    assert sm.KERNEL_FAILURES and len(calls) == 1
    second = sm.sample(logits, cfg, got)  # no second try, no second warning
    assert len(calls) == 1 and torch.equal(second, sm.sample(logits, sm.SamplingConfig(top_p=0.7, kernel="torch"), ref))


def test_a_failing_nucleus_kernel_leaves_the_torch_ops(monkeypatch):
    """sampling_probs on the kernel path (speculative decoding's p): the kernels failing give one warning and the
    torch ops' distribution, then the ops from then on; a row-strided input reaches the kernel with unit stride."""
    calls = []

    def broken(rows, temperature, top_p):
        calls.append(rows.stride(-1))
        raise RuntimeError("no kernel image is available for execution on the device")

    monkeypatch.setattr(nk, "nucleus_probs", broken)
    monkeypatch.setattr(sm, "KERNEL_FAILURES", [])
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda t: True))  # the kernel path, on CPU tensors
    logits = torch.randn(500, 3, generator=torch.Generator().manual_seed(0)).T  # rows of stride 3
    cfg = sm.SamplingConfig(top_p=0.7)
    want = sm.sampling_probs(logits, sm.SamplingConfig(top_p=0.7, kernel="torch"))
    with pytest.warns(UserWarning, match=r"top-p Triton kernels failed on cpu \(RuntimeError: no kernel image"):
        assert torch.equal(sm.sampling_probs(logits, cfg), want)
    assert calls == [1] and len(sm.KERNEL_FAILURES) == 1
    assert torch.equal(sm.sampling_probs(logits, cfg), want) and calls == [1]  # no second try
