"""A whole M-token verify step of the 4B against generate's one-token step (issue 13; speculative sampling's cost).

``bench_verify_cost.py`` timed a step's products alone at M rows (1.09-1.10x the one-token products at any M up to
8). Here the whole forward: M tokens of one sequence at positions ``pos .. pos + M - 1`` through Megatron's layers
(cuBLAS products, Megatron's norms and SwiGLU), their K/V written into the cache, attention of the M queries over
the cache as two GEMMs per KV group with a causal mask (the cache read once for all M), all M rows of logits; one
CUDA graph per M, ~5,130 filled slots, the cache read up to ``--attend`` slots (a bucket, as generate's). Against it:
generate's exact default step (fused step, Triton matrix-vector products, Triton attention, PDL) in a graph. And
the check that the M logits equal M one-token steps on the same cache (bf16 rounding only). The same with the layers
of generate's fused step (its compiled norms, RoPE and SwiGLU) taking the M tokens as its rows. Sampling is not timed
(top-p over M rows instead of one: ~40 us a row today, less batched).

    python bench/bench_verify_step.py
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_generate import random_mcore  # noqa: E402

from bench.bench_gemv import graph_time as _graph_time  # noqa: E402


def graph_time(fn) -> float:
    """Microseconds per ``fn()`` replayed in a CUDA graph."""
    return 1e6 * _graph_time(lambda i: fn(), 1)


def m_query_attend(engine, positions: torch.Tensor, attend: int):
    """The ``attend_fn`` of a verify step: writes the M rows' K/V at ``positions`` and attends each row to the cache
    slots up to its own position, as two GEMMs per KV group (the cache read once for all M). Takes Megatron's
    ``[M, 1, ...]`` layout and the fused step's ``[1, M, ...]`` alike; returns ``[*q.shape[:2], heads * hd]``."""
    m = positions.numel()
    visible = torch.arange(attend, device=positions.device)[None] <= positions[:, None]  # [M, attend]

    def attend_fn(attn, q, k, v, kv):
        kc, vc = kv  # [1, groups, L, hd]
        g, hd = kc.shape[1], kc.shape[3]
        kc.index_copy_(2, positions, k.reshape(m, g, hd).transpose(0, 1)[None])
        vc.index_copy_(2, positions, v.reshape(m, g, hd).transpose(0, 1)[None])
        hpg = q.shape[2] // g
        qg = q.reshape(m, g, hpg, hd).permute(1, 0, 2, 3).reshape(g, m * hpg, hd)
        scale = engine.scale if engine.scale is not None else hd**-0.5
        scores = torch.matmul(qg, kc[0, :, :attend].transpose(-1, -2)).float() * scale  # [g, M*hpg, attend]
        mask = visible.repeat_interleave(hpg, 0)  # row r = query position r // hpg
        probs = scores.masked_fill(~mask, float("-inf")).softmax(-1).to(vc.dtype)
        o = torch.matmul(probs, vc[0, :, :attend])  # [g, M*hpg, hd]
        return o.view(g, m, hpg, hd).permute(1, 0, 2, 3).reshape(*q.shape[:2], g * hpg * hd)

    return attend_fn


def verify_forward(engine, tokens: torch.Tensor, pos: torch.Tensor, cache, attend: int) -> torch.Tensor:
    """Logits ``[M, vocab]`` of ``tokens [1, M]`` at positions ``pos[0] ..``; writes their K/V into ``cache``."""
    positions = pos + torch.arange(tokens.shape[1], device=pos.device)
    cos, sin = engine.cos.index_select(0, positions), engine.sin.index_select(0, positions)  # [M, 1, 1, hd]
    attend_fn = m_query_attend(engine, positions, attend)
    x = engine.model.embedding(input_ids=tokens, position_ids=None)  # [M, 1, dim]
    for layer, kv in zip(engine.layers, cache):
        x = engine._layer(layer, x, cos, sin, kv, attend_fn)
    h = engine.model.decoder.final_layernorm(x)
    return engine.model.output_layer(h)[0][:, 0, : engine.vocab_size]


def verify_fused(engine, tokens: torch.Tensor, pos: torch.Tensor, cache, attend: int) -> torch.Tensor:
    """``verify_forward`` on generate's fused step (``fused_step.run_layers``: compiled QK norm + RoPE, add + norm
    and SwiGLU, cuBLAS products) with the M tokens as its rows, each at its own position."""
    from nemo_cosmos_ar.inference import fused_step

    m = tokens.shape[1]
    positions = pos + torch.arange(m, device=pos.device)
    cos = engine.cos.index_select(0, positions).view(1, m, 1, -1)  # row i at position pos + i
    sin = engine.sin.index_select(0, positions).view(1, m, 1, -1)
    x = engine.model.embedding(input_ids=tokens, position_ids=None).view(1, m, -1)  # rows as the step's batch
    h = fused_step.run_layers(engine, x, cos, sin, cache, m_query_attend(engine, positions, attend))
    return fused_step.project(engine.model.output_layer, h, False, False)[0, :, : engine.vocab_size]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--filled", type=int, default=5120, help="cache slots filled before the timed steps")
    ap.add_argument("--attend", type=int, default=6144, help="slots the verify attention reads (a bucket)")
    ap.add_argument("--rows", default="1,2,4,8")
    args = ap.parse_args()
    from nemo_cosmos_ar.inference import engine as en
    from nemo_cosmos_ar.model.presets import get_preset

    device = en.init_parallel(1, torch.device("cuda"))
    cfg = get_preset("4b").with_latent_shape((5, 40, 64))
    engine = en.McoreEngine(random_mcore(cfg, 1, device, torch.bfloat16), cfg)
    en.configure_decode(engine)  # generate's defaults: fused step, Triton gemv + attention, PDL
    length = cfg.seq_length
    g = torch.Generator(device=device).manual_seed(0)
    prompt = torch.randint(0, cfg.vocab_size, (1, args.filled), generator=g, device=device)
    cache = engine.new_cache(1, length)
    with torch.inference_mode():
        engine.prefill(prompt, cache)
        pos = torch.tensor([args.filled], device=device)
        tok1 = torch.randint(0, cfg.vocab_size, (1, 1), generator=g, device=device)
        step_us = graph_time(lambda: engine.step(tok1, pos, cache, length))
        print(f"generate's one-token step (graph, attend {length}): {step_us:.0f} us")
        rows = [int(r) for r in args.rows.split(",")]
        print("| layers | M | verify step us | per token us | cost in one-token steps | max abs dlogit vs M steps |")
        print("|---|---:|---:|---:|---:|---:|")
        for label, fn in (("Megatron's", verify_forward), ("fused step", verify_fused)):
            for m in rows:
                toks = torch.randint(0, cfg.vocab_size, (1, m), generator=g, device=device)
                us = graph_time(lambda toks=toks, fn=fn: fn(engine, toks, pos, cache, args.attend))
                got = fn(engine, toks, pos, cache, args.attend).float()
                steps = [engine.step(toks[:, i : i + 1], pos + i, cache, length)[0] for i in range(m)]
                err = (got - torch.stack(steps).float()).abs().max().item()
                print(f"| {label} | {m} | {us:.0f} | {us / m:.0f} | {us / step_us:.2f} | {err:.3f} |")


if __name__ == "__main__":
    main()
