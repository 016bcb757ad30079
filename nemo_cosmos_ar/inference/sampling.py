"""Next-token sampling, drawn the way cosmos-predict1 draws it, so that a seed gives NVIDIA's tokens (CPU, fp32).

cosmos-predict1 (``autoregressive/utils/sampling.py``, reference §6.3) has three paths, chosen in ``generate``:

* **greedy** (``temperature == 0``): ``argmax(logits)``; no random number is drawn.
* **top-p** (``top_p`` given): ``probs = softmax(logits / T)``; ``sort`` descending; zero every sorted entry whose
  mass *before* it exceeds ``top_p`` (``cumsum - p > top_p``); divide by the kept sum; draw the exponential race
  ``argmax(p_sorted / E)`` with ``E = empty_like(p_sorted).exponential_(1)`` -- the draw is over the **sorted**
  probabilities, so ``E[r]`` belongs to the r-th most likely token -- and map the winning rank back to a token id
  with ``gather(order, rank)``.
* **top-k** (``top_k`` given, no ``top_p``): ``logits / max(T, 1e-5)``; everything below the k-th largest logit set
  to ``-inf``; softmax; the race over the probabilities in **vocabulary** order (no sort, no gather).

Generator contract (tested): per decoding step, one ``exponential_(1)`` call fills a fresh ``[B, V]`` tensor of the
probabilities' dtype (fp32 here) from the one ``torch.Generator`` -- or, with one generator per row (batches whose
rows must equal their single runs), row r fills a ``[1, V]`` tensor from generator r, rows in order. Nothing else
consumes random numbers; greedy consumes none. cosmos-predict1 seeds the global generator with
``torch.manual_seed(seed)`` right before generating; a ``torch.Generator`` seeded with the same number gives the same
stream on the same device, so the same seed gives the same tokens on CPU in fp32.

Two extensions, off unless asked for: ``top_k`` and ``top_p`` together (top-k masks the logits first, then the
top-p path runs); and ``nucleus="topk"``, which replaces the full sort by ``topk(prefilter_k)`` when the k largest
probabilities already hold more than ``top_p`` of the mass (then no token outside them can be in the nucleus: the mass
before the (k+1)-th is above ``top_p``), falling back to the full sort per call otherwise. The race still draws the
full ``[B, V]`` so the generator advances exactly as with the sort; the kept set is the same, the renormalising sum is
taken over k instead of V entries (last-bit differences, so a near-tie of two race values may resolve differently).

On CUDA the top-p path (``top_p`` set, no ``top_k``, the "sort" nucleus) runs as one sort and three small
Triton kernels (``sample_kernel``, ``kernel="auto"``): the same random numbers and the same draw, summed in another
order, so a rank at the nucleus edge or a near-tie of two race values may resolve the other way.
``kernel="torch"`` keeps the ops above on every device. ``sampling_probs`` (speculative decoding's whole
distribution) takes ``nucleus_kernel`` there instead: the nucleus without a sort, equal to the ops up to rounding.

The exponential draw is clamped to the smallest normal float: a draw of exactly 0 would make a zeroed entry 0/0 = NaN,
which ``argmax`` picks (cosmos-predict1 does not clamp; a 0 draw needs a uniform of exactly 0).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence, Union

import torch

NUCLEUS_MODES = ("sort", "topk")
KERNELS = ("auto", "torch")
# Why the kernels stopped being used in this process (a GPU or Triton build they do not compile for); empty = in use.
KERNEL_FAILURES: list[str] = []
Generators = Union[torch.Generator, Sequence[torch.Generator], None]


@dataclass(kw_only=True)
class SamplingConfig:
    """How the next token is drawn from the logits.

    Attributes:
        temperature: divides the logits; 0 means greedy (argmax). cosmos-predict1's default is 1.0. Finite, >= 0.
        top_p: nucleus mass in (0, 1]; None: no top-p (the top-k path if ``top_k`` is set, else plain sampling).
            cosmos-predict1's default for the base model is 0.8. 1.0 still runs the sort path, as NVIDIA's does.
        top_k: keep only the k most likely tokens (None: off); an integer >= 1.
        nucleus: "sort" (NVIDIA's full sort, default) or "topk" (exact cut-checked pre-filter, see module doc).
        prefilter_k: how many candidates the "topk" nucleus looks at before falling back to the sort.
        kernel: "auto" (the top-p draw as ``sample_kernel``'s sort + Triton kernels on CUDA, module doc) or "torch"
            (NVIDIA's ops everywhere).
    """

    temperature: float = 1.0
    top_p: float | None = 0.8
    top_k: int | None = None
    nucleus: str = "sort"
    prefilter_k: int = 1024
    kernel: str = "auto"

    def __post_init__(self) -> None:
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
            raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {t}")
        if self.top_p is not None and not (isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1):
            raise ValueError(f"top_p must be in (0, 1] (1 = keep every token), got {self.top_p}")
        k = self.top_k
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ValueError(f"top_k must be an integer >= 1 (leave it out for no top-k), got {self.top_k}")
        if self.nucleus not in NUCLEUS_MODES:
            raise ValueError(f"nucleus must be one of {NUCLEUS_MODES}, got {self.nucleus!r}")
        if self.kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {self.kernel!r}")
        if self.prefilter_k < 1:
            raise ValueError(f"prefilter_k must be >= 1, got {self.prefilter_k}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def top_k_filter(logits: torch.Tensor, k: int | None) -> torch.Tensor:
    """``logits [..., V]`` with everything below the k-th largest value set to -inf (cosmos-predict1's pivot test;
    ties with the k-th value survive). No-op for k None or >= V."""
    if not k or k >= logits.shape[-1]:
        return logits
    pivot = torch.topk(logits, k, dim=-1).values[..., -1:]
    return torch.where(logits < pivot, float("-inf"), logits)


def _nucleus_of_sorted(sorted_p: torch.Tensor, top_p: float) -> torch.Tensor:
    """Zero the sorted entries whose mass before them exceeds ``top_p`` and renormalise (NVIDIA's ops, in order)."""
    before = sorted_p.cumsum(dim=-1) - sorted_p
    sorted_p = sorted_p.masked_fill(before > top_p, 0.0)
    return sorted_p / sorted_p.sum(dim=-1, keepdim=True)


def sorted_nucleus(probs: torch.Tensor, config: SamplingConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """``(kept probabilities, most likely first [B, W], their token ids [B, W])`` for ``probs [B, V]``.

    W = V with the full sort; W = ``prefilter_k`` with the "topk" nucleus when the checked cut holds for every row.
    """
    top_p = config.top_p
    k = min(config.prefilter_k, probs.shape[-1])
    if config.nucleus == "topk" and k < probs.shape[-1]:
        vals, ids = torch.topk(probs, k, dim=-1, sorted=True)
        # The nucleus lies inside the k candidates iff their mass exceeds top_p: the (k+1)-th entry then has more
        # than top_p before it and is cut, and so is everything after it. The check costs one device->host sync,
        # which also keeps the choice out of CUDA graphs (generator.py never captures this mode).
        if bool((vals.cumsum(dim=-1)[:, -1] > top_p).all()):
            return _nucleus_of_sorted(vals, top_p), ids
    sorted_p, order = torch.sort(probs, dim=-1, descending=True)
    return _nucleus_of_sorted(sorted_p, top_p), order


def sampling_probs(logits: torch.Tensor, config: SamplingConfig) -> torch.Tensor:
    """The distribution tokens are drawn from: ``[..., V]`` fp32 in vocabulary order, rows sum to 1 (one-hot argmax
    when greedy). Where ``sample`` takes the kernel path (CUDA, top-p alone, ``kernel="auto"``) so does this:
    ``nucleus_kernel.nucleus_probs`` on the logits in their own dtype (no sort), equal to the ops' result up to
    rounding."""
    shape = logits.shape
    if _kernel_path(logits, config):
        from nemo_cosmos_ar.inference import nucleus_kernel

        try:
            rows = logits.reshape(-1, shape[-1])
            rows = rows if rows.stride(-1) == 1 else rows.contiguous()  # the kernels read rows of unit stride
            return nucleus_kernel.nucleus_probs(rows, config.temperature, config.top_p).view(shape)
        except Exception as err:  # as in sample: a GPU or Triton build the kernels do not compile for
            _kernel_failed(err, logits.device, "using")
    logits = logits.float()
    logits = logits.reshape(-1, shape[-1])
    if config.greedy:
        return torch.nn.functional.one_hot(logits.argmax(-1), shape[-1]).float().reshape(shape)
    probs = _probs(logits, config)
    if config.top_p is not None:
        kept, ids = sorted_nucleus(probs, config)
        probs = torch.zeros_like(probs).scatter_(-1, ids, kept)
    return probs.reshape(shape)


def _probs(logits: torch.Tensor, config: SamplingConfig) -> torch.Tensor:
    if config.top_p is None:  # NVIDIA's top-k path (logits_to_probs)
        return torch.softmax(top_k_filter(logits / max(config.temperature, 1e-5), config.top_k), dim=-1)
    return torch.softmax(top_k_filter(logits, config.top_k) / config.temperature, dim=-1)


def exponential_draw(batch: int, width: int, generator: Generators, device: torch.device) -> torch.Tensor:
    """The race's ``E ~ Exp(1)`` for ``batch`` rows of ``width`` fp32 values: one ``[batch, width]`` draw from one
    generator, or one ``[1, width]`` draw per row from per-row generators (rows in order)."""
    if generator is None or isinstance(generator, torch.Generator):
        race = torch.empty(batch, width, device=device).exponential_(1.0, generator=generator)
    else:
        if len(generator) != batch:
            raise ValueError(f"{len(generator)} generators for {batch} rows; pass one per row or a single one")
        race = torch.cat([torch.empty(1, width, device=device).exponential_(1.0, generator=g) for g in generator])
    return race.clamp_min_(torch.finfo(race.dtype).tiny)


def fresh_generators(generator: Generators, device: torch.device) -> Generators:
    """Generators no CUDA graph knows of, each with the old one's state (the device's default generator's for None)
    where it can be read, else its seed; one per row for a list. Why: a capture that failed part-way can leave the
    generators registered with it refusing every later draw ("Offset increment outside graph capture encountered
    unexpectedly": seen when another thread queued CUDA work during a capture, BENCHMARKS.md issue 13, call a34), so
    the decoders' eager fallbacks draw from these instead."""
    if generator is not None and not isinstance(generator, torch.Generator):
        return [fresh_generators(g, device) for g in generator]
    fresh = torch.Generator(device)
    try:
        fresh.set_state(generator.get_state() if generator is not None else torch.cuda.get_rng_state(device))
    except RuntimeError:
        fresh.manual_seed(generator.initial_seed() if generator is not None else torch.initial_seed())
    return fresh


def _kernel_path(logits: torch.Tensor, config: SamplingConfig) -> bool:
    """Whether ``sample`` takes ``sample_kernel``'s path: CUDA, top-p alone with the full-sort nucleus, Triton there."""
    if not (logits.is_cuda and config.kernel == "auto" and not config.greedy and config.top_p is not None):
        return False
    if config.top_k is not None or config.nucleus != "sort" or KERNEL_FAILURES:
        return False
    from nemo_cosmos_ar.inference import decode_kernel

    return decode_kernel.available()


def _kernel_failed(err: Exception, device: torch.device, then: str) -> None:
    """Record a failed top-p kernel (``_kernel_path`` is False from now on) and warn once with its first line."""
    KERNEL_FAILURES.append(f"{type(err).__name__}: {err}")
    warnings.warn(
        f"the top-p Triton kernels failed on {device} ({KERNEL_FAILURES[-1].splitlines()[0]}); "
        f"{then} the torch ops from now on (--sampling-kernel torch skips them)",
        stacklevel=3,
    )


def sample(logits: torch.Tensor, config: SamplingConfig, generator: Generators = None) -> torch.Tensor:
    """Draw one token per row of ``logits [B, V]`` (or ``[V]``), as cosmos-predict1 does (module doc).

    Args:
        logits: any float dtype, on any device; sampled in fp32.
        config: temperature / top-p / top-k.
        generator: a ``torch.Generator`` on ``logits.device`` (None: the global RNG), or one per row.

    Returns:
        ``[B]`` (or ``[]``) int64 token ids on ``logits.device``.
    """
    squeeze = logits.ndim == 1
    race = None  # the top-p race, when the kernel path drew it and then failed
    if _kernel_path(logits, config):
        from nemo_cosmos_ar.inference import sample_kernel

        keys = logits.reshape(-1, logits.shape[-1])
        race = exponential_draw(keys.shape[0], keys.shape[1], generator, logits.device)
        try:
            out = sample_kernel.sample_top_p(keys, config.temperature, config.top_p, race)
            return out[0] if squeeze else out
        except Exception as err:  # Triton raises several types (compilation, resources, driver) on unsupported GPUs
            _kernel_failed(err, logits.device, "sampling with")
    logits = logits.float().reshape(-1, logits.shape[-1])
    if config.greedy:
        out = logits.argmax(dim=-1)
        return out[0] if squeeze else out
    batch, vocab = logits.shape
    probs = _probs(logits, config)
    if config.top_p is None:  # race in vocabulary order
        out = (probs / exponential_draw(batch, vocab, generator, logits.device)).argmax(dim=-1)
    else:
        kept, ids = sorted_nucleus(probs, config)
        # The full [B, V] draw even when only W candidates are kept: the generator advances as with the sort. After
        # a failed kernel the race it drew is used, so the generator still advances once for this draw.
        if race is None:
            race = exponential_draw(batch, vocab, generator, logits.device)
        out = ids.gather(-1, (kept / race[:, : kept.shape[-1]]).argmax(dim=-1, keepdim=True))[:, 0]
    return out[0] if squeeze else out
