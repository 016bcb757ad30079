"""Decode speed of ``cosmos-ar generate``, change by change, with random weights at the real shapes.

Each *configuration* adds one change to the one before; all run in one process on the same weights and prompts, so
the table shows what each change gave. Per configuration and batch size: prefill time, decode tokens/s (all rows),
total autoregressive seconds, peak memory, and an exactness check (max |logit - teacher-forced logit| over the first
``--check`` steps; for ``+sample-in-graph``, whether its tokens equal the same configuration sampling on the host).

    reference      the first release: plain-PyTorch model (separate Q/K/V, gate/up), masked SDPA over the whole
                   cache (layout [B, L, KV, hd]), host-side sampling, one CUDA graph per step
    mcore          the Megatron-Core model that trains: fused QKV and gate/up weights, cache [B, KV, L, hd]
    +bucket        attention over the filled cache only, rounded up to --bucket slots (one graph per length)
    +sample-in-graph  sampler, token write and position increment inside the captured step (no host work)
    +gemm-attn     decode attention as two batched GEMMs per KV group (SDPA with a mask and GQA takes the math
                   path, which copies K/V once per query head)
    +fused-rope    the decode step's RoPE as one compiled kernel per tensor (torch.compile; fp32 inside)
    +flex-attn     SDPA replaced by flex_attention's decoding kernel (split across the cache, GQA, position mask
                   on the device); the eager RoPE and in-graph sampling as +sample-in-graph
    +triton-attn   SDPA replaced by a hand-written Triton split-K flash-decoding kernel (inference/decode_kernel.py:
                   GQA rows in one tl.dot, slots past the position never read, one combine kernel); as +flex-attn
    +fused-step    +triton-attn with the norms, RoPE, residual adds and SwiGLU fused between the GEMMs
                   (inference/fused_step.py, torch.compile on CUDA)
    +fused-step-sdpa  the fused step with SDPA attention (what the fused step gives without the Triton kernel)
    +fused-write   +fused-step with the Triton kernel writing the step's K/V into the cache itself (no index_copy_)
    +gemv          +fused-step with the projections (QKV, out, MLP, output layer) as a Triton matrix-vector kernel
                   at batch 1 (inference/gemv.py; cuBLAS at larger batches)
    +gemv-write    +gemv and +fused-write together
    +gemv-fused    +gemv with the RMSNorms, SwiGLU and residual adds folded into the kernel (4 products and the
                   QK-norm/RoPE kernel per layer; fused_step.run_layers_gemv)
    +glu           +gemv with fc1 and SwiGLU in one kernel (gemv(..., glu=True): a gate row and its up row per
                   program, silu(gate) * up in the epilogue)
    +pdl           +gemv with programmatic dependent launch for every Triton kernel of the layers (products,
                   attention, inductor's pieces: each starts while the one before drains) and the attention kernel
                   writing the step's K/V (no index_copy_ between them); batch 1, TP=1 (generate's default there)
    +int8-cuda     +int8 with the int8 products by the hand-written CUDA kernel (inference/gemv_cuda.py,
                   --decode-int8-kernel cuda) instead of the Triton one
    +int8-fused    +int8-cuda with the QKV's RMSNorm, the residual adds and the SwiGLU folded into the CUDA kernel
                   (inference/fused_int8.py, --decode-int8-kernel fused, generate's int8 default at TP=1): 8 kernels
                   a layer instead of 10
    +int8-nopdl    +int8 without programmatic dependent launch (for profiles whose kernels must not overlap)
    +int8          +pdl with weight-only int8 projections (inference/quant.py, --decode-weights int8: one scale per
                   output row, half the bytes per token; batch 1 only). Its exactness: max |dlogit| against the
                   teacher-forced forward of the bf16 model (the quantization's effect), of the dequantized model
                   (the kernel's exactness), and the share of greedy tokens equal to the bf16 model's
    +symm          +int8 with the TP all-reduces of the step by torch's symmetric-memory one-shot kernel
                   (inference/symm_reduce.py, --decode-reduce symm) instead of NCCL; TP > 1 only
    +symm-pdl      +symm with programmatic dependent launch at TP > 1 too (McoreEngine.pdl_tp)
    +topk-nucleus  top-p from a checked top-k pre-filter instead of the full sort (host-side: it syncs to check)

    python bench/bench_generate.py                                # 4B, 2-frame prompt (5,120 -> 7,680), batch 1,4,8
    python bench/bench_generate.py --batch 1 --max-new-tokens 2048
    torchrun --nproc-per-node 2 bench/bench_generate.py --tp 2 --model 12b --configs mcore,+bucket,+sample-in-graph
    python bench/bench_generate.py --batch 1 --configs +pdl,+int8  # bf16 against int8 weights (H200)
    python bench/bench_generate.py --smoke                        # CPU, tiny model (checks the script)

TP=1 vs TP=2 agreement: ``--greedy --save-tokens a.pt`` on one GPU, then the same under torchrun with
``--compare a.pt``; weights are drawn per full tensor from fixed seeds, so every TP size holds the same model.
"""

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# The decode attention of the configurations that change it (the others use SDPA).
ATTENTION = {
    "+gemm-attn": "gemm",
    "+fused-rope": "gemm",
    "+flex-attn": "flex",
    "+triton-attn": "triton",
    "+fused-step": "triton",
    "+fused-step-sdpa": "sdpa",
    "+fused-write": "triton",
    "+gemv": "triton",
    "+gemv-write": "triton",
    "+gemv-fused": "triton",
    "+glu": "triton",
    "+pdl": "triton",
    "+int8": "triton",
    "+int8-nopdl": "triton",
    "+int8-cuda": "triton",
    "+int8-fused": "triton",
    "+symm": "triton",
    "+symm-pdl": "triton",
}
CONFIGS = (
    "reference",
    "mcore",
    "+bucket",
    "+sample-in-graph",
    "+gemm-attn",
    "+fused-rope",
    "+flex-attn",
    "+triton-attn",
    "+fused-step",
    "+fused-step-sdpa",
    "+fused-write",
    "+gemv",
    "+gemv-write",
    "+gemv-fused",
    "+glu",
    "+pdl",
    "+int8",
    "+int8-nopdl",
    "+int8-cuda",
    "+int8-fused",
    "+symm",
    "+symm-pdl",
    "+topk-nucleus",
)
GEMV = CONFIGS[CONFIGS.index("+gemv") : CONFIGS.index("+topk-nucleus")]  # the batch-1 matrix-vector ones
INT8 = CONFIGS[CONFIGS.index("+int8") : CONFIGS.index("+topk-nucleus")]  # weight-only int8, batch 1
_REDUCER: list = []  # the symmetric-memory reducer, built once (collectively) by the first +symm configuration
_BF16: dict = {}  # the decode projections' bf16 weights (host copies) while +int8 has them quantized


