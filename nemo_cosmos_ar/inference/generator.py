"""Autoregressive decoding of a video token grid with a static KV cache (what cosmos-predict1's
``AutoRegressiveModel.generate`` does for the base models, reference §6.3).

* the prompt is the first latent frame(s) of the tokenized input (1 frame for an image, 2 for a 9-frame video);
* **prefill**: one forward over the prompt fills every layer's KV cache and gives the logits of the first new token;
* **decode**: one token per step at absolute position p (3D RoPE row p), attending to the cache, until the grid
  (T'·H'·W' tokens) is full; the result is the whole grid, the prompt echoed in front (``echo=True``).

The model behind the loop is an *engine*: ``engine.McoreEngine`` (the Megatron-Core model that trains, any TP; what
``cosmos-ar generate`` uses) or ``ReferenceEngine`` (the plain-PyTorch yardstick of ``model/reference.py``). Both
offer ``new_cache``, ``prefill`` and a fixed-shape ``step(tokens, pos_tensor, cache, attend)``.

How steps run (``DecodeOptions``), each switch measurable on its own with ``bench/bench_generate.py``:

* ``step_mode``: "dynamic" (eager, attends exactly to the filled slots), "static" (eager, the fixed-shape step),
  "graph" (the fixed-shape step captured in a CUDA graph, one replay per token), "auto" (graph on CUDA, dynamic
  elsewhere). A failed capture warns and falls back to "static": slower, same tokens.
* ``bucket``: the fixed-shape step attends to the first ``bucket·ceil((p+1)/bucket)`` cache slots instead of all of
  them (one graph per length, captured before the prefill); 0 = the whole cache.
* ``sample_in_graph``: the sampler, the write of the new token and the position increment are part of the step
  (captured too on CUDA), so the host only replays graphs; the generators are registered with the graphs.
* ``speculative``: L > 0 verifies L draft tokens per forward (``speculative.py``: the same distribution, other
  draws for a seed; batch 1), with drafts made as ``speculative_init`` says; 0 (default) decodes one token a step.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Callable

import torch

from nemo_cosmos_ar.inference.sampling import Generators, SamplingConfig, fresh_generators, sample
from nemo_cosmos_ar.model.reference import ReferenceTransformer
from nemo_cosmos_ar.tokenizer import grid

# cosmos-predict1 ``_SUPPORTED_CONTEXT_LEN``: a prompt is one image or the last 9 frames of a video.
SUPPORTED_INPUT_FRAMES = (1, 9)
# Every output is one 33-frame chunk of the tokenizer (5 latent frames).
NUM_OUTPUT_FRAMES = 33
STEP_MODES = ("auto", "dynamic", "static", "graph")


def prompt_latent_frames(num_input_frames: int) -> int:
    """Latent frames that ``num_input_frames`` pixel frames fill in the causal tokenizer: 1 -> 1, 9 -> 2.

    The tokenizer encodes frame 0 alone and then 8 frames per latent frame, so the first ``1 + (n-1)/8`` latent
    frames of the padded 33-frame clip depend only on the real input frames, never on the padding.
    """
    if num_input_frames not in SUPPORTED_INPUT_FRAMES:
        raise ValueError(
            f"num_input_frames must be one of {SUPPORTED_INPUT_FRAMES} (an image or the last 9 frames "
            f"of a video, as cosmos-predict1), got {num_input_frames}"
        )
    return grid.prompt_latent_frames(num_input_frames)


@dataclass(kw_only=True)
class DecodeOptions:
    """How decoding steps run (module doc). The defaults are the fastest exact settings measured on an H200."""

    step_mode: str = "auto"
    bucket: int = 0
    sample_in_graph: bool = False
    speculative: int = 0
    speculative_init: str = "previous-frame"

    def __post_init__(self) -> None:
        if self.speculative:
            from nemo_cosmos_ar.inference.speculative import SpeculativeConfig

            SpeculativeConfig(window=self.speculative, init=self.speculative_init)  # validates
        if self.step_mode not in STEP_MODES:
            raise ValueError(f"step mode must be one of {STEP_MODES}, got {self.step_mode!r}")
        if self.bucket < 0:
            raise ValueError(f"bucket must be >= 0 (0: attend to the whole cache), got {self.bucket}")


@dataclass
class DecodeStats:
    """Timings of one ``generate_tokens`` call (seconds; device work included: the clock stops after a sync)."""

    prompt_tokens: int
    generated_tokens: int
    prefill_s: float
    decode_s: float
    batch: int = 1
    step_mode: str = ""
    forwards: int = 0  # decode forwards after the prefill (speculative decoding: fewer than the tokens)

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens per second over the whole batch."""
        return self.batch * self.generated_tokens / self.decode_s if self.decode_s > 0 else float("nan")


