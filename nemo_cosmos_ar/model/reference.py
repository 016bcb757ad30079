"""A small plain-PyTorch re-implementation of the original Cosmos AR transformer.

It uses the released checkpoint's module names (``layers.N.attention.wq`` ...), so ``load_state_dict`` takes a
``model.pt`` with its ``model.`` prefix stripped. It is the yardstick for parity tests of the Megatron-Core model
and a dependency-free way to run a checkpoint (teacher-forced logits, KV-cache decoding on one device).

Numerics follow cosmos-predict1: RMSNorm normalises in fp32, casts back, then multiplies by the weight; QK-norm is
an RMSNorm over head_dim shared by all heads, eps 1e-5, applied before RoPE; q-head j uses KV head j // (H/KV).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nemo_cosmos_ar.model.config import CosmosARConfig
from nemo_cosmos_ar.model.rope3d import apply_rope, rope_3d_table


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        normed = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


class Attention(nn.Module):
    def __init__(self, cfg: CosmosARConfig) -> None:
        super().__init__()
        self.n_heads, self.n_kv, self.hd = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.wq = nn.Linear(cfg.dim, cfg.q_width, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.kv_width, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.kv_width, bias=False)
        self.wo = nn.Linear(cfg.q_width, cfg.dim, bias=False)
        self.q_norm = RMSNorm(cfg.head_dim, eps=1e-5)  # always 1e-5 in cosmos-predict1, whatever norm_eps says
        self.k_norm = RMSNorm(cfg.head_dim, eps=1e-5)

    def forward(self, x, angles, cache: dict | None = None, start: int = 0) -> torch.Tensor:
        b, s, _ = x.shape
        q = self.q_norm(self.wq(x).view(b, s, self.n_heads, self.hd))
        k = self.k_norm(self.wk(x).view(b, s, self.n_kv, self.hd))
        v = self.wv(x).view(b, s, self.n_kv, self.hd)
        q, k = apply_rope(q, angles), apply_rope(k, angles)  # angles: [s, 1, head_dim]
        if cache is not None:
            cache["k"][:, start : start + s] = k
            cache["v"][:, start : start + s] = v
            k, v = cache["k"][:, : start + s], cache["v"][:, : start + s]
        rep = self.n_heads // self.n_kv
        if s == 1 and start > 0:
            # One decoding step: the new query sees every cached key, so no mask is needed, and enable_gqa maps q-head
            # j to KV head j // rep (what repeat_interleave does) without copying the whole cache every step.
            o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), enable_gqa=True)
            return self.wo(o.transpose(1, 2).reshape(b, s, -1))
        q, k, v = (
            q.transpose(1, 2),
            k.repeat_interleave(rep, 2).transpose(1, 2),
            v.repeat_interleave(rep, 2).transpose(1, 2),
        )
        if start == 0:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # queries start+i attend keys 0..start+i (bottom-right aligned causal mask)
            mask = torch.ones(s, start + s, dtype=torch.bool, device=x.device).tril(diagonal=start)
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.wo(o.transpose(1, 2).reshape(b, s, -1))

    def step(self, x, angles, cache: dict, pos: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """One decoding step with shapes that do not depend on the position (CUDA-graph capturable).

        ``x [B, 1, dim]``; ``angles [1, 1, head_dim]``; ``pos`` a one-element int64 tensor; ``visible [1, 1, 1, L]`` bool,
        true for cache slots ``<= pos``. Attends over the whole static cache with that mask, so the same kernels
        (and the same captured graph) serve every position.
        """
        b = x.shape[0]
        q = self.q_norm(self.wq(x).view(b, 1, self.n_heads, self.hd))
        k = self.k_norm(self.wk(x).view(b, 1, self.n_kv, self.hd))
        v = self.wv(x).view(b, 1, self.n_kv, self.hd)
        q, k = apply_rope(q, angles), apply_rope(k, angles)
        cache["k"].index_copy_(1, pos, k)
        cache["v"].index_copy_(1, pos, v)
        o = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            cache["k"].transpose(1, 2),
            cache["v"].transpose(1, 2),
            attn_mask=visible,
            enable_gqa=True,
        )
        return self.wo(o.transpose(1, 2).reshape(b, 1, -1))


class FeedForward(nn.Module):
    def __init__(self, cfg: CosmosARConfig) -> None:
        super().__init__()
        self.w1 = nn.Linear(cfg.dim, cfg.ffn_hidden_size, bias=False)  # gate (SiLU)
        self.w3 = nn.Linear(cfg.dim, cfg.ffn_hidden_size, bias=False)  # up
        self.w2 = nn.Linear(cfg.ffn_hidden_size, cfg.dim, bias=False)  # down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, cfg: CosmosARConfig) -> None:
        super().__init__()
        self.attention = Attention(cfg)
        self.feed_forward = FeedForward(cfg)
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)

    def forward(self, x, angles, cache=None, start=0):
        h = x + self.attention(self.attention_norm(x), angles, cache, start)
        return h + self.feed_forward(self.ffn_norm(h))

    def step(self, x, angles, cache, pos, visible):
        h = x + self.attention.step(self.attention_norm(x), angles, cache, pos, visible)
        return h + self.feed_forward(self.ffn_norm(h))


class ReferenceTransformer(nn.Module):
    """``forward(tokens [B, S] int64, start=0) -> logits [B, S, vocab]`` (fp32 if the weights are fp32)."""

    def __init__(self, cfg: CosmosARConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        # RoPE angles of positions 0..seq_length-1, built once per (device, config) and sliced per call, so that a
        # decoding step neither recomputes the table nor copies positions host -> device (a sync on CUDA). A plain
        # attribute, not a buffer: it never appears in state_dict.
        self._angle_table: tuple[tuple[str, str], torch.Tensor] | None = None

    def init_random(self, seed: int = 0, std: float = 0.02) -> ReferenceTransformer:
        """Deterministic random weights; norms get non-trivial values so that mapping mistakes show in logits."""
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.ndim == 1:
                    p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_(std * torch.randn(p.shape, generator=g) * (50.0 if "tok_embeddings" in name else 1.0))
        return self

    def new_cache(self, batch: int, max_len: int, dtype=None, device=None) -> list[dict]:
        dtype = dtype or self.output.weight.dtype
        shape = (batch, max_len, self.cfg.n_kv_heads, self.cfg.head_dim)
        return [
            {"k": torch.zeros(shape, dtype=dtype, device=device), "v": torch.zeros(shape, dtype=dtype, device=device)}
            for _ in self.layers
        ]

    def forward(self, tokens: torch.Tensor, start: int = 0, cache: list[dict] | None = None) -> torch.Tensor:
        s = tokens.shape[1]
        angles = self.rope_angles(start, s, tokens.device)  # [s, 1, D]
        x = self.tok_embeddings(tokens)
        for i, layer in enumerate(self.layers):
            x = layer(x, angles, None if cache is None else cache[i], start)
        return self.output(self.norm(x))

    def forward_step(self, tokens: torch.Tensor, pos: torch.Tensor, cache: list[dict]) -> torch.Tensor:
        """Logits ``[B, vocab]`` after token ``tokens [B, 1]`` at position ``pos`` (a one-element int64 tensor on
        the model's device), written into ``cache`` slot ``pos``.

        Same result as ``forward(tokens, start=pos, cache=cache)[:, -1]``, but every shape is fixed by the cache
        length and the position is only read on the device: no host sync, no Python branch on it. That is what
        lets ``inference.generator`` capture one step in a CUDA graph and replay it for every token; eager decoding
        of the 4B is bound by the CPU launching ~60 kernels per layer (measured 14 tokens/s on an H200).
        """
        length = cache[0]["k"].shape[1]
        table = self.rope_angles(0, self.cfg.seq_length, tokens.device)  # cached [seq_length, 1, head_dim]
        angles = table.index_select(0, pos)  # [1, 1, head_dim]
        visible = (torch.arange(length, device=tokens.device) <= pos).view(1, 1, 1, length)  # [B, H, q, keys]
        x = self.tok_embeddings(tokens)
        for i, layer in enumerate(self.layers):
            x = layer.step(x, angles, cache[i], pos, visible)
        return self.output(self.norm(x))[:, -1]

    def rope_angles(self, start: int, length: int, device: torch.device) -> torch.Tensor:
        """RoPE angles ``[length, 1, head_dim]`` fp32 of positions ``start .. start+length-1`` (any position: past
        the grid the temporal axis keeps counting)."""
        if start + length > self.cfg.seq_length:
            return rope_3d_table(self.cfg, torch.arange(start, start + length), device=device)[:, 0]
        key = (str(device), repr(self.cfg))  # the config is a mutable dataclass: a changed grid or YaRN rebuilds
        if self._angle_table is None or self._angle_table[0] != key:
            self._angle_table = (key, rope_3d_table(self.cfg, device=device)[:, 0])
        return self._angle_table[1][start : start + length]