def random_mcore(cfg, tp: int, device, dtype):
    """Megatron model with random weights drawn per *full* tensor from a seed of its name, then cut for this rank,
    so TP=1 and TP=2 hold the same model."""
    from megatron.core import parallel_state

    from nemo_cosmos_ar.inference import engine as en
    from nemo_cosmos_ar.model import checkpoint_mapping as cm

    model = en.build_model(cfg, tp, device, dtype)
    rank = parallel_state.get_tensor_model_parallel_rank()
    with torch.no_grad():
        for i, (name, p) in enumerate(model.named_parameters()):
            shape = list(p.shape)
            if name.endswith(("linear_qkv.weight", "word_embeddings.weight", "output_layer.weight", "fc1.weight")):
                shape[0] *= tp
            elif name.endswith(("linear_proj.weight", "linear_fc2.weight")):
                shape[1] *= tp
            g = torch.Generator(device=device).manual_seed(1000 + i)
            if p.ndim == 1:
                full = 1.0 + 0.1 * torch.randn(shape, generator=g, device=device, dtype=dtype)
            else:
                std = 1.0 if "word_embeddings" in name else 0.02
                full = std * torch.randn(shape, generator=g, device=device, dtype=dtype)
            p.copy_(cm.mcore_tp_slice(name, full, tp, rank))
            del full
    return model


