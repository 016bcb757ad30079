"""Speculative Jacobi decoding with coupled drafts: several tokens per forward, the same distribution (issue 13).

At batch 1 a 4B decode step reads all 7.5 GB of weights to produce one token, so the AR stage is bound by memory
(BENCHMARKS.md, nineteenth session). A forward over M tokens reads the weights once for all M. This module keeps a
window of ``L`` *draft* tokens after the accepted prefix and verifies them all in one forward, without a draft model
(Speculative Jacobi Decoding, Teng et al. 2024), with the drafts re-drawn by *maximal coupling* so that they stay put
from one forward to the next (So et al., "Speculative Coupled Decoding", arXiv 2510.24211, which reports up to 13.6x
fewer forwards on Cosmos-1.0-Autoregressive-4B video). Re-implemented here from the papers' description.

One iteration, with the prefix accepted up to position n (token x_n known, its K/V not yet in the cache) and drafts
d_{n+1..n+L}, each drawn from a recorded proposal q_{n+i}:

1. ``engine.verify`` runs x_n, d_{n+1}, ..., d_{n+L} at positions n..n+L (one forward, K/V written); row j gives
   p_{n+1+j}, the sampling distribution (``sampling.sampling_probs``: temperature, top-p, top-k, greedy) of position
   n+1+j given the tokens before it.
2. ``coupled_resample`` at every draft position: keep d with probability min(1, p(d)/q(d)), else draw from
   max(p - q, 0) normalised. Up to the first rejection this is speculative sampling's test (Leviathan et al. 2023;
   Chen et al. 2023), which makes each accepted token an exact draw from p given the prefix; beyond it the same
   operation is a maximal coupling of q and p: a draw from p that equals the old draft as often as any draw from p can.
3. The first k drafts that passed are accepted, plus the token drawn at the first rejection (or, when all L passed,
   a draw from p_{n+L+1}): k+1 tokens per forward, at least one.
4. The coupled draws beyond become the next drafts, with this forward's p as their proposal; the freed slots at the
   window's end get new drafts (``init``): the token one latent frame back (a point-mass proposal) or a uniform
   random token.

Why the output distribution is the model's: a draft at position t is drawn from its recorded proposal given
everything that fixed that proposal, and nothing at or after t influences the tests of positions before t (causal
attention), so each test sees a draw from q independent of its own randomness: the premise of the speculative
sampling theorem. Greedy decoding (temperature 0) makes p and q point masses: the result is the greedy token
sequence, token for token. A seed does not give the tokens the one-token decoder gives (the random numbers are used
differently): the distribution is the same, the draws are not.

Cache: ``new_cache`` holds T + L + 1 slots; rows past the grid's last position (the window's tail near the end) write
their K/V to the spare slots and take the last position's RoPE angles; no real row ever attends to them.

On CUDA the forward is replayed from CUDA graphs (``_VerifyGraphs``): one per attended length, the filled cache
rounded up to ``BUCKET`` slots (``FLEX_BUCKET`` with the flex attention), captured before the prefill at the spare slots; the graph reads its L + 1 tokens
from the token buffer at a device-side position, so a forward is one copy of n and one replay. The accept/reject
work stays eager (~0.4-0.8 ms a forward on the H200) and reads back k, the drafts that passed, once per forward.

No NeMo import; the engine is anything with ``new_cache``, ``prefill`` and ``verify`` (``McoreEngine``,
``generator.ReferenceEngine``).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import torch

from nemo_cosmos_ar.inference.sampling import SamplingConfig, sampling_probs

INITS = ("previous-frame", "random")


@dataclass(kw_only=True)
class SpeculativeConfig:
    """Attributes:
    window: L, the drafts verified per forward (the forward runs L + 1 tokens). >= 1.
    init: how a new draft is made: "previous-frame" (the token one latent frame back: a static camera repeats
        most tokens; needs ``window`` <= one frame's H'·W' tokens) or "random" (uniform over the vocabulary).
    """

    window: int = 32
    init: str = "previous-frame"

    def __post_init__(self) -> None:
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ValueError(f"the speculative window must be an integer >= 1 (0 turns it off), got {self.window}")
        if self.init not in INITS:
            raise ValueError(f"draft init must be one of {', '.join(INITS)}, got {self.init!r}")


@dataclass
class SpeculativeStats:
    """What one ``generate`` call did."""

    forwards: int = 0  # verify forwards (the prefill not counted)
    generated: int = 0  # tokens produced after the prompt
    verify_s: float = 0.0  # in the forwards (device time included only where the caller syncs)
    capture_s: float = 0.0  # compiling and capturing the forward's CUDA graphs, before the prefill

    @property
    def tokens_per_forward(self) -> float:
        return self.generated / self.forwards if self.forwards else float("nan")


def race(weights: torch.Tensor, exp: torch.Tensor) -> torch.Tensor:
    """One draw per row proportional to the non-negative ``weights [R, V]`` (no need to normalise), by the
    exponential race ``argmax(w / E)`` with ``exp`` ~ Exp(1) of the same shape (as ``sampling.sample``)."""
    return (weights / exp).argmax(dim=-1)


def coupled_resample(
    p: torch.Tensor, q: torch.Tensor, drafts: torch.Tensor, uniform: torch.Tensor, exp: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row i: keep ``drafts[i]`` with probability min(1, p_i(d)/q_i(d)), else draw from max(p_i - q_i, 0).

    ``p``, ``q`` ``[R, V]`` fp32 rows summing to 1, ``drafts [R]`` drawn from ``q``, ``uniform [R]`` ~ U[0, 1),
    ``exp [R, V]`` ~ Exp(1). Returns ``(tokens [R], kept [R] bool)``; every token is a draw from p_i. Where p_i = q_i
    bit for bit the residual is empty but the test always keeps (p(d) >= q(d)); the race then falls back to p.
    """
    idx = drafts.view(-1, 1)
    pd, qd = p.gather(1, idx)[:, 0], q.gather(1, idx)[:, 0]
    kept = (pd >= qd) | (uniform * qd < pd)  # u < p/q without dividing by a q that rounding made 0
    residual = (p - q).clamp_min_(0.0)
    residual = torch.where(residual.sum(1, keepdim=True) > 0, residual, p)
    return torch.where(kept, drafts, race(residual, exp)), kept


BUCKET = 512  # cache slots per attended-length step of the captured forwards
# The compiled flex_attention is compiled once per attended length (seconds each): fewer, longer steps; its fused
# kernel makes the extra slots cheap.
FLEX_BUCKET = 2048


class _VerifyGraphs:
    """``engine.verify`` of L + 1 tokens read from ``grid`` at a device-side position, captured per attended length
    (the filled slots rounded up to ``BUCKET``); capture runs at the cache's spare slots (positions ``total ..``)."""

    def __init__(self, engine, grid, cache, m: int, first: int, total: int, length: int) -> None:
        device = engine.device
        self.engine, self.grid, self.cache, self.m, self.length = engine, grid, cache, m, length
        self.bucket = FLEX_BUCKET if getattr(engine, "verify_attention", "") == "flex" else BUCKET
        self.pos = torch.zeros(1, dtype=torch.long, device=device)
        self.offsets = torch.arange(m, device=device)
        self.logits = torch.zeros(m, engine.vocab_size, dtype=getattr(engine, "dtype", torch.float32), device=device)
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        pool = torch.cuda.graph_pool_handle()
        for attend in sorted({self.attend(n) for n in range(first, total - 1)}):
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):  # warm-up (compiles the M-row pieces once) on a side stream
                for _ in range(2):
                    self._forward(total, attend)
            torch.cuda.current_stream(device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            self.pos.fill_(total)
            with torch.cuda.graph(graph, pool=pool, capture_error_mode="thread_local"):  # see generator._Decoder
                self._forward(None, attend)
            self.graphs[attend] = graph

    def attend(self, n: int) -> int:
        return min(self.length, self.bucket * -(-(n + self.m) // self.bucket))

    def _forward(self, n: int | None, attend: int) -> None:
        if n is not None:
            self.pos.fill_(n)
        tokens = self.grid.index_select(0, self.pos + self.offsets)[None]
        self.logits.copy_(self.engine.verify(tokens, self.pos, self.cache, attend))

    def __call__(self, n: int) -> torch.Tensor:
        self.pos.fill_(n)
        self.graphs[self.attend(n)].replay()
        return self.logits


def _leading_true(mask: torch.Tensor) -> int:
    """How many leading entries of the 1-D bool ``mask`` are True (one device -> host read)."""
    return int(mask.to(torch.int32).cumprod(0).sum().item())


class _Window:
    """The tokens (accepted prefix, then drafts) and the drafts' proposals of one sequence."""

    def __init__(self, grid: torch.Tensor, vocab: int, window: int, frame: int, init: str, generator) -> None:
        self.toks, self.vocab, self.L, self.frame, self.init, self.gen = grid, vocab, window, frame, init, generator
        self.q = torch.zeros(window, vocab, device=grid.device)

    def fill(self, start: int, slot: int, count: int) -> None:
        """New drafts for positions ``start .. start+count-1`` into proposal rows ``slot ..``."""
        if count <= 0:
            return
        rows = self.q[slot : slot + count]
        pos = torch.arange(start, start + count, device=self.toks.device)
        if self.init == "previous-frame":  # one frame back is already accepted (window <= frame)
            self.toks[start : start + count] = self.toks[pos - self.frame]
            rows.zero_().scatter_(1, self.toks[start : start + count].view(-1, 1), 1.0)
        else:
            self.toks[start : start + count] = torch.randint(
                0, self.vocab, (count,), generator=self.gen, device=self.toks.device
            )
            rows.fill_(1.0 / self.vocab)


@torch.inference_mode()
def generate(
    engine,
    prompt: torch.Tensor,
    total_tokens: int,
    sampling: SamplingConfig,
    config: SpeculativeConfig,
    generator: torch.Generator | None = None,
    progress=None,
) -> tuple[torch.Tensor, SpeculativeStats, float]:
    """Extend ``prompt [1, P]`` to ``total_tokens`` tokens, L drafts verified per forward (module doc).

    Returns ``(tokens [1, total_tokens] on the engine's device, stats, prefill seconds)``. ``progress``: a tqdm bar
    to advance by the tokens each forward accepts.
    """
    device = engine.device
    if prompt.ndim != 2 or prompt.shape[0] != 1:
        raise ValueError(
            f"speculative decoding runs one sequence at a time (batch 1), got prompt {tuple(prompt.shape)}"
        )
    num_prompt, L = prompt.shape[1], config.window
    cfg = engine.cfg
    frame = cfg.latent_shape[1] * cfg.latent_shape[2]
    if config.init == "previous-frame" and L > frame:
        raise ValueError(
            f"--speculative-window {L} is longer than one latent frame ({frame} tokens), which the previous-frame "
            "drafts need; use a smaller window or --speculative-init random"
        )
    if num_prompt < frame and config.init == "previous-frame":
        raise ValueError(f"previous-frame drafts need a prompt of at least one latent frame ({frame} tokens)")
    stats = SpeculativeStats()
    # + room for the window's tail past the end (drafts up to n + 2L + 1 with n <= total - 2)
    grid = torch.zeros(total_tokens + 2 * L + 2, dtype=torch.long, device=device)
    grid[:num_prompt] = prompt[0].to(device)
    cache = engine.new_cache(1, total_tokens + L + 1)
    graphs, t_capture = None, time.perf_counter()
    if device.type == "cuda" and total_tokens - num_prompt > 1:
        try:
            graphs = _VerifyGraphs(engine, grid, cache, L + 1, num_prompt, total_tokens, total_tokens + L + 1)
        except RuntimeError as err:  # a kernel that cannot be captured on this torch/CUDA: slower, not wrong
            warnings.warn(f"CUDA graph capture of the verify forward failed ({err}); running it eagerly", stacklevel=2)
    t0 = time.perf_counter()
    stats.capture_s = t0 - t_capture
    logits = engine.prefill(grid[None, :num_prompt], cache)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    prefill_s = time.perf_counter() - t0
    if total_tokens == num_prompt:
        return grid[None, :total_tokens], stats, prefill_s
    # The first new token: a plain draw from the prefill's logits (nothing to verify yet).
    p0 = sampling_probs(logits.float(), sampling)
    grid[num_prompt] = race(p0, _exp(p0.shape, generator, device))[0]
    n = num_prompt  # position of the last accepted token (its K/V not yet cached)
    win = _Window(grid, cfg.vocab_size, L, frame, config.init, generator)
    win.fill(n + 1, 0, L)
    pos = torch.zeros(1, dtype=torch.long, device=device)
    if progress:
        progress.update(1)
    while n < total_tokens - 1:
        valid = min(L, total_tokens - 1 - n)  # draft positions inside the grid (n+1 .. n+valid)
        t = time.perf_counter()
        if graphs is not None:
            logits = graphs(n)
        else:
            pos.fill_(n)
            logits = engine.verify(grid[None, n : n + L + 1], pos, cache, n + L + 1)
        stats.forwards += 1
        p = sampling_probs(logits.float(), sampling)  # [L + 1, V]: row j is position n + 1 + j
        uniform = torch.rand(L, generator=generator, device=device)
        exp = _exp(p.shape, generator, device)
        drawn, kept = coupled_resample(p[:L], win.q, grid[n + 1 : n + 1 + L], uniform, exp[:L])
        bonus = race(p[L:], exp[L:])
        k = _leading_true(kept[:valid])
        stats.verify_s += time.perf_counter() - t
        # Accepted: the k drafts (unchanged) and the draw at the first rejection, or the bonus after L passes.
        grid[n + 1 + k] = drawn[k] if k < L else bonus[0]
        if k + 1 < L:  # the coupled draws past it are the next drafts, this forward's p their proposal
            grid[n + k + 2 : n + L + 1] = drawn[k + 1 :]
            win.q[: L - k - 1] = p[k + 1 : L]
        if k < L:
            grid[n + L + 1] = bonus[0]
            win.q[L - k - 1] = p[L]
        accepted = min(k + 1, total_tokens - 1 - n)
        n += k + 1
        win.fill(n + L - k + 1, L - k, k)  # the k freed slots at the window's end (positions n_old + L + 2 ..)
        if progress:
            progress.update(accepted)
    stats.generated = total_tokens - num_prompt
    return grid[None, :total_tokens], stats, prefill_s


def _exp(shape, generator, device) -> torch.Tensor:
    e = torch.empty(shape, device=device).exponential_(1.0, generator=generator)
    return e.clamp_min_(torch.finfo(e.dtype).tiny)
