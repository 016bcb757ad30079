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

Everything a step does lives on the device (``_Window``: the tokens, the proposals, the position n), so on CUDA the
forward and the accept/reject are replayed as one CUDA graph (``_Steps``), one per attended length (the filled cache
rounded up to ``BUCKET`` slots), captured before the prefill at the spare
slots. The host reads n back one step late, so the GPU never waits for it; it only needs n to pick the next graph
and to stop.

No NeMo import; the engine is anything with ``new_cache``, ``prefill`` and ``verify`` (``McoreEngine``,
``generator.ReferenceEngine``).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass

import torch

from nemo_cosmos_ar.inference import coupled_kernel
from nemo_cosmos_ar.inference.generator import warm_prefill
from nemo_cosmos_ar.inference.sampling import SamplingConfig, exponential_draw, fresh_generators, sampling_probs

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
            raise ValueError(
                f"the speculative window (--speculative-window) must be an integer >= 1 (0 turns it off), got {self.window}"
            )
        if self.init not in INITS:
            raise ValueError(f"draft init must be one of {', '.join(INITS)}, got {self.init!r}")


@dataclass
class SpeculativeStats:
    """What one ``generate`` call did."""

    forwards: int = 0  # verify forwards (the prefill not counted)
    generated: int = 0  # tokens produced after the prompt
    capture_s: float = 0.0  # compiling and capturing the forward's CUDA graphs, before the prefill

    @property
    def tokens_per_forward(self) -> float:
        return self.generated / self.forwards if self.forwards else float("nan")


def race(weights: torch.Tensor, exp: torch.Tensor) -> torch.Tensor:
    """One draw per row proportional to the non-negative ``weights [R, V]`` (no need to normalise), by the
    exponential race ``argmax(w / E)`` with ``exp`` ~ Exp(1) of the same shape (as ``sampling.sample``)."""
    return (weights / exp).argmax(dim=-1)


