"""The sampler draws as cosmos-predict1 does: the exponential race over the probabilities sorted most-likely first,
mapped back with gather; one ``exponential_`` of ``[B, V]`` per step; the same seed gives NVIDIA's tokens on CPU.

The expected tokens below were produced by cosmos-predict1's own ``sample_top_p`` / ``sample_top_k``
(``autoregressive/utils/sampling.py`` @4ed35fa, torch 2.13 CPU) on the logits of ``_logits()``, after
``torch.manual_seed(7)`` (what its ``generate(seed=7)`` calls), four consecutive draws.
"""

import pytest
import torch

from nemo_cosmos_ar.inference.sampling import SamplingConfig, exponential_draw, sample, sampling_probs


def _logits() -> torch.Tensor:
    return torch.randn(3, 1000, generator=torch.Generator().manual_seed(123)) * 4


NVIDIA = {
    "top_p 0.8": (
        SamplingConfig(temperature=1.0, top_p=0.8),
        [[968, 931, 611], [968, 931, 611], [968, 844, 611], [532, 931, 22]],
    ),
    "top_p 0.95, T 1.3": (
        SamplingConfig(temperature=1.3, top_p=0.95),
        [[968, 931, 22], [968, 931, 572], [968, 100, 611], [981, 931, 22]],
    ),
    "top_p 1.0": (
        SamplingConfig(temperature=1.0, top_p=1.0),
        [[968, 931, 611], [968, 931, 572], [968, 844, 611], [981, 931, 22]],
    ),
    "top_k 50": (
        SamplingConfig(temperature=1.0, top_p=None, top_k=50),
        [[968, 931, 241], [532, 931, 708], [968, 430, 572], [971, 931, 611]],
    ),
}


@pytest.mark.parametrize("name", sorted(NVIDIA))
def test_same_seed_gives_cosmos_predict1_tokens(name):
    cfg, want = NVIDIA[name]
    g = torch.Generator().manual_seed(7)
    got = [sample(_logits(), cfg, g).tolist() for _ in range(4)]
    assert got == want


def test_drawing_in_vocabulary_order_would_not_reproduce_them():
    """Negative control: the race over vocabulary order (the first release's draw) picks other tokens, so the test
    above can tell the two draws apart."""
    cfg, want = NVIDIA["top_p 0.8"]
    g = torch.Generator().manual_seed(7)
    got = []
    for _ in range(4):
        probs = sampling_probs(_logits(), cfg)
        got.append((probs / torch.empty_like(probs).exponential_(1.0, generator=g)).argmax(-1).tolist())
    assert got != want


def test_sampler_consumes_the_generator_exactly_as_documented():
    """One ``exponential_(1)`` over a fresh [B, V] fp32 tensor per call, nothing else; the token is
    ``order.gather(argmax(nucleus_sorted / E))``."""
    logits, cfg = _logits(), SamplingConfig(temperature=0.9, top_p=0.7)
    g, twin = torch.Generator().manual_seed(11), torch.Generator().manual_seed(11)
    for _ in range(3):
        got = sample(logits, cfg, g)
        e = torch.empty(3, 1000).exponential_(1.0, generator=twin)  # the documented draw, replayed
        p_sorted, order = torch.sort(torch.softmax(logits / 0.9, -1), dim=-1, descending=True)
        p_sorted = p_sorted.masked_fill(p_sorted.cumsum(-1) - p_sorted > 0.7, 0.0)
        p_sorted = p_sorted / p_sorted.sum(-1, keepdim=True)
        assert torch.equal(got, order.gather(-1, (p_sorted / e).argmax(-1, keepdim=True))[:, 0])
        assert torch.equal(g.get_state(), twin.get_state())  # advanced by exactly that draw
    # Per-row generators: row r draws [1, V] from generator r, nothing from the others' streams.
    rows = [torch.Generator().manual_seed(s) for s in (1, 2, 3)]
    twins = [torch.Generator().manual_seed(s) for s in (1, 2, 3)]
    batch = sample(logits, cfg, rows)
    for r in range(3):
        assert torch.equal(batch[r], sample(logits[r : r + 1], cfg, twins[r])[0])  # equals its single run
        assert torch.equal(rows[r].get_state(), twins[r].get_state())
    # Greedy consumes nothing.
    before = g.get_state()
    sample(logits, SamplingConfig(temperature=0.0), g)
    assert torch.equal(g.get_state(), before)
    with pytest.raises(ValueError, match="2 generators for 3 rows"):
        exponential_draw(3, 10, rows[:2], torch.device("cpu"))


def test_topk_nucleus_keeps_the_same_nucleus_and_falls_back_when_the_cut_fails():
    torch.manual_seed(0)
    logits = torch.randn(512, 4000) * torch.linspace(0.5, 6, 512)[:, None]  # flat to peaked rows
    for top_p in (0.5, 0.8, 0.95):
        sort = SamplingConfig(top_p=top_p)
        topk = SamplingConfig(top_p=top_p, nucleus="topk", prefilter_k=2000)
        a, b = sampling_probs(logits, sort), sampling_probs(logits, topk)
        assert torch.equal(a > 0, b > 0)  # the same tokens kept in every row
        assert (a - b).abs().max().item() < 1e-6  # renormalised by a sum over k instead of V entries
        ga, gb = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
        assert torch.equal(sample(logits, sort, ga), sample(logits, topk, gb))
        assert torch.equal(ga.get_state(), gb.get_state())  # the full [B, V] race is drawn either way
    # A flat row whose 8 most likely tokens hold less than top_p: the cut does not hold, the full sort is used.
    flat = torch.zeros(2, 100)
    narrow = SamplingConfig(top_p=0.5, nucleus="topk", prefilter_k=8)
    assert torch.equal(sampling_probs(flat, narrow), sampling_probs(flat, SamplingConfig(top_p=0.5)))
    assert (sampling_probs(flat, narrow) > 0).sum(-1).tolist() == [51, 51]  # mass before the 52nd is 0.51 > 0.5


@pytest.mark.parametrize(
    "bad, needle",
    [
        (dict(temperature=float("inf")), "temperature"),
        (dict(temperature=float("nan")), "temperature"),
        (dict(top_k=0), "top_k"),
        (dict(top_k=True), "top_k"),
        (dict(top_p=float("nan")), "top_p"),
        (dict(nucleus="heap"), "nucleus"),
        (dict(prefilter_k=0), "prefilter_k"),
    ],
)
def test_sampling_config_refuses_silent_nonsense(bad, needle):
    with pytest.raises(ValueError, match=needle):
        SamplingConfig(**bad)