class ReferenceEngine:
    """``model/reference.py``'s transformer behind the engine interface: the parity yardstick, and the decoding
    step of the first release (separate Q/K/V and gate/up weights, masked SDPA over the whole cache)."""

    def __init__(self, model: ReferenceTransformer) -> None:
        self.model, self.cfg, self.vocab_size = model, model.cfg, model.cfg.vocab_size
        self.device = model.output.weight.device

    def new_cache(self, batch: int, length: int) -> list[dict]:
        return self.model.new_cache(batch, length, device=self.device)

    def prefill(self, tokens: torch.Tensor, cache) -> torch.Tensor:
        return self.model(tokens, start=0, cache=cache)[:, -1]

    def step(self, tokens: torch.Tensor, pos: torch.Tensor, cache, attend: int) -> torch.Tensor:
        return self.model.forward_step(tokens, pos, cache)  # always the whole cache

    def dynamic_step(self, tokens: torch.Tensor, pos: int, cache) -> torch.Tensor:
        return self.model(tokens, start=pos, cache=cache)[:, -1]

    def verify(self, tokens: torch.Tensor, pos: torch.Tensor, cache, attend: int) -> torch.Tensor:
        return self.model(tokens, start=int(pos[0]), cache=cache)[0]  # [M, vocab]; the filled slots only

    @torch.inference_mode()
    def teacher_forced(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model(tokens.to(self.device))


def as_engine(model):
    return ReferenceEngine(model) if isinstance(model, ReferenceTransformer) else model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def warm_prefill(engine, tokens: torch.Tensor, on: bool | None = None) -> bool:
    """Run the prefill of ``tokens [B, P]`` once into a throwaway cache, the first time ``engine`` sees that shape
    (``on``: None = on CUDA only). True if it ran.

    Why: a fresh machine's first prefill of a shape compiles and tunes kernels, 1.0-1.3 s against 0.1-0.2 s for the
    same prefill in the next process (the H200, BENCHMARKS.md issue 13, twenty-ninth session). That is warm-up, and
    the callers run this before their timed prefill, next to the CUDA-graph capture. The prefill draws no random
    numbers and the real one refills every slot it reads, so the tokens do not change.
    """
    if not (engine.device.type == "cuda" if on is None else on):
        return False
    seen = engine.__dict__.setdefault("warm_prefill_shapes", set())
    if tuple(tokens.shape) in seen:
        return False
    seen.add(tuple(tokens.shape))
    engine.prefill(tokens, engine.new_cache(tokens.shape[0], tokens.shape[1]))
    return True


def _generators(generator: Generators) -> list[torch.Generator]:
    if generator is None:
        return []
    return [generator] if isinstance(generator, torch.Generator) else list(generator)


class _Decoder:
    """The per-token work of one ``generate_tokens`` call, eager or as CUDA graphs (one per attended length).

    Buffers: ``tok [B, 1]`` (the token entering the step), ``pos [1]`` (its position), ``logits [B, V]`` (in the
    model's dtype; the distribution of the next token) and ``out [B, L + 1]`` (the grid; column L is scratch for
    warm-up/capture).
    Warm-up and capture run at position L-1: the cache slot it writes is never read by a real step (the last real
    step is at L-2), and the output column it writes is overwritten by the final token.
    """

    def __init__(
        self,
        engine,
        cache,
        out: torch.Tensor,
        first: int,
        total: int,
        sampling: SamplingConfig,
        generator: Generators,
        opts: DecodeOptions,
        fused: bool,
        graphs: bool,
    ) -> None:
        self.engine, self.cache, self.out, self.first, self.total = engine, cache, out, first, total
        self.sampling, self.generator, self.opts, self.fused = sampling, generator, opts, fused
        device = engine.device
        batch = out.shape[0]
        self.tok = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.pos = torch.zeros(1, dtype=torch.long, device=device)
        # The model's dtype, as its step returns them: the sampler upcasts (sampling.sample), and on CUDA sorts
        # these as they are (bf16: a 16-bit radix key, sample_kernel).
        dtype = getattr(engine, "dtype", torch.float32)
        self.logits = torch.zeros(batch, engine.vocab_size, dtype=dtype, device=device)
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        if graphs:
            self._capture_all()

    def attend(self, pos: int) -> int:
        b = self.opts.bucket
        return self.total if not b else min(self.total, b * ((pos + 1 + b - 1) // b))

    def _forward(self, attend: int) -> None:
        """One eager (or captured) step from the buffers."""
        if self.fused:
            self.tok.copy_(sample(self.logits, self.sampling, self.generator).view(-1, 1))
            self.out.index_copy_(1, self.pos, self.tok)
        self.logits.copy_(self.engine.step(self.tok, self.pos, self.cache, attend))
        if self.fused:
            self.pos.add_(1)

    def _capture_all(self) -> None:
        device = self.engine.device
        lengths = sorted({self.attend(p) for p in range(self.first, self.total - 1)})
        gens = _generators(self.generator) if self.fused else []
        saved = [g.get_state() for g in gens]
        pool = torch.cuda.graph_pool_handle()
        for n in lengths:
            self.pos.fill_(self.total - 1)
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):  # warm-up on a side stream, as capture requires
                for _ in range(2):
                    self.pos.fill_(self.total - 1)
                    self._forward(n)
            torch.cuda.current_stream(device).wait_stream(side)
            self.pos.fill_(self.total - 1)
            graph = torch.cuda.CUDAGraph()
            for g in gens:
                graph.register_generator_state(g)
            # "thread_local": only this thread is held to capture-safe calls. The diffusion decoder loads its
            # weights on another thread meanwhile (by design), and torch's default "global" mode would fail that
            # thread's unsafe calls and invalidate this capture, leaving an eager decode (call g7's slow runs; with
            # this mode call a8's three runs of the same order all captured, BENCHMARKS.md issue 13).
            with torch.cuda.graph(graph, pool=pool, capture_error_mode="thread_local"):
                self._forward(n)
            self.graphs[n] = graph
        for g, s in zip(gens, saved):  # the warm-ups drew random numbers: back to the state we were given
            try:
                g.set_state(s)
            except RuntimeError:  # a generator registered with a graph may refuse; it was freshly seeded
                g.manual_seed(g.initial_seed())

    def run(self, pos: int) -> None:
        """Advance one token from position ``pos`` (fused: sample it, then step; else: step the buffered token)."""
        n = self.attend(pos)
        graph = self.graphs.get(n)
        if graph is not None:
            graph.replay()
        else:
            self._forward(n)


@torch.inference_mode()
def generate_tokens(
    model,
    prompt: torch.Tensor,
    total_tokens: int,
    sampling: SamplingConfig,
    generator: Generators = None,
    *,
    progress=False,
    on_logits: Callable[[int, torch.Tensor], None] | None = None,
    step_mode: str | None = None,
    options: DecodeOptions | None = None,
) -> tuple[torch.Tensor, DecodeStats]:
    """Extend ``prompt`` to ``total_tokens`` tokens: prefill, then one token at a time with a KV cache.

    Args:
        model: an engine (``engine.McoreEngine``, ``ReferenceEngine``) or a ``ReferenceTransformer``; its config's
            ``latent_shape`` must be the grid being generated (it fixes the 3D RoPE position of every token).
        prompt: ``[B, P]`` int64 token ids (``P >= 1``), flattened row-major from the grid (W fastest).
        total_tokens: length of the result (T'·H'·W' for a whole grid); at most ``cfg.seq_length``.
        sampling: temperature / top-p / top-k.
        generator: seeded ``torch.Generator`` on the model's device, or one per row (None: the global RNG).
        progress: True for a tqdm bar over the generated tokens (stderr), or a tqdm bar to advance (by B per step).
        on_logits: called as ``on_logits(p, logits [B, V])`` with the logits token ``p`` is drawn from (tests compare
            them with a teacher-forced forward). Copy them to keep them: the buffer is reused.
        step_mode: shorthand for ``options.step_mode``.
        options: how steps run (``DecodeOptions``; default: a CUDA graph on CUDA, eager elsewhere).

    Returns:
        ``([B, total_tokens] int64 on the model's device, stats)``; ``result[:, :P] == prompt``.
    """
    engine = as_engine(model)
    opts = options or DecodeOptions()
    if step_mode is not None:
        opts = DecodeOptions(step_mode=step_mode, bucket=opts.bucket, sample_in_graph=opts.sample_in_graph)
    device, cfg = engine.device, engine.cfg
    if prompt.ndim != 2 or prompt.shape[1] < 1 or prompt.is_floating_point():
        raise ValueError(
            f"prompt must be integer token ids [B, P] with P >= 1, got {tuple(prompt.shape)} {prompt.dtype}"
        )
    batch, num_prompt = prompt.shape
    if not num_prompt <= total_tokens <= cfg.seq_length:
        raise ValueError(
            f"total_tokens={total_tokens} must lie between the prompt length {num_prompt} and the "
            f"model's grid {list(cfg.latent_shape)} = {cfg.seq_length} tokens"
        )
    if opts.speculative:
        return _generate_speculative(engine, prompt, total_tokens, sampling, generator, progress, on_logits, opts)
    mode = opts.step_mode
    if mode == "auto":
        mode = "graph" if device.type == "cuda" else "dynamic"
    if mode == "graph" and device.type != "cuda":
        raise ValueError("CUDA graphs need the model on a CUDA device; use step mode 'static' or 'dynamic'")
    # Sampling with the checked top-k nucleus syncs with the host to choose its path, which a graph cannot hold.
    fused = opts.sample_in_graph and mode != "dynamic" and sampling.nucleus == "sort"
    out = torch.empty(batch, total_tokens + 1, dtype=torch.long, device=device)  # + scratch column
    out[:, :num_prompt] = prompt.to(device)
    # Static cache for the whole grid, allocated once (cosmos-predict1 does the same): decoding never reallocates.
    cache = engine.new_cache(batch, total_tokens)
    steps = total_tokens - num_prompt - 1  # forward steps after the prefill (the last token needs none)
    dec = None
    if steps > 0 and mode != "dynamic":
        try:  # built (and on CUDA captured) before the prefill: capture runs at the cache's last slot
            dec = _Decoder(
                engine, cache, out, num_prompt, total_tokens, sampling, generator, opts, fused, mode == "graph"
            )
        except RuntimeError as err:  # e.g. a kernel that cannot be captured on this torch/CUDA: slower, not wrong
            if mode != "graph" or opts.step_mode != "auto":
                raise
            warnings.warn(f"CUDA graph capture of the decoding step failed ({err}); decoding eagerly", stacklevel=2)
            mode = "static"
            if device.type == "cuda":
                generator = fresh_generators(generator, device)
            dec = _Decoder(engine, cache, out, num_prompt, total_tokens, sampling, generator, opts, fused, False)

    warm_prefill(engine, out[:, :num_prompt])
    _sync(device)
    t0 = time.perf_counter()
    logits = engine.prefill(out[:, :num_prompt], cache)
    _sync(device)
    t1 = time.perf_counter()
    bar, own_bar = progress, False
    if progress is True:
        from tqdm import tqdm

        bar, own_bar = (
            tqdm(total=batch * (total_tokens - num_prompt), unit="tok", desc="generating", dynamic_ncols=True),
            True,
        )
    if dec is not None and fused:
        dec.logits.copy_(logits)
        dec.pos.fill_(num_prompt)
        for pos in range(num_prompt, total_tokens - 1):
            if on_logits is not None:
                on_logits(pos, dec.logits)
            dec.run(pos)
            if bar:
                bar.update(batch)
        logits = dec.logits
    else:
        for pos in range(num_prompt, total_tokens - 1):
            if on_logits is not None:
                on_logits(pos, logits)
            out[:, pos] = sample(logits, sampling, generator)
            if dec is None:
                logits = engine.dynamic_step(out[:, pos : pos + 1], pos, cache)
            else:
                dec.tok.copy_(out[:, pos : pos + 1])
                dec.pos.fill_(pos)
                dec.run(pos)
                logits = dec.logits
            if bar:
                bar.update(batch)
    if total_tokens > num_prompt:  # the last token: sampled, never stepped (its logits would predict past the grid)
        if on_logits is not None:
            on_logits(total_tokens - 1, logits)
        out[:, total_tokens - 1] = sample(logits, sampling, generator)
        if bar:
            bar.update(batch)
    _sync(device)
    t2 = time.perf_counter()
    if own_bar:
        bar.close()
    del cache, dec
    label = mode + (" fused" if fused else "")
    stats = DecodeStats(num_prompt, total_tokens - num_prompt, t1 - t0, t2 - t1, batch, label, max(steps, 0))
    return out[:, :total_tokens], stats


def _generate_speculative(engine, prompt, total_tokens, sampling, generator, progress, on_logits, opts):
    """``generate_tokens`` by ``speculative.generate`` (``DecodeOptions.speculative``)."""
    from nemo_cosmos_ar.inference import speculative

    if on_logits is not None:
        raise ValueError("on_logits sees one-token steps; speculative decoding has none (set speculative=0)")
    if prompt.shape[0] != 1 or not isinstance(generator, (torch.Generator, type(None))):
        raise ValueError(f"speculative decoding runs batch 1, got {prompt.shape[0]} rows; use --batch-size 1")
    config = speculative.SpeculativeConfig(window=opts.speculative, init=opts.speculative_init)
    bar = progress
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=total_tokens - prompt.shape[1], unit="tok", desc="generating", dynamic_ncols=True)
    _sync(engine.device)
    t0 = time.perf_counter()
    try:
        out, spec, prefill_s = speculative.generate(
            engine, prompt.to(engine.device), total_tokens, sampling, config, generator, bar or None
        )
        _sync(engine.device)
    finally:
        if progress is True:
            bar.close()
    decode_s = time.perf_counter() - t0 - prefill_s - spec.capture_s  # capture outside, as the one-token decoder's
    label = f"speculative L={config.window} ({spec.tokens_per_forward:.2f} tokens/forward)"
    return out, DecodeStats(prompt.shape[1], spec.generated, prefill_s, decode_s, 1, label, spec.forwards)
