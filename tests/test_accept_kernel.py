"""The speculative step's accept/reject as one Triton kernel (``accept_kernel.accept``) against the torch ops it
replaces (``sampling.sampling_probs`` + ``speculative.coupled_resample`` + the bonus race).

Needs Triton; on CPU the kernel runs in Triton's interpreter, in a child pytest with ``TRITON_INTERPRET=1``
(``test_in_the_interpreter``), as test_decode_kernel.py's.
"""

import os
import re

import pytest
import torch

pytest.importorskip("triton")

from conftest import run_in_triton_interpreter  # noqa: E402
from nemo_cosmos_ar.inference import accept_kernel as ak  # noqa: E402
from nemo_cosmos_ar.inference import speculative  # noqa: E402
from nemo_cosmos_ar.inference.sampling import SamplingConfig, sampling_probs  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
HERE = DEVICE.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"
here = pytest.mark.skipif(not HERE, reason="runs in the child pytest with TRITON_INTERPRET=1")
V = 1000  # 4 tiles of 256, the last ragged; SPLITS_T chunks of 512: [0, 512), [512, 1000) and an empty one
SPLITS_T = 3


def _case(rows: int, dtype, seed: int, scale: float = 3.0):
    """Logits, proposals (point masses and dense rows), drafts drawn from them, and the step's random numbers."""
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(rows, V, generator=g) * scale).to(dtype)
    q = torch.softmax(torch.randn(rows - 1, V, generator=g) * 2, -1)
    q[::2] = 0.0
    q[::2, :rows].fill_diagonal_(1.0)  # even rows: a point mass on token r (a previous-frame draft)
    drafts = torch.multinomial(q, 1, generator=g)[:, 0]
    drafts[1] = int(torch.softmax(logits[1].float(), -1).argmax())  # a likely draft: some are kept
    uniform = torch.rand(rows - 1, generator=g)
    exp = torch.empty(rows, V).exponential_(1.0, generator=g)
    return [t.to(DEVICE) for t in (logits, q, drafts, uniform, exp)]


def _stable_probs(logits, sampling):
    """``sampling_probs``'s top-p path with ties ordered as a stable sort orders them (vocabulary order): bf16 logits
    tie often, and torch's unstable sort keeps an arbitrary part of a tie group at the nucleus edge. Also returns
    the entries at the edge: mass before them within 1e-5 of top_p, where the two sums' rounding may disagree (at
    top_p = 1 torch's fp32 cumsum passes 1.0 and cuts dozens of the least likely tokens)."""
    probs = torch.softmax(logits.float() / sampling.temperature, -1)
    sorted_p, order = torch.sort(probs, dim=-1, descending=True, stable=True)
    before = sorted_p.cumsum(-1) - sorted_p
    kept = sorted_p.masked_fill(before > sampling.top_p, 0.0)
    edge = torch.zeros_like(probs, dtype=torch.bool).scatter_(-1, order, (before - sampling.top_p).abs() < 1e-5)
    return torch.zeros_like(probs).scatter_(-1, order, kept / kept.sum(-1, keepdim=True)), edge


def _torch_path(logits, q, drafts, uniform, exp, sampling):
    p, edge = _stable_probs(logits, sampling)
    if logits.dtype == torch.float32:  # no ties: the stable reference is sampling_probs itself
        assert torch.equal(p, sampling_probs(logits, sampling))
    drawn, kept = speculative.coupled_resample(p[:-1], q, drafts, uniform, exp[:-1])
    return torch.cat([drawn, speculative.race(p[-1:], exp[-1:])]), kept, p, edge


@here
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize(("temperature", "top_p"), [(1.0, 0.8), (0.7, 0.95), (1.3, 0.3), (1.0, 1.0)])
def test_accept_equals_the_torch_ops(dtype, temperature, top_p):
    """The same nucleus, p within 2e-6 of the torch path's, and the same draws and accept decisions from the same
    random numbers (9 rows: 8 drafts, point masses and dense proposals, and the bonus row)."""
    sampling = SamplingConfig(temperature=temperature, top_p=top_p)
    args = _case(9, dtype, seed=int(temperature * 10 + top_p * 100))
    want_drawn, want_kept, want_p, edge = _torch_path(*args, sampling)
    drawn, kept, p = ak.accept(*args[:1], temperature, top_p, *args[1:], splits=SPLITS_T)
    assert p.shape == (9, V) and drawn.shape == (9,) and kept.shape == (8,)
    assert torch.equal((p > 0) & ~edge, (want_p > 0) & ~edge)  # the nucleus, entry for entry, off its edge
    assert top_p == 1.0 or edge.sum().item() < 2  # (at 1 the whole tail is within 1e-5 of it)
    assert (p - want_p).abs().max().item() < 2e-6
    assert torch.allclose(p.sum(-1), torch.ones(9, device=DEVICE), atol=1e-5)
    assert torch.equal(drawn, want_drawn) and torch.equal(kept, want_kept)
    assert kept[1] and not kept.all()  # the likely draft passes: the test sees both outcomes


