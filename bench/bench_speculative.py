"""Speculative Jacobi decoding of the 4B on one GPU (issue 13): what a forward of L + 1 tokens costs, what the AR
stage takes with it, against generate's one-token decoder.

Random weights in bf16, a random 2-frame prompt (5,120 tokens), the rest of the 5x40x64 grid generated (7,680
tokens), NVIDIA's sampling (temperature 1, top-p 0.8). Per window L:

* the whole decode by ``generator.generate_tokens(options=DecodeOptions(speculative=L))`` (forward and
  accept/reject replayed as one CUDA graph a step, the host reading the window one step late);
* the verify forward alone at ~5,130 filled slots (a 5,632-slot bucket) in a CUDA graph;
* the accept/reject alone in a graph (top-p over L + 1 rows, the residual races and the proposal carry by
  ``coupled_kernel``, as the decode runs them on CUDA; before the twenty-fourth session's a34, the torch ops' coupled
  resample without the carry); each run picks the verify attention (two GEMMs per KV group, or ``verify_kernel``'s
  split-K kernel).

How many tokens a forward accepts is a property of the weights: random weights make near-uniform distributions that
barely depend on the context, so their figure says nothing about the released model's. The table therefore also
gives the AR stage's time for a range of tokens per forward: 7,680 / R forwards at the measured cost of one.

    python bench/bench_speculative.py [--runs 15:gemm,15:triton,31:triton,63:triton]
    python bench/bench_speculative.py --runs "" --profile 16,64   # kernels of a whole step (forward + accept)
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_generate import kernel_table, random_mcore  # noqa: E402

from bench.bench_gemv import graph_time as _graph_time  # noqa: E402


def profile_step(engine, prompt, total: int, frame: int, L: int, device, steps: int = 20) -> None:
    """Kernel table of ``steps`` whole speculative steps (verify forward + accept/reject, one CUDA graph each) replayed
    as the decode replays them, from ~1,000 tokens into the generated part (attending ~6,100-6,600 slots)."""
    from torch.profiler import ProfilerActivity, profile

    from nemo_cosmos_ar.inference import speculative as sp
    from nemo_cosmos_ar.inference.sampling import SamplingConfig

    p0 = prompt.shape[1]
    grid = torch.zeros(total + 2 * L + 2, dtype=torch.long, device=device)
    grid[:p0] = prompt[0].to(device)
    length = total + L + 1
    with torch.inference_mode():
        cache = engine.new_cache(1, length)
        gen = torch.Generator(device=device).manual_seed(0)
        win = sp._Window(engine, grid, total, sp.SpeculativeConfig(window=L), frame, SamplingConfig(), gen)
        start = min(p0 + 1000, (p0 + total) // 2)  # the prompt, then random tokens as if accepted
        grid[p0:start] = torch.randint(0, engine.vocab_size, (start - p0,), device=device)
        stepper = sp._Steps(win, cache, start, length)
        engine.prefill(grid[None, :start], cache)
        win.start(start)
        for _ in range(8):
            stepper(int(win.n) + L + 1)
        torch.cuda.synchronize()
        n0 = int(win.n)
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(steps):  # the window may advance by up to L + 1 a step: the bound the decode would use
                stepper(int(win.n) + L + 1)
            torch.cuda.synchronize()
        n1 = int(win.n)
    kernel_table(prof, steps, print, f"the speculative step at L = {L} ({(n1 - n0) / steps:.2f} tokens a step)", "step")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--runs",
        default="15:triton,31:triton,63:triton",
        help="L:attention per decode: the verify attention (gemm: two GEMMs per KV group; triton: verify_kernel)",
    )
    ap.add_argument("--rates", default="2,3,4,6,8,13.6", help="tokens per forward to project the AR stage at")
    ap.add_argument("--profile", default="", help="L,...: kernel table of 20 replayed whole steps per window L")
    args = ap.parse_args()
    from nemo_cosmos_ar.inference import coupled_kernel, speculative
    from nemo_cosmos_ar.inference import engine as en
    from nemo_cosmos_ar.inference import generator as gen
    from nemo_cosmos_ar.inference.sampling import SamplingConfig, exponential_draw, sampling_probs
    from nemo_cosmos_ar.model.presets import get_preset

    device = en.init_parallel(1, torch.device("cuda"))
    cfg = get_preset("4b").with_latent_shape((5, 40, 64))
    engine = en.McoreEngine(random_mcore(cfg, 1, device, torch.bfloat16), cfg)
    en.configure_decode(engine)  # generate's defaults: fused step, Triton gemv + attention, PDL
    total, frame = cfg.seq_length, 40 * 64
    prompt = torch.randint(0, cfg.vocab_size, (1, 2 * frame), generator=torch.Generator().manual_seed(0))
    new = total - 2 * frame

    def run(opts, length=total, seed=0, sampling=None):
        sampling = sampling or SamplingConfig()
        g = torch.Generator(device=device).manual_seed(seed)
        return gen.generate_tokens(engine, prompt, length, sampling, g, options=opts)

    run(gen.DecodeOptions(), 2 * frame + 64)  # compile + capture once
    _, base = run(gen.DecodeOptions())
    step_ms = 1e3 * base.decode_s / max(base.forwards, 1)
    print(
        f"one-token decoder (generate's default, graphs): {base.decode_s:.2f} s for {new} tokens, "
        f"{base.tokens_per_s:.1f} tokens/s, {step_ms:.3f} ms a step"
    )
    for L in [int(x) for x in args.profile.split(",") if x]:
        profile_step(engine, prompt, total, frame, L, device)
    runs = [(int(r.split(":")[0]), r.split(":")[1]) for r in args.runs.split(",") if r]
    rates = [float(r) for r in args.rates.split(",")]
    rows = []
    sampling = SamplingConfig()
    for L, attention in runs:
        engine.decode_attention = attention
        # the forward alone, at the prompt's end, in a graph; the accept/reject alone
        m = L + 1
        cache = engine.new_cache(1, total + L + 1)
        with torch.inference_mode():
            engine.prefill(prompt.to(device), cache)
            toks = torch.randint(0, cfg.vocab_size, (1, m), device=device)
            pos = torch.tensor([2 * frame], device=device)
            attend = 2 * frame + 512  # a bucket, as the decode's graphs attend
            alone_ms = 1e3 * _graph_time(lambda i, a=(toks, pos, cache, attend): engine.verify(*a), 1)
            logits = engine.verify(toks, pos, cache, attend)
            q = sampling_probs(logits[:L], sampling)
            drafts = toks[0, 1:]

            q_next = torch.empty_like(q)
            src = torch.arange(1, L + 1, device=device).clamp(max=L)
            carried = torch.arange(L, device=device) < L // 2

            def accept_once(i, logits=logits, q=q, drafts=drafts, L=L, q_next=q_next, src=src, carried=carried):
                """The step's work after the forward, as ``_Window.advance`` does it on CUDA (coupled_kernel)."""
                u = torch.rand(L, device=device)
                e = exponential_draw(L + 1, logits.shape[1], None, device)
                p = sampling_probs(logits, sampling)  # the model's bf16 logits, as the decode passes them
                raced = coupled_kernel.residual_race(p, q, e)
                kept = speculative.keeps(p[:L], q, drafts, u)
                coupled_kernel.carry_proposals(q_next, p, src, carried, drafts, False)  # q stays for the replays
                return torch.where(kept, drafts, raced[:L]), kept

            sample_ms = 1e3 * _graph_time(accept_once, 1)
        cache = None  # freed before the decodes
        _, st = run(gen.DecodeOptions(speculative=L), sampling=sampling)  # compile + capture outside decode_s
        per_fwd = 1e3 * st.decode_s / st.forwards
        rows.append((L, attention, st, per_fwd, alone_ms, sample_ms))
        print(
            f"L={L} {attention}: {st.decode_s:.2f} s, {st.forwards} forwards, "
            f"{st.generated_tokens / st.forwards:.2f} tokens/forward (random weights), {st.tokens_per_s:.1f} tokens/s, "
            f"{per_fwd:.2f} ms a step in the decode; the forward alone in a graph {alone_ms:.2f} ms; the "
            f"accept/reject alone {sample_ms:.3f} ms",
            flush=True,
        )
    engine.decode_attention = "triton"
    print()
    print(
        "| L | verify attention | forwards | tokens/forward (random weights) | decode s | tokens/s | ms a step in "
        "the decode | the forward alone in a graph ms | accept/reject alone ms | a step in one-token steps |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for L, name, st, per_fwd, alone_ms, sample_ms in rows:
        print(
            f"| {L} | {name} | {st.forwards} | {st.generated_tokens / st.forwards:.2f} | {st.decode_s:.2f} | "
            f"{st.tokens_per_s:.1f} | {per_fwd:.2f} | {alone_ms:.2f} | {sample_ms:.3f} | {per_fwd / step_ms:.2f} |"
        )
    print()
    print(
        f"AR stage for {new} tokens, seconds, at R tokens per forward (the step's cost in the decode above); "
        f"one-token decoder: {base.decode_s:.1f} s"
    )
    print("| L | verify attention | " + " | ".join(f"R = {r:g}" for r in rates) + " |")
    print("|---:|---|" + "---:|" * len(rates))
    for L, name, _st, per_fwd, *_ in rows:
        cells = [f"{new / r * per_fwd / 1e3:.1f}" if r <= L + 1 else "-" for r in rates]
        print(f"| {L} | {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