def reference_from(engine, cfg, device, dtype):
    """The plain-PyTorch model holding the same weights as the (TP=1) Megatron engine."""
    from nemo_cosmos_ar.inference.checkpoints import build_reference
    from nemo_cosmos_ar.inference.generator import ReferenceEngine
    from nemo_cosmos_ar.model import checkpoint_mapping as cm

    state = dict(engine.model.state_dict())
    spec = "te" if any(k.endswith("linear_qkv.layer_norm_weight") for k in state) else "local"
    native = cm.mcore_to_native({k: v for k, v in state.items() if "_extra_state" not in k}, cfg, spec)
    return ReferenceEngine(build_reference(cfg, native, device, dtype))


def set_config(engine, name: str) -> None:
    """The engine's decode switches for configuration ``name``."""
    engine.decode_attention = ATTENTION.get(name, "sdpa")
    engine.fused_rope = name == "+fused-rope"
    engine.fused_step = name.startswith("+fused-") or name in GEMV
    engine.fused_cache_write = name in ("+fused-write", "+gemv-write")
    engine.gemv = name in GEMV
    engine.gemv_fuse = name == "+gemv-fused"
    engine.gemv_glu = name == "+glu"
    engine.pdl = name in ("+pdl", *INT8) and name != "+int8-nopdl"
    engine.pdl_tp = name == "+symm-pdl"
    engine.int8_kernel = {"+int8-cuda": "cuda", "+int8-fused": "fused"}.get(name, "triton")
    set_weights(engine, "int8" if name in INT8 else "bf16")
    if name == "+int8-fused":
        from nemo_cosmos_ar.inference import fused_int8

        fused_int8.prepare(engine.model, drop_plain=False)
    engine.reducer = None
    if name in ("+symm", "+symm-pdl") and engine.tp > 1:
        if not _REDUCER:
            from megatron.core import parallel_state

            from nemo_cosmos_ar.inference import symm_reduce

            group = parallel_state.get_tensor_model_parallel_group()
            _REDUCER.append(symm_reduce.make_reducer("symm", True, group, engine))
        engine.reducer = _REDUCER[0]


def set_weights(engine, kind: str) -> None:
    """The decode projections as bf16 (the drawn weights) or quantized to int8 (``quant.quantize_model``: int8
    copies beside dequantized weights); the bf16 weights are kept on the host meanwhile, so configurations can
    alternate on one engine."""
    from nemo_cosmos_ar.inference import quant

    mods = quant.decode_projections(engine.model)
    with torch.no_grad():
        if kind == "int8" and not quant.is_quantized(engine.model):
            if not _BF16:
                _BF16.update({n: m.weight.detach().to("cpu", copy=True) for n, m in mods})
            quant.quantize_model(engine.model)
        elif kind == "bf16" and quant.is_quantized(engine.model):
            for n, m in mods:
                m.weight.copy_(_BF16[n])
                del m.weight_int8, m.weight_scale
                if hasattr(m, "weight_int8_glu"):  # fused_int8.prepare's interleaved fc1 copy
                    del m.weight_int8_glu, m.weight_scale_glu
    engine.weights = kind


def options(name: str, bucket: int, cuda: bool):
    from nemo_cosmos_ar.inference.generator import DecodeOptions

    i = CONFIGS.index(name)
    mode = "graph" if cuda else "static"
    in_graph = 3 <= i < CONFIGS.index("+topk-nucleus")  # +sample-in-graph up to +int8
    return DecodeOptions(step_mode=mode, bucket=bucket if i >= 2 else 0, sample_in_graph=in_graph)


