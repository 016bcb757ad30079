"""Speculative Jacobi decoding with coupled drafts (``inference/speculative.py``): the coupling's arithmetic, the
exact output distribution on a model small enough to enumerate, and the tiny Megatron engine's verify forward and
greedy tokens against the one-token decoder."""

import itertools
from types import SimpleNamespace

import pytest
import torch
from scipy.stats import chi2

from gen_assets import GRID
from nemo_cosmos_ar.inference import checkpoints as ck
from nemo_cosmos_ar.inference import engine, speculative
from nemo_cosmos_ar.inference import generator as gen
from nemo_cosmos_ar.inference.sampling import SamplingConfig, fresh_generators, sampling_probs
from nemo_cosmos_ar.model.presets import get_preset
from nemo_cosmos_ar.model.reference import ReferenceTransformer


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------------------------
# The coupling
# ---------------------------------------------------------------------------------------------------------------
P = torch.tensor([0.5, 0.3, 0.2, 0.0])
Q = torch.tensor([0.1, 0.2, 0.3, 0.4])


def _resample(p, q, rows: int, seed: int):
    g = _gen(seed)
    drafts = torch.multinomial(q.expand(rows, -1), 1, replacement=True, generator=g)[:, 0]
    uniform = torch.rand(rows, generator=g)
    exp = torch.empty(rows, p.numel()).exponential_(1.0, generator=g)
    return drafts, *speculative.coupled_resample(p.expand(rows, -1), q.expand(rows, -1), drafts, uniform, exp)


def test_coupled_resample_draws_from_p_and_keeps_the_draft_as_often_as_a_maximal_coupling():
    """200,000 rows, drafts drawn from q: the outputs follow p (each frequency within 0.005; std <= 0.0011), and the
    output equals the draft with probability sum(min(p, q)) = 0.1 + 0.2 + 0.2 = 0.5, the most any coupling reaches."""
    drafts, out, kept = _resample(P, Q, 200_000, 0)
    freq = torch.bincount(out, minlength=4).float() / out.numel()
    assert (freq - P).abs().max().item() < 0.005, freq
    assert freq[3].item() == 0.0  # a token p excludes never comes out
    assert abs((out == drafts).float().mean().item() - 0.5) < 0.005
    assert torch.equal(out[kept], drafts[kept])
    # Negative control: the drafts alone follow q, far from p, so the frequency check above can fail.
    assert (torch.bincount(drafts, minlength=4).float() / drafts.numel() - P).abs().max().item() > 0.3


def test_coupled_resample_keeps_every_draft_when_p_equals_q_and_is_greedy_on_point_masses():
    drafts, out, kept = _resample(P, P, 10_000, 1)
    assert bool(kept.all()) and torch.equal(out, drafts)
    onehot = torch.nn.functional.one_hot(torch.tensor([2, 2, 0]), 4).float()
    q = torch.nn.functional.one_hot(torch.tensor([2, 1, 3]), 4).float()
    out, kept = speculative.coupled_resample(
        onehot, q, torch.tensor([2, 1, 3]), torch.rand(3, generator=_gen(2)), torch.ones(3, 4)
    )
    assert out.tolist() == [2, 2, 0] and kept.tolist() == [True, False, False]