@here
def test_a_tie_at_the_nucleus_edge_keeps_its_first_members_in_vocabulary_order():
    """bf16 logits tie often. Six tokens share the boundary value: a stable sort keeps its members in vocabulary
    order while the mass before them is at most top_p, so exactly the first three of them are kept."""
    logits = torch.full((2, V), -20.0)
    logits[:, [7, 90]] = 4.0  # two tokens above the tie
    group = [3, 11, 600, 700, 800, 999]  # the third kept member is in the second chunk
    logits[:, group] = 2.0
    logits = logits.to(torch.bfloat16).to(DEVICE)
    e = torch.exp(logits.float().cpu())
    z = e[0].sum()
    above, each = 2 * e[0, 7] / z, e[0, 3] / z
    top_p = float(above + 2.5 * each)  # the mass before the 3rd member is above + 2 * each <= top_p < + 3 * each
    q = torch.zeros(1, V, device=DEVICE)
    q[0, 0] = 1.0
    drafts = torch.zeros(1, dtype=torch.long, device=DEVICE)
    exp = torch.ones(2, V, device=DEVICE)
    _, _, p = ak.accept(logits, 1.0, top_p, q, drafts, torch.zeros(1, device=DEVICE), exp, splits=SPLITS_T)
    assert (p[0] > 0).nonzero()[:, 0].tolist() == sorted([7, 90, 3, 11, 600])
    assert abs(p[0, 3].item() - each.item() / (above + 3 * each).item()) < 1e-6


def test_the_kernel_is_used_only_for_the_top_p_path():
    cuda = torch.device("cuda")
    ok = SamplingConfig()
    assert ak.supported(cuda, ok) == ak.supported(cuda, SamplingConfig(temperature=0.5, top_p=0.9))
    for other in (
        SamplingConfig(temperature=0.0),
        SamplingConfig(top_p=None),
        SamplingConfig(top_k=40),
        SamplingConfig(nucleus="topk"),
        SamplingConfig(kernel="torch"),
    ):
        assert not ak.supported(cuda, other)
    assert ak.supported(torch.device("cpu"), ok) == (os.environ.get("TRITON_INTERPRET") == "1")


@here
def test_bad_shapes_are_refused():
    logits, q, drafts, uniform, exp = _case(4, torch.float32, seed=1)
    with pytest.raises(ValueError, match=r"accept: logits \(4, 1000\), q \(4, 1000\).*one row fewer"):
        ak.accept(logits, 1.0, 0.8, torch.cat([q, q[:1]]), drafts, uniform, exp)


@here
@pytest.mark.skipif(DEVICE.type == "cuda", reason="the toy engine runs on CPU (Triton's interpreter)")
def test_speculative_generate_with_the_kernel_gives_the_torch_paths_tokens():
    """Seeded top-p speculative decoding of test_speculative.py's enumerable toy model (vocabulary 3, so the
    interpreter is quick): the kernel's accept/reject and the torch ops' give the same tokens and forward counts in
    10 generations per draft init."""
    from test_speculative import MarkovEngine

    model = MarkovEngine(3, (4, 1, 2), seed=1)
    prompt = torch.tensor([[0, 2]])
    for init, window in (("previous-frame", 2), ("random", 3)):
        config = speculative.SpeculativeConfig(window=window, init=init)
        runs = {}
        for kernel in ("auto", "torch"):
            g = torch.Generator().manual_seed(7)
            runs[kernel] = [
                speculative.generate(model, prompt, 8, SamplingConfig(top_p=0.9, kernel=kernel), config, g)
                for _ in range(10)
            ]
        for (a, sa, _), (b, sb, _) in zip(runs["auto"], runs["torch"]):
            assert torch.equal(a, b) and sa.forwards == sb.forwards, init
        assert len({tuple(out[0].tolist()) for out, _, _ in runs["auto"]}) > 3  # the draws do vary


@pytest.mark.skipif(HERE, reason="the tests ran in this process")
def test_in_the_interpreter():
    """This file's tests in a child pytest that sets TRITON_INTERPRET=1 before anything imports Triton: all pass."""
    summary = run_in_triton_interpreter(__file__)
    assert re.fullmatch(r"=* ?12 passed, 1 skipped in [\d.]+s( \([\d:]+\))? ?=*", summary), summary