def max_logit_error(engine, prompt, steps, sampling, opts, device, tokens: bool = False):
    """Decode ``steps`` tokens and compare each logit vector with a teacher-forced forward over the result
    (``tokens``: also return the decoded tokens and their logits)."""
    from nemo_cosmos_ar.inference.generator import generate_tokens

    seen = {}
    out, _ = generate_tokens(
        engine,
        prompt,
        prompt.shape[1] + steps,
        sampling,
        torch.Generator(device=device).manual_seed(0),
        options=opts,
        on_logits=lambda p, lg: seen.__setitem__(p, lg.float().clone()),
    )
    full = engine.teacher_forced(out).float()
    p0 = prompt.shape[1]
    err = max((seen[p] - full[:, p - 1]).abs().max().item() for p in range(p0, p0 + steps))
    return (err, out, seen) if tokens else err


def int8_exactness(engine, prompt, steps, sampling, opts, device) -> str:
    """+int8's exactness column: the int8 decode's logits against the teacher-forced forward of the bf16 model and
    of the dequantized one on the same tokens, and greedy tokens (``steps`` of them) equal to the bf16 model's."""
    import dataclasses as dc

    from nemo_cosmos_ar.inference.generator import generate_tokens

    err_q, out, seen = max_logit_error(engine, prompt, steps, sampling, opts, device, tokens=True)
    set_weights(engine, "bf16")
    full = engine.teacher_forced(out).float()
    p0 = prompt.shape[1]
    err_b = max((seen[p] - full[:, p - 1]).abs().max().item() for p in range(p0, p0 + steps))
    greedy = dc.replace(sampling, temperature=0.0)
    kernel = engine.int8_kernel  # "fused" needs int8 weights: the bf16 model runs the unfused products
    engine.int8_kernel = "cuda" if kernel == "fused" else kernel
    ref, _ = generate_tokens(engine, prompt, p0 + steps, greedy, options=opts)  # bf16 weights, the +int8 switches
    set_weights(engine, "int8")
    if kernel == "fused":
        from nemo_cosmos_ar.inference import fused_int8

        fused_int8.prepare(engine.model, drop_plain=False)
    engine.int8_kernel = kernel
    got, _ = generate_tokens(engine, prompt, p0 + steps, greedy, options=opts)
    same = (got[:, p0:] == ref[:, p0:]).float().mean().item()
    return f"max abs dlogit vs bf16 {err_b:.3g}, vs dequantized {err_q:.3g}; greedy tokens = bf16: {same:.3f}"


def profile_steps(engine, prompt, steps: int, say, label: str) -> None:
    """Kernel table of ``steps`` eager decode steps after the prompt (no CUDA graph, so each kernel is visible):
    per kernel name its count per step and device time per step, largest first."""
    from torch.profiler import ProfilerActivity, profile

    cuda = engine.device.type == "cuda"
    cache = engine.new_cache(1, prompt.shape[1] + steps + 1)
    tokens = prompt.to(engine.device)
    with torch.inference_mode():
        engine.prefill(tokens, cache)
        tok = tokens[:, -1:]
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=acts) as prof:
            for i in range(steps):
                pos = prompt.shape[1] + i
                engine.step(tok, torch.tensor([pos], device=engine.device), cache, pos + 1)
            if cuda:
                torch.cuda.synchronize()
    rows = {}
    for ev in prof.key_averages():
        t = getattr(ev, "device_time_total", 0) if cuda else ev.self_cpu_time_total
        if cuda and getattr(ev, "device_type", None) is not None and "CUDA" not in str(ev.device_type):
            continue
        if t > 0 and (
            not cuda
            or ev.key.startswith(
                (
                    "void",
                    "ampere",
                    "sm90",
                    "cutlass",
                    "at::",
                    "triton",
                    "nvjet",
                    "cublas",
                    "gemv",
                    "gemm",
                    "Memcpy",
                    "Memset",
                    "std::",
                )
            )
            or getattr(ev, "self_device_time_total", 0) > 0
        ):
            rows[ev.key] = (ev.count / steps, t / steps)
    total = sum(t for _, t in rows.values())
    say(
        f"\nprofile of {label}: {steps} eager steps, {sum(c for c, _ in rows.values()):.0f} kernels and "
        f"{total / 1000:.3f} ms device time per step\n"
    )
    say("| kernel | per step | us per step | share |")
    say("|---|---|---|---|")
    for key, (c, t) in sorted(rows.items(), key=lambda kv: -kv[1][1])[:18]:
        say(f"| {key[:90]} | {c:.0f} | {t:.1f} | {100 * t / max(total, 1e-9):.1f}% |")