# ---------------------------------------------------------------------------------------------------------------
# The output distribution, exactly, on a model small enough to enumerate
# ---------------------------------------------------------------------------------------------------------------
class MarkovEngine:
    """A causal toy model behind the engine interface: the logits of position t+1 are a fixed random function of
    (t, token t-1, token t). Its "cache" records the tokens by position, so ``verify`` sees exactly what the
    accepted prefix and the drafts put there."""

    def __init__(self, vocab: int, latent_shape: tuple[int, int, int], seed: int = 0) -> None:
        t, h, w = latent_shape
        self.cfg = SimpleNamespace(latent_shape=latent_shape, vocab_size=vocab, seq_length=t * h * w)
        self.vocab_size, self.device = vocab, torch.device("cpu")
        self.table = torch.randn(t * h * w + 64, vocab, vocab, vocab, generator=_gen(seed)) * 1.5

    def logits_at(self, history: torch.Tensor, t: int) -> torch.Tensor:
        return self.table[t, history[t - 1] if t else 0, history[t]]

    def new_cache(self, batch: int, length: int) -> torch.Tensor:
        return torch.zeros(length, dtype=torch.long)

    def prefill(self, tokens: torch.Tensor, cache) -> torch.Tensor:
        cache[: tokens.shape[1]] = tokens[0]
        return self.logits_at(cache, tokens.shape[1] - 1)[None]

    def verify(self, tokens: torch.Tensor, pos: torch.Tensor, cache, attend: int) -> torch.Tensor:
        n, m = int(pos[0]), tokens.shape[1]
        cache[n : n + m] = tokens[0]
        return torch.stack([self.logits_at(cache, n + i) for i in range(m)])


def _exact_distribution(model: MarkovEngine, prompt: list[int], total: int, sampling: SamplingConfig):
    """{generated tuple: probability}, by enumerating every path through the sampling distributions."""
    dist = {}
    for tail in itertools.product(range(model.vocab_size), repeat=total - len(prompt)):
        seq, prob = torch.tensor(prompt + list(tail)), 1.0
        for t in range(len(prompt), total):
            prob *= sampling_probs(model.logits_at(seq, t - 1), sampling)[seq[t]].item()
        dist[tail] = prob
    return dist


def _chi_square(model, prompt, total, sampling, config, runs: int, seed: int) -> tuple[float, float, int]:
    """(statistic, its 1e-4 upper quantile, runs outside the support) of ``runs`` speculative generations against
    the exact distribution."""
    exact = _exact_distribution(model, prompt, total, sampling)
    counts = dict.fromkeys(exact, 0)
    g = _gen(seed)
    for _ in range(runs):
        out, _, _ = speculative.generate(model, torch.tensor([prompt]), total, sampling, config, g)
        counts[tuple(out[0, len(prompt) :].tolist())] += 1
    outside = sum(counts[k] for k, p in exact.items() if p == 0)
    support = [k for k, p in exact.items() if p > 0]
    stat = sum((counts[k] - runs * exact[k]) ** 2 / (runs * exact[k]) for k in support)
    return stat, chi2.ppf(1 - 1e-4, len(support) - 1), outside