def keeps(p: torch.Tensor, q: torch.Tensor, drafts: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """The test of ``coupled_resample``: ``[R]`` bool, draft i kept with probability min(1, p_i(d)/q_i(d))."""
    idx = drafts.view(-1, 1)
    pd, qd = p.gather(1, idx)[:, 0], q.gather(1, idx)[:, 0]
    return (pd >= qd) | (uniform * qd < pd)  # u < p/q without dividing by a q that rounding made 0


def coupled_resample(
    p: torch.Tensor, q: torch.Tensor, drafts: torch.Tensor, uniform: torch.Tensor, exp: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row i: keep ``drafts[i]`` with probability min(1, p_i(d)/q_i(d)), else draw from max(p_i - q_i, 0).

    ``p``, ``q`` ``[R, V]`` fp32 rows summing to 1, ``drafts [R]`` drawn from ``q``, ``uniform [R]`` ~ U[0, 1),
    ``exp [R, V]`` ~ Exp(1). Returns ``(tokens [R], kept [R] bool)``; every token is a draw from p_i. Where p_i = q_i
    bit for bit the residual is empty but the test always keeps (p(d) >= q(d)); the race then falls back to p.
    """
    kept = keeps(p, q, drafts, uniform)
    residual = (p - q).clamp_min_(0.0)
    residual = torch.where(residual.sum(1, keepdim=True) > 0, residual, p)
    return torch.where(kept, drafts, race(residual, exp)), kept


BUCKET = 512  # cache slots per attended-length step of the captured forwards
# From this many rows a forward the captured products run on cuBLASLt: at M = 32 / 64 one step's products take
# 2.010 / 2.065 ms there against cuBLAS's 2.083 / 2.180 (fc2 at M = 64: 36.4 -> 32.0 us), at M = 16 cuBLAS is
# faster (2.044 against 2.080 ms; BENCHMARKS.md, bench_blas_rows.py)
LT_ROWS = 32
FUSED_FAILURES: list[str] = []


def _fused_available(device: torch.device, sampling: SamplingConfig) -> bool:
    """Whether ``_Window`` takes ``coupled_kernel``: CUDA, Triton there, ``kernel="auto"``, no earlier failure."""
    if device.type != "cuda" or sampling.kernel != "auto" or FUSED_FAILURES:
        return False
    from nemo_cosmos_ar.inference import decode_kernel

    return decode_kernel.available()


class _Window:
    """One sequence's tokens (accepted, then L drafts) and the drafts' proposals, all on the device, and the step
    that advances them after a forward (``advance``: fixed shapes, no host read, so it is captured with the forward).

    ``n [1]``: the position of the last accepted token (its K/V not yet cached); the forward reads
    ``grid[n .. n + L]``. Past the grid's last position ``advance`` changes nothing but scratch, so forwards queued
    after the end are harmless.
    """

    def __init__(self, engine, grid, total: int, config: SpeculativeConfig, frame: int, sampling, generator) -> None:
        device, L = grid.device, config.window
        self.engine, self.grid, self.total, self.L, self.frame = engine, grid, total, L, frame
        self.init, self.sampling, self.gen, self.vocab = config.init, sampling, generator, engine.vocab_size
        self.n = torch.zeros(1, dtype=torch.long, device=device)
        self.q = torch.zeros(L, self.vocab, device=device)
        self.rows = torch.arange(L, device=device)
        self.offsets = torch.arange(L + 1, device=device)
        self.fused = _fused_available(device, sampling)  # coupled_kernel for the passes over [L + 1, V]

    def start(self, n: int) -> None:
        """Drafts for positions n+1 .. n+L after the first accepted token at n."""
        self.n.fill_(n)
        positions = n + 1 + self.rows
        tok, q = self._new_drafts(positions)
        self.grid.index_copy_(0, positions, tok)
        self.q.copy_(q)

    def _new_tokens(self, positions: torch.Tensor) -> torch.Tensor:
        if self.init == "previous-frame":  # one frame back is accepted: the window is at most a frame long
            return self.grid.index_select(0, positions - self.frame)
        return torch.randint(0, self.vocab, (self.L,), generator=self.gen, device=self.grid.device)

    def _proposals(self, tok: torch.Tensor) -> torch.Tensor:
        """New drafts' proposals: point masses on ``tok`` (previous-frame), or uniform (random)."""
        if self.init == "previous-frame":  # (one_hot would sync on CUDA)
            return torch.zeros_like(self.q).scatter_(1, tok[:, None], 1.0)
        return torch.full_like(self.q, 1.0 / self.vocab)

    def _new_drafts(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tok = self._new_tokens(positions)
        return tok, self._proposals(tok)

    def forward(self, cache, attend: int) -> torch.Tensor:
        """The verify forward's logits ``[L + 1, V]`` for ``grid[n .. n + L]``."""
        tokens = self.grid.index_select(0, self.n + self.offsets)[None]
        return self.engine.verify(tokens, self.n, cache, attend)

    def advance(self, logits: torch.Tensor) -> None:
        """Accept/reject the drafts against the forward's ``logits`` and move the window (module doc, steps 2-4)."""
        L, n, rows = self.L, self.n, self.rows
        # [L + 1, V]: row j is position n + 1 + j. On CUDA Triton kernels without a sort (nucleus_kernel)
        p = sampling_probs(logits, self.sampling)
        uniform = torch.rand(L, generator=self.gen, device=p.device)
        exp = exponential_draw(p.shape[0], p.shape[1], self.gen, p.device)
        drafts = self.grid.index_select(0, n + 1 + rows)
        raced = self._fused(coupled_kernel.residual_race, p, self.q, exp) if self.fused else None
        if raced is not None:  # the same tokens as the ops below, from the same random numbers
            kept = keeps(p[:L], self.q, drafts, uniform)
            drawn = torch.cat([torch.where(kept, drafts, raced[:L]), raced[L:]])
        else:
            drawn, kept = coupled_resample(p[:L], self.q, drafts, uniform, exp[:L])
            drawn = torch.cat([drawn, race(p[L:], exp[L:])])  # [L + 1]: the bonus draw after L passes last
        valid = (self.total - 1 - n).clamp(0, L)  # draft positions inside the grid
        k = (kept & (rows < valid)).to(torch.int32).cumprod(0).sum().view(1).long()  # leading passes
        # accepted: the k drafts (already in place) and the draw at the first failure (or the bonus) at n + 1 + k
        self.grid.index_copy_(0, n + 1 + k, drawn.index_select(0, k))
        n_new = n + (k + 1) * (n < self.total - 1)
        # next drafts at n_new + 1 + i: this forward's draws past the failure (row k + 1 + i, its p the proposal),
        # then new ones
        src = (k + 1 + rows).clamp(max=L)
        carried = (k + 1 + rows <= L)[:, None]
        positions = n_new + 1 + rows
        if self.fused:
            new_tok = self._new_tokens(positions)
            done = self._fused(coupled_kernel.carry_proposals, self.q, p, src, carried[:, 0], new_tok,
                               self.init == "random")  # fmt: skip
            if done is None:  # failed: the ops, from the same tokens
                self.q.copy_(torch.where(carried, p.index_select(0, src), self._proposals(new_tok)))
        else:
            new_tok, new_q = self._new_drafts(positions)
            self.q.copy_(torch.where(carried, p.index_select(0, src), new_q))
        self.grid.index_copy_(0, positions, torch.where(carried[:, 0], drawn.index_select(0, src), new_tok))
        self.n.copy_(n_new)

    def _fused(self, fn, *args):
        """``fn(*args)`` (a ``coupled_kernel`` call), or None after warning once that it failed; the torch ops from
        then on."""
        try:
            return fn(*args)
        except Exception as err:  # Triton raises several types (compilation, resources, driver) on unsupported GPUs
            FUSED_FAILURES.append(f"{type(err).__name__}: {err}")
            self.fused = False
            warnings.warn(
                f"speculative decoding's Triton kernels failed ({FUSED_FAILURES[-1].splitlines()[0]}); using the "
                "torch ops from now on",
                stacklevel=3,
            )
            return None


@contextlib.contextmanager
def preferred_blas(library: str | None):
    """torch's preferred CUDA BLAS library set to ``library`` inside the block (None, or a build without it:
    unchanged), the previous one restored after it, also on an error. The setting is process-wide, so it is held
    only around a capture: a CUDA graph keeps the kernels it captured, whatever is preferred when it replays."""
    previous = torch.backends.cuda.preferred_blas_library()
    try:
        if library is not None:
            torch.backends.cuda.preferred_blas_library(library)
    except RuntimeError:  # a build without it ("not been compiled with cuBLASLt"): torch's choice then
        pass
    try:
        yield
    finally:
        torch.backends.cuda.preferred_blas_library(previous)


def capture_library(rows: int) -> str | None:
    """The BLAS library the verify forward of ``rows`` tokens is captured with (None: torch's choice)."""
    return "cublaslt" if rows >= LT_ROWS else None


class _Steps:
    """A forward plus ``advance``, replayed from CUDA graphs, one per attended length (``attend``); capture runs
    at the cache's spare slots (n = total), where ``advance`` changes nothing the decode reads."""

    def __init__(self, win: _Window, cache, first: int, length: int, capture: bool = True) -> None:
        engine = win.engine
        device = engine.device
        self.win, self.cache, self.m, self.length = win, cache, win.L + 1, length
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        # the "topk" nucleus syncs with the host to pick its path: no graph can hold it
        if not (capture and device.type == "cuda" and win.sampling.nucleus == "sort"):
            return
        saved_n, saved_q, saved_grid = win.n.clone(), win.q.clone(), win.grid.clone()
        gen_state = win.gen.get_state() if win.gen is not None else None
        with preferred_blas(capture_library(self.m)):  # the warm-ups too: cuBLASLt picks its kernels there
            self._capture(first, length)
        win.n.copy_(saved_n)
        win.q.copy_(saved_q)
        win.grid.copy_(saved_grid)
        if gen_state is not None:  # the warm-ups drew random numbers: back to the state we were given
            try:
                win.gen.set_state(gen_state)
            except RuntimeError:  # a generator registered with a graph may refuse; it was freshly seeded
                win.gen.manual_seed(win.gen.initial_seed())

    def _capture(self, first: int, length: int) -> None:
        win, device = self.win, self.win.engine.device
        pool = torch.cuda.graph_pool_handle()
        for attend in sorted({self.attend(n) for n in range(first, length)}):
            win.n.fill_(win.total)
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):  # warm-up (compiles the M-row pieces once) on a side stream
                for _ in range(2):
                    self._eager(attend)
            torch.cuda.current_stream(device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            if win.gen is not None:
                graph.register_generator_state(win.gen)
            with torch.cuda.graph(graph, pool=pool, capture_error_mode="thread_local"):  # see generator._Decoder
                self._eager(attend)
            self.graphs[attend] = graph

    def attend(self, n: int) -> int:
        return min(self.length, BUCKET * -(-(n + self.m) // BUCKET))

    def _eager(self, attend: int) -> None:
        self.win.advance(self.win.forward(self.cache, attend))

    def __call__(self, n_bound: int) -> None:
        """One step, for a window whose n is at most ``n_bound``."""
        attend = self.attend(n_bound)
        graph = self.graphs.get(attend)
        if graph is not None:
            graph.replay()
        else:
            self._eager(attend)


def _sync(device: torch.device) -> None:
    """Wait for the device (timing; bench_overlap.py swaps it for the current stream's, as for generator._sync)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def read_lag(device: torch.device) -> int:
    """Steps queued ahead of the host's read of n: 1 on CUDA (the GPU never idles for the host), 0 elsewhere."""
    return 1 if device.type == "cuda" else 0


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
    to advance by the tokens accepted. On CUDA the host queues each step before reading where the previous one
    left the window (one step behind), so the GPU never waits for it; the step queued after the last token changes
    nothing.
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
    # + room past the end: the window's drafts reach n + 2L + 1 with n <= total (a step queued after the last token)
    grid = torch.zeros(total_tokens + 2 * L + 2, dtype=torch.long, device=device)
    grid[:num_prompt] = prompt[0].to(device)
    length = total_tokens + L + 1  # cache slots: a forward at n <= total writes slots up to n + L
    cache = engine.new_cache(1, length)
    win = _Window(engine, grid, total_tokens, config, frame, sampling, generator)
    steps, t_capture = None, time.perf_counter()
    if total_tokens - num_prompt > 1:
        try:
            steps = _Steps(win, cache, num_prompt, length)
        except RuntimeError as err:  # a kernel that cannot be captured on this torch/CUDA: slower, not wrong
            warnings.warn(
                f"CUDA graph capture of the speculative step failed ({err}); running it eagerly", stacklevel=2
            )
            generator = win.gen = fresh_generators(win.gen, device)
            steps = _Steps(win, cache, num_prompt, length, capture=False)
    warm_prefill(engine, grid[None, :num_prompt])  # a fresh machine's kernel compiles: warm-up, not the video
    _sync(device)
    t0 = time.perf_counter()
    stats.capture_s = t0 - t_capture
    logits = engine.prefill(grid[None, :num_prompt], cache)
    _sync(device)
    prefill_s = time.perf_counter() - t0
    if total_tokens == num_prompt:
        return grid[None, :total_tokens], stats, prefill_s
    # The first new token: a plain draw from the prefill's logits (nothing to verify yet).
    p0 = sampling_probs(logits, sampling)
    grid[num_prompt] = race(p0, exponential_draw(1, p0.shape[1], generator, device))[0]
    if progress:
        progress.update(1)
    win.start(num_prompt)
    n_known, pending = num_prompt, 0  # the last n read back, and the steps queued after it
    lag = read_lag(device)
    seen = torch.zeros(2, dtype=torch.long, device="cpu", pin_memory=device.type == "cuda")
    events = [torch.cuda.Event() for _ in range(2)] if device.type == "cuda" else []
    queued = 0
    while n_known < total_tokens - 1:
        steps(min(n_known + pending * (L + 1), total_tokens))
        queued += 1
        pending += 1
        slot = queued % 2
        seen[slot : slot + 1].copy_(win.n, non_blocking=bool(events))
        if events:
            events[slot].record()
        if pending > lag:  # read the oldest queued step's n
            old = (queued - lag) % 2
            if events:
                events[old].synchronize()
            n_new = int(seen[old])
            if progress:
                progress.update(min(n_new, total_tokens - 1) - n_known)
            n_known, pending = n_new, pending - 1
            stats.forwards = queued - lag
    _sync(device)
    stats.generated = total_tokens - num_prompt
    return grid[None, :total_tokens], stats, prefill_s