def profile_graph(engine, prompt, steps: int, say, label: str, sampling, bucket: int) -> None:
    """Kernel timeline of ``steps`` replays of the captured decode step (sampling in the graph), as generation runs
    it: per token the replay's span, the kernels' summed time, the idle gaps between kernels, the kernel count and
    the largest kernels. With programmatic dependent launch kernels overlap, so the sum may exceed the span."""
    from torch.profiler import ProfilerActivity, profile

    from nemo_cosmos_ar.inference.generator import DecodeOptions, _Decoder

    device, p0 = engine.device, prompt.shape[1]
    total = p0 + steps + 16
    cache = engine.new_cache(1, total)
    out = torch.zeros(1, total + 1, dtype=torch.long, device=device)
    out[:, :p0] = prompt.to(device)
    opts = DecodeOptions(step_mode="graph", bucket=bucket, sample_in_graph=True)
    gen = torch.Generator(device=device).manual_seed(0)
    with torch.inference_mode():
        dec = _Decoder(engine, cache, out, p0, total, sampling, gen, opts, True, True)
        dec.logits.copy_(engine.prefill(out[:, :p0], cache))
        dec.pos.fill_(p0)
        for pos in range(p0, p0 + 8):
            dec.run(pos)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for pos in range(p0 + 8, p0 + 8 + steps):
                dec.run(pos)
            torch.cuda.synchronize()
    kernel_table(prof, steps, say, label)