# 3 tokens, latent frames of 2 tokens; a 2-token prompt (one frame), 4 generated: 81 sequences, of which top_p 0.9
# leaves 18 possible (the least likely expected ~6 times in 4,000 runs), so the nucleus is exercised too.
CASES = {
    "previous-frame drafts, window 2": SimpleNamespace(init="previous-frame", window=2),
    "random drafts, window 3": SimpleNamespace(init="random", window=3),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_speculative_decoding_draws_from_the_models_distribution(case):
    """4,000 generations of 4 tokens: none is impossible, and the counts of the 18 possible sequences against their
    exact probabilities pass a chi-square test at the 1e-4 level (limit 47.6; the statistic's expectation is 17).
    Negative control: the same generations with every draft kept (speculative sampling's test removed) fail it."""
    model = MarkovEngine(3, (3, 1, 2), seed=4)
    sampling = SamplingConfig(temperature=1.0, top_p=0.9)
    config = speculative.SpeculativeConfig(window=CASES[case].window, init=CASES[case].init)
    stat, limit, outside = _chi_square(model, [0, 2], 6, sampling, config, 4000, seed=11)
    assert outside == 0  # nothing outside the nucleus, ever
    assert stat < limit, f"chi-square {stat:.1f} >= {limit:.1f}"

    def keep_all(p, q, drafts, uniform, exp):
        return drafts, torch.ones_like(drafts, dtype=torch.bool)

    real = speculative.coupled_resample
    speculative.coupled_resample = keep_all
    try:
        bad, _, bad_outside = _chi_square(model, [0, 2], 6, sampling, config, 4000, seed=11)
    finally:
        speculative.coupled_resample = real
    assert bad > 5 * limit and bad_outside > 0, f"the broken sampler's chi-square is only {bad:.1f}"


def test_windows_accept_several_tokens_when_drafts_are_likely():
    """A model whose every position repeats the token one frame back with probability ~1: previous-frame drafts
    are all accepted, so each forward yields window + 1 tokens (the last one the bonus draw)."""
    model = MarkovEngine(3, (6, 1, 4), seed=0)
    model.logits_at = lambda history, t: torch.nn.functional.one_hot(history[t - 3], 3).float() * 40
    config = speculative.SpeculativeConfig(window=4, init="previous-frame")
    out, stats, _ = speculative.generate(model, torch.tensor([[0, 1, 2, 1]]), 24, SamplingConfig(), config, _gen(0))
    assert out[0].tolist() == [0, 1, 2, 1] * 6
    assert stats.generated == 20 and stats.forwards == 4  # 1 from the prefill, then 5 + 5 + 5 + 4 (the grid ends)


# ---------------------------------------------------------------------------------------------------------------
# The tiny Megatron engine
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def engines():
    ref = ReferenceTransformer(get_preset("tiny").with_latent_shape(GRID)).init_random(seed=1).eval()
    device = engine.init_parallel(1, torch.device("cpu"))
    model = engine.build_model(ref.cfg, 1, device, torch.float32)
    ck.load_native_state(model, ref.state_dict(), ref.cfg)
    return ref, engine.McoreEngine(model, ref.cfg)


@pytest.mark.parametrize("fused", [False, True])
def test_verify_forward_matches_teacher_forcing_including_the_window_past_the_grid(engines, fused):
    """Verify runs 8 tokens after a prefill, at positions 100..107 and at 116..123 (120..123 lie past the 120-token
    grid): every real row's logits equal Megatron's training forward and the reference's verify within 1e-5 (fp32),
    for Megatron's layers and for the fused step's; a row one position off is far off."""
    ref, eng = engines
    total = eng.cfg.seq_length
    tokens = torch.randint(0, 64000, (1, total + 4), generator=_gen(3))
    full = eng.teacher_forced(tokens[:, :total])[0]
    eng.fused_step = fused
    try:
        with torch.inference_mode():
            for start in (100, 116):
                cache = eng.new_cache(1, total + 8)
                eng.prefill(tokens[:, :start], cache)
                got = eng.verify(tokens[:, start : start + 8], torch.tensor([start]), cache, start + 8)
                real = min(8, total - start)
                assert (got[:real] - full[start : start + real]).abs().max().item() < 1e-5
                assert (got[1] - full[start]).abs().max().item() > 1e-2  # negative control
                ref_cache = ref.new_cache(1, total + 8)
                ref(tokens[:, :start], start=0, cache=ref_cache)
                want = gen.ReferenceEngine(ref).verify(
                    tokens[:, start : start + 8], torch.tensor([start]), ref_cache, 0
                )
                assert (got[:real] - want[:real]).abs().max().item() < 1e-5
    finally:
        eng.fused_step = False


def test_the_fused_verify_writes_the_window_into_the_cache_as_index_copy_does():
    """``fused_step.qk_norm_rope_cache`` (the verify's K/V written by the QK-norm/RoPE step): the same q as
    ``qk_norm_rope`` and caches bit-equal to its k and v written by ``index_copy_``; no other slot touched."""
    from nemo_cosmos_ar.inference import fused_step

    g = torch.Generator().manual_seed(11)
    m, groups, hpg, hd, length = 5, 2, 3, 8, 20
    q = torch.randn(1, m, groups, hpg * hd, generator=g)
    k, v = torch.randn(1, m, groups, hd, generator=g), torch.randn(1, m, groups, hd, generator=g)
    qw, kw = torch.rand(hd, generator=g) + 0.5, torch.rand(hd, generator=g) + 0.5
    angles = torch.randn(1, m, 1, hd, generator=g)
    cos, sin = angles.cos(), angles.sin()
    slots = torch.arange(7, 7 + m)
    filled = torch.randn(2, 1, groups, length, hd, generator=g)
    kc, vc = filled[0].clone(), filled[1].clone()
    q_fused = fused_step.qk_norm_rope_cache(q, k, v, qw, kw, 1e-6, 1e-5, cos, sin, kc, vc, slots)
    q_want, k_want = fused_step.qk_norm_rope(q, k, qw, kw, 1e-6, 1e-5, cos, sin)
    kw_c, vw_c = filled[0].clone(), filled[1].clone()
    kw_c.index_copy_(2, slots, k_want.reshape(m, groups, hd).transpose(0, 1)[None])
    vw_c.index_copy_(2, slots, v.reshape(m, groups, hd).transpose(0, 1)[None])
    assert torch.equal(q_fused, q_want) and torch.equal(kc, kw_c) and torch.equal(vc, vw_c)
    assert not torch.equal(kc[:, :, 7], filled[0][:, :, 7])  # the window's slots did change
    assert torch.equal(kc[:, :, 12:], filled[0][:, :, 12:]) and torch.equal(vc[:, :, :7], filled[1][:, :, :7])


@pytest.mark.parametrize("window, init", [(1, "random"), (5, "previous-frame"), (24, "previous-frame")])
def test_greedy_speculative_tokens_equal_the_one_token_decoder(engines, window, init):
    """Temperature 0: speculative decoding gives the one-token decoder's greedy grid exactly, on the Megatron engine
    and the reference; with sampling a seed gives the same tokens twice and another seed other tokens."""
    ref, eng = engines
    hw = GRID[1] * GRID[2]
    prompt = torch.randint(0, 64000, (1, hw), generator=_gen(5))
    total = eng.cfg.seq_length
    greedy = SamplingConfig(temperature=0.0)
    want, _ = gen.generate_tokens(eng, prompt, total, greedy)
    opts = gen.DecodeOptions(speculative=window, speculative_init=init)
    for model in (eng, ref):
        got, stats = gen.generate_tokens(model, prompt, total, greedy, options=opts)
        assert torch.equal(got, want)
        assert stats.generated_tokens == total - hw and 0 < stats.forwards <= total - hw - 1
    runs = [gen.generate_tokens(eng, prompt, total, SamplingConfig(), _gen(s), options=opts)[0] for s in (0, 0, 1)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    assert torch.equal(runs[0][:, :hw], prompt)


def test_reading_the_window_one_step_late_changes_nothing(engines, monkeypatch):
    """The host reads n one step late on CUDA (``read_lag``): the step queued after the last token must change no
    token, and the random draws stay in step, so lag 1 gives lag 0's tokens and forward count (seeded top-p)."""
    _, eng = engines
    prompt = torch.randint(0, 64000, (1, 24), generator=_gen(8))
    config = speculative.SpeculativeConfig(window=6)
    runs = []
    for lag in (0, 1):
        monkeypatch.setattr(speculative, "read_lag", lambda device, lag=lag: lag)
        out, stats, _ = speculative.generate(eng, prompt, 120, SamplingConfig(), config, _gen(3))
        runs.append((out, stats.forwards))
    assert torch.equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]


def test_speculative_options_refuse_what_they_cannot_do(engines):
    _, eng = engines
    hw = GRID[1] * GRID[2]
    with pytest.raises(ValueError, match="integer >= 1"):
        speculative.SpeculativeConfig(window=0)
    with pytest.raises(ValueError, match="draft init"):
        gen.DecodeOptions(speculative=4, speculative_init="zeros")
    prompt = torch.zeros(2, hw, dtype=torch.long)
    with pytest.raises(ValueError, match="batch 1"):
        gen.generate_tokens(eng, prompt, 48, SamplingConfig(), options=gen.DecodeOptions(speculative=4))
    with pytest.raises(ValueError, match="longer than one latent frame"):
        gen.generate_tokens(eng, prompt[:1], 48, SamplingConfig(), options=gen.DecodeOptions(speculative=hw + 1))
    with pytest.raises(ValueError, match="on_logits"):
        gen.generate_tokens(
            eng, prompt[:1], 48, SamplingConfig(), on_logits=print, options=gen.DecodeOptions(speculative=4)
        )


def test_a_fresh_generator_continues_the_old_stream():
    """After a failed capture the decoders draw from ``fresh_generators``: the same state, so the same next numbers;
    one per row for a list."""
    g = torch.Generator().manual_seed(11)
    torch.rand(5, generator=g)
    fresh = fresh_generators(g, torch.device("cpu"))
    assert fresh is not g and torch.equal(torch.rand(7, generator=fresh), torch.rand(7, generator=g))
    rows = [torch.Generator().manual_seed(s) for s in (1, 2)]
    again = fresh_generators(rows, torch.device("cpu"))
    assert len(again) == 2 and all(torch.equal(torch.rand(3, generator=a), torch.rand(3, generator=r))
                                   for a, r in zip(again, rows))  # fmt: skip


def test_preferred_blas_is_restored_after_the_block_and_after_an_error():
    """The capture's BLAS library is set only inside the block (process-wide state): the previous library is back
    after it and after an exception; a library this build lacks (cuBLASLt on the CPU build) leaves torch's choice."""
    blas = torch.backends.cuda.preferred_blas_library
    before = blas()
    other = "default" if before != torch._C._BlasBackend.Default else "cublas"
    try:
        blas(other)
        chosen = blas()
        with speculative.preferred_blas("cublas"):
            assert blas() == torch._C._BlasBackend.Cublas
        assert blas() == chosen
        with pytest.raises(KeyError), speculative.preferred_blas("cublas"):
            raise KeyError("inside")
        assert blas() == chosen
        with speculative.preferred_blas(None):
            assert blas() == chosen
        with speculative.preferred_blas("cublaslt"):
            lt = torch._C._BlasBackend.Cublaslt
            assert blas() in ((lt,) if torch.cuda.is_available() else (lt, chosen))
        assert blas() == chosen
    finally:
        blas(before)
    assert [speculative.capture_library(m) for m in (16, 31, 32, 64)] == [None, None, "cublaslt", "cublaslt"]


@pytest.mark.parametrize("window", [0, 6])
def test_the_warm_up_prefill_runs_once_per_shape_and_changes_no_token(engines, monkeypatch, window):
    """``generator.warm_prefill`` (on CUDA by default; forced on here): the first generate of a prompt shape runs one
    extra prefill into a throwaway cache, a second generate of that shape none, another shape one more; the sampled
    tokens (seeded top-p) are those of a run without it, for the one-token decoder (window 0) and speculative
    decoding."""
    _, eng = engines
    prompt = torch.randint(0, 64000, (1, 24), generator=_gen(9))
    opts = gen.DecodeOptions(speculative=window, speculative_init="random")
    want = [
        gen.generate_tokens(eng, p, 72, SamplingConfig(), _gen(4), options=opts)[0] for p in (prompt, prompt[:, :12])
    ]
    real, ran = gen.warm_prefill, []
    assert not real(eng, prompt)  # the default: a CPU engine gets no warm-up

    def forced(engine, tokens, on=None):
        ran.append(real(engine, tokens, on=True))
        return ran[-1]

    monkeypatch.setattr(gen, "warm_prefill", forced)
    monkeypatch.setattr(speculative, "warm_prefill", forced)
    monkeypatch.delitem(eng.__dict__, "warm_prefill_shapes", raising=False)
    got = [gen.generate_tokens(eng, p, 72, SamplingConfig(), _gen(4), options=opts)[0] for p in (prompt, prompt)]
    other = gen.generate_tokens(eng, prompt[:, :12], 72, SamplingConfig(), _gen(4), options=opts)[0]
    assert ran == [True, False, True]
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[0]) and torch.equal(other, want[1])
