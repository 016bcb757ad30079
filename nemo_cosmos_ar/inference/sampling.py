"""Next-token sampling: temperature, optional top-k, top-p (nucleus); greedy at temperature 0.

Follows cosmos-predict1 ``utils/sampling.py`` (reference §6.3):

1. ``probs = softmax(logits / temperature)``;
2. sort descending, zero every entry whose cumulative probability *before* it exceeds ``top_p``
   (``cumsum - p_i > top_p``), renormalise;
3. draw with the exponential race ``argmax(p / E)``, ``E ~ Exp(1)`` i.i.d.: this picks index i with probability
   p_i, like ``multinomial``, without a host-device synchronisation.

``temperature == 0`` is greedy (argmax). ``top_k`` (optional) keeps the k largest logits before the softmax;
cosmos-predict1 uses either top-k or top-p, here both may be combined (top-k first). Randomness comes only from the
``torch.Generator`` passed in, so a seed gives the same tokens on the same device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(kw_only=True)
class SamplingConfig:
    """How the next token is drawn from the logits.

    Attributes:
        temperature: divides the logits; 0 means greedy (argmax). cosmos-predict1's default is 1.0.
        top_p: nucleus mass in (0, 1]; 1.0 keeps everything. cosmos-predict1's default for the base model is 0.8.
        top_k: keep only the k most likely tokens (None or 0: no top-k).
    """

    temperature: float = 1.0
    top_p: float = 0.8
    top_k: int | None = None

    def __post_init__(self) -> None:
        if not self.temperature >= 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k is not None and self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 or None: off), got {self.top_k}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def top_k_filter(logits: torch.Tensor, k: int | None) -> torch.Tensor:
    """``logits [..., V]`` with everything below the k-th largest value set to -inf (no-op for k None/0/>=V)."""
    if not k or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the nucleus of ``probs [..., V]`` (rows summing to 1) and renormalise; fp32 in, fp32 out.

    An entry survives when the probability mass strictly before it (in descending order) is at most ``top_p``, so
    the most likely token always survives and ``top_p -> 0`` leaves only it (greedy).
    """
    if top_p >= 1.0:
        return probs
    sorted_p, order = torch.sort(probs, dim=-1, descending=True)
    before = sorted_p.cumsum(dim=-1) - sorted_p
    sorted_p = sorted_p.masked_fill(before > top_p, 0.0)
    sorted_p = sorted_p / sorted_p.sum(dim=-1, keepdim=True)
    # Scatter back to vocabulary order so callers see a distribution over token ids, not over ranks.
    return torch.zeros_like(probs).scatter_(-1, order, sorted_p)


def sampling_probs(logits: torch.Tensor, config: SamplingConfig) -> torch.Tensor:
    """The distribution tokens are drawn from: ``[..., V]`` fp32, rows sum to 1 (one-hot argmax when greedy)."""
    logits = logits.float()  # bf16 logits would quantise the softmax; the sampling maths runs in fp32
    if config.greedy:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    probs = torch.softmax(top_k_filter(logits, config.top_k) / config.temperature, dim=-1)
    return top_p_filter(probs, config.top_p)


def sample(logits: torch.Tensor, config: SamplingConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one token per row.

    Args:
        logits: ``[..., V]`` any float dtype, on any device.
        config: temperature / top-k / top-p.
        generator: a ``torch.Generator`` on ``logits.device``; the only source of randomness (None: the global RNG).

    Returns:
        ``[...]`` int64 token ids on ``logits.device``.
    """
    if config.greedy:
        return logits.argmax(dim=-1)
    probs = sampling_probs(logits, config)
    # Exponential race: argmax(p_i / E_i) with E_i ~ Exp(1) selects i with probability p_i (min of exponentials
    # with rates p_i); zeroed entries can never win. No .item()/multinomial, so no host sync per token on a GPU.
    # The clamp keeps a draw of exactly 0 (possible in fp32) from turning a zeroed entry into 0/0 = NaN, which
    # argmax would pick.
    race = torch.empty_like(probs).exponential_(1.0, generator=generator).clamp_min_(torch.finfo(probs.dtype).tiny)
    return (probs / race).argmax(dim=-1)