def kernel_table(prof, steps: int, say, label: str, per: str = "token") -> None:
    """Summarise a torch.profiler run over ``steps`` replays of a CUDA graph from its chrome trace: per ``per`` the
    span, the kernels' summed time, the idle gaps and the kernel count, then the kernels by total time."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        prof.export_chrome_trace(f"{tmp}/trace.json")
        trace = json.load(open(f"{tmp}/trace.json"))
    kernels = sorted(
        (e for e in trace.get("traceEvents", []) if e.get("cat") == "kernel" and "dur" in e), key=lambda e: e["ts"]
    )
    if not kernels:
        say(f"\ngraph profile of {label}: no kernel events recorded (graph kernels not traced by this CUPTI)")
        return
    span = kernels[-1]["ts"] + kernels[-1]["dur"] - kernels[0]["ts"]
    busy = sum(e["dur"] for e in kernels)
    gaps, end = 0.0, kernels[0]["ts"]
    for e in kernels:
        gaps += max(0.0, e["ts"] - end)
        end = max(end, e["ts"] + e["dur"])
    by_name: dict[str, list[float]] = {}
    for e in kernels:
        c = by_name.setdefault(e["name"], [0, 0.0])
        c[0] += 1
        c[1] += e["dur"]
    say(
        f"\ngraph profile of {label}: {steps} replays; per {per}: span {span / steps / 1e3:.3f} ms, kernels "
        f"{busy / steps / 1e3:.3f} ms summed, idle gaps {gaps / steps / 1e3:.3f} ms, {len(kernels) / steps:.0f} kernels"
    )
    say(f"| kernel | per {per} | us per {per} | share of summed |")
    say("|---|---|---|---|")
    for name, (c, t) in sorted(by_name.items(), key=lambda kv: -kv[1][1])[:22]:
        say(f"| {name[:90]} | {c / steps:.1f} | {t / steps:.1f} | {100 * t / busy:.1f}% |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="4b")
    ap.add_argument("--grid", default="5x40x64")
    ap.add_argument("--prompt-frames", type=int, default=2, help="latent frames of prompt (1: image, 2: 9-frame video)")
    ap.add_argument("--batch", default="1,4,8", help="batch sizes")
    ap.add_argument("--configs", default=",".join(CONFIGS), help=f"any of {', '.join(CONFIGS)}")
    ap.add_argument("--bucket", type=int, default=1024, help="attention bucket of +bucket and later")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="stop after this many generated tokens")
    ap.add_argument("--top-p", type=float, default=0.8)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--greedy", action="store_true", help="temperature 0")
    ap.add_argument("--check", type=int, default=32, help="steps compared with a teacher-forced forward (0: none)")
    ap.add_argument("--tp", type=int, default=int(os.environ.get("WORLD_SIZE", "1")))
    ap.add_argument("--save-tokens", help="save the last run's tokens (rank 0)")
    ap.add_argument("--compare", help="tokens saved by another run: print where this run's agree with them")
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny model, 24 new tokens")
    ap.add_argument(
        "--profile",
        type=int,
        default=0,
        help="also profile this many eager decode steps per configuration (kernel table, batch 1)",
    )
    ap.add_argument(
        "--graph-profile",
        type=int,
        default=0,
        help="also profile this many CUDA-graph replays per in-graph configuration (timeline: span, gaps, kernels)",
    )
    ap.add_argument(
        "--attention-config",
        help="the Triton decode attention's launch choices 'block_n,waves,warps,stages' (default: decode_kernel's "
        "DEFAULTS), or a file holding them (bench_decode_attention.py --best-out)",
    )
    args = ap.parse_args()
    if args.attention_config:
        from nemo_cosmos_ar.inference import decode_kernel

        text = args.attention_config
        if os.path.isfile(text):
            text = Path(text).read_text().strip()
        bn, waves, warps, stages = text.split(",")
        decode_kernel.DEFAULTS.update(block_n=int(bn), waves=float(waves), num_warps=int(warps), num_stages=int(stages))
    if args.smoke:
        args.model, args.grid, args.max_new_tokens, args.check, args.batch = "tiny", "5x4x6", 24, 8, "1,2"
        args.bucket = 8
        os.environ.setdefault("TRITON_INTERPRET", "1")  # +triton-attn on CPU: Triton's interpreter, if installed

    from nemo_cosmos_ar.inference import engine as en
    from nemo_cosmos_ar.inference.generator import generate_tokens
    from nemo_cosmos_ar.inference.sampling import SamplingConfig
    from nemo_cosmos_ar.model.presets import get_preset

    cuda = torch.cuda.is_available() and not args.smoke
    device = en.init_parallel(args.tp, torch.device("cuda" if cuda else "cpu"))
    rank = int(os.environ.get("RANK", "0"))
    say = print if rank == 0 else (lambda *a, **k: None)
    dtype = torch.bfloat16 if cuda else torch.float32
    grid = tuple(int(x) for x in args.grid.split("x"))
    cfg = get_preset(args.model).with_latent_shape(grid)
    engine = en.McoreEngine(random_mcore(cfg, args.tp, device, dtype), cfg)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    if args.tp > 1 and "reference" in configs:
        configs.remove("reference")  # the plain-PyTorch model has no TP
    ref = reference_from(engine, cfg, device, dtype) if "reference" in configs else None
    hw = grid[1] * grid[2]
    num_prompt = args.prompt_frames * hw
    total = cfg.seq_length if args.max_new_tokens is None else min(cfg.seq_length, num_prompt + args.max_new_tokens)
    temp = 0.0 if args.greedy else args.temperature
    rows, last = [], None
    for batch in (int(b) for b in args.batch.split(",")):
        prompt = torch.randint(0, cfg.vocab_size, (batch, num_prompt), generator=torch.Generator().manual_seed(batch))
        host_tokens = last_in_graph = int8_tokens = None
        for name in configs:
            sampling = SamplingConfig(
                temperature=temp, top_p=args.top_p, nucleus="topk" if name == "+topk-nucleus" else "sort"
            )
            eng = ref if name == "reference" else engine
            if name in INT8 and batch > 1:
                say(f"| {name} | {batch} | skipped: the int8 decode is batch 1 only |")
                continue
            if eng is engine:
                set_config(engine, name)
            opts = options(name, args.bucket, cuda)
            gens = [torch.Generator(device=device).manual_seed(r) for r in range(batch)]
            try:
                generate_tokens(eng, prompt, min(total, num_prompt + 8), sampling, gens, options=opts)  # warm-up
                if cuda:
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats()
                gens = [torch.Generator(device=device).manual_seed(r) for r in range(batch)]
                t = time.perf_counter()
                out, st = generate_tokens(eng, prompt, total, sampling, gens, options=opts)
                wall = time.perf_counter() - t
            except (RuntimeError, ImportError, ValueError) as err:  # e.g. +triton-attn without Triton
                say(f"| {name} | {batch} | failed: {str(err).splitlines()[0][:160]} |")
                continue
            peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
            exact = ""
            if name == "+bucket":
                host_tokens = out
            if name == "+sample-in-graph" and host_tokens is not None:
                same = (out == host_tokens).float().mean().item()
                exact = f"tokens = host sampling: {same:.4f}"
            if name in ("+symm", "+symm-pdl") and int8_tokens is not None:  # the same sums as NCCL's at TP=2
                exact = f"tokens = +int8: {(out == int8_tokens).float().mean().item():.4f}; "
            elif name in ATTENTION and last_in_graph is not None:
                exact = f"tokens = +sample-in-graph: {(out == last_in_graph).float().mean().item():.4f}; "
            if name == "+sample-in-graph":
                last_in_graph = out
            if name == "+int8":
                int8_tokens = out
            if args.check and batch == 1 and name != "+sample-in-graph":
                check = (prompt[:1], args.check, sampling, dataclasses.replace(opts, sample_in_graph=False), device)
                if name in INT8:
                    exact += int8_exactness(eng, *check)
                else:
                    exact += f"max abs dlogit {max_logit_error(eng, *check):.3g}"
            rows.append((name, batch, st.prefill_s, st.tokens_per_s, wall, peak, exact, st.step_mode))
            last = out
    if args.profile:
        prompt = torch.randint(0, cfg.vocab_size, (1, num_prompt), generator=torch.Generator().manual_seed(1))
        for name in [c for c in configs if c in ("mcore", *ATTENTION)]:
            set_config(engine, name)
            profile_steps(engine, prompt, args.profile, say, name)
    if args.graph_profile and cuda:
        prompt = torch.randint(0, cfg.vocab_size, (1, num_prompt), generator=torch.Generator().manual_seed(1))
        sampling = SamplingConfig(temperature=temp, top_p=args.top_p)
        for name in [c for c in configs if c in ATTENTION or c == "+sample-in-graph"]:
            set_config(engine, name)
            profile_graph(engine, prompt, args.graph_profile, say, name, sampling, args.bucket)
    name = torch.cuda.get_device_name() if cuda else "CPU"
    from nemo_cosmos_ar.inference import decode_kernel

    say(f"\nTriton decode attention launch choices: {decode_kernel.DEFAULTS}")
    say(
        f"\n{cfg.name} ({cfg.n_layers} layers, dim {cfg.dim}), grid {args.grid}, {dtype}, {name}, TP={args.tp}, "
        f"prompt {num_prompt:,} tokens, {total - num_prompt:,} new tokens, top-p {args.top_p}, T {temp}\n"
    )
    say("| configuration | batch | prefill s | decode tokens/s (all rows) | AR total s | peak GiB | exactness | mode |")
    say("|---|---|---|---|---|---|---|---|")
    for n, b, pre, tps, wall, peak, exact, mode in rows:
        mem = f"{peak:.1f}" if cuda else "-"
        say(f"| {n} | {b} | {pre:.2f} | {tps:.1f} | {wall:.1f} | {mem} | {exact} | {mode} |")
    if last is not None and rank == 0 and args.save_tokens:
        torch.save(last.cpu(), args.save_tokens)
    if last is not None and args.compare:
        other = torch.load(args.compare, weights_only=True)
        same = (other == last.cpu()).all(0)
        first = int((~same).nonzero()[0]) if not bool(same.all()) else None
        say(
            f"\ntokens vs {args.compare}: {same.float().mean().item():.4f} of positions agree; first difference at "
            f"{first if first is not None else 'none'} (prompt ends at {num_prompt})"
        )


if __name__ == "__main__":
    main()
