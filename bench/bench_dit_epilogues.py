"""The 7B DiT's GELU and gated residuals fused into its GEMMs' epilogues with QuACK (issue 13): a measurement.

Why: the bf16 DiT's non-GEMM, non-attention work is ~6% of a forward (BENCHMARKS.md, issue 13: 42 ms of 767 ms at
batch 1); the biggest pieces are passes over a GEMM's output: the MLP's exact GELU over the [tokens, 16,384]
activation (~0.4 ms a block at 20,480 tokens) and the three ``x + gate * y`` after the attention outputs and the
MLP. A GEMM can apply them on its way out. cuBLAS has no exact-GELU epilogue (its GELU is the tanh approximation), but
QuACK (quack-kernels, installed with FlashAttention-4) writes Hopper GEMMs with epilogues given as Python functions.
This times, at the guided step's 40,960 rows (both guidance passes batched):

* the plain products: cuBLAS against QuACK's GEMM at a few tile choices;
* MLP up: cuBLAS + ``F.gelu`` against one QuACK GEMM with an exact-GELU epilogue;
* MLP down and attention out: cuBLAS + ``fused.gate_residual`` (one Triton pass) against QuACK with ``c + gate * acc``;

and the largest difference from the unfused ops. Run where FlashAttention-4's wheels are installed
(``bench/gpu_fa4_install.sh``):

    python bench/bench_dit_epilogues.py
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cuda_timing import burst_ms as timed  # noqa: E402

from nemo_cosmos_ar.diffusion_decoder import fused  # noqa: E402

ROWS, D, HIDDEN = 40960, 4096, 16384


def tflops(m: int, n: int, k: int, ms: float) -> float:
    return 2 * m * n * k / ms / 1e9


def attempt(label: str, fn) -> bool:
    """Run ``fn`` once (the first call compiles); False after printing why it failed (the bench goes on)."""
    t = time.perf_counter()
    try:
        fn()
        torch.cuda.synchronize()
        print(f"  ({label}: first call incl. compile {time.perf_counter() - t:.1f} s)", flush=True)
        return True
    except Exception:  # noqa: BLE001 -- report and go on
        print(f"  {label} FAILED:\n" + "".join(traceback.format_exc().splitlines(True)[-6:]), flush=True)
        return False


def epilogues():
    """The three epilogue functions (QuACK is imported only here: it needs the GPU image's FA4 wheels)."""
    # the module, not the function: QuACK fingerprints what an epilogue references, and a module is keyed by its
    # name (a function outside site-packages would be traced into, and gelu_erf's wrapper holds a ContextVar)
    import quack.activation as qa
    from quack.epilogue.frontend import gemm_epilogue

    @gemm_epilogue()
    def plain_epi(acc):
        return {"D": acc}

    @gemm_epilogue()
    def gelu_epi(acc):
        return {"D": qa.gelu_erf(acc)}

    @gemm_epilogue()
    def gate_epi(acc, c, gate):
        return {"D": c + gate * acc}

    return plain_epi, gelu_epi, gate_epi


TILES = [  # tile_M, tile_N, cluster_M, cluster_N, pingpong
    (128, 256, 2, 1, False),
    (128, 256, 1, 2, False),
    (128, 128, 2, 1, True),
    (128, 192, 2, 1, False),
]


def rand(gen, *shape, std=1.0):
    return (torch.randn(*shape, device="cuda", generator=gen) * std).bfloat16()


def plain_row(gen, plain_epi, name: str, n: int, k: int) -> dict | None:
    """One table row: cuBLAS and QuACK at each tile; returns the best tile's keywords."""
    x, w = rand(gen, ROWS, k), rand(gen, n, k, std=0.02)
    ref = F.linear(x, w)
    ms = timed(lambda: F.linear(x, w))
    cells, best = [f"{ms:.3f} ({tflops(ROWS, n, k, ms):.0f})"], None
    out = torch.empty(ROWS, n, device="cuda", dtype=torch.bfloat16)
    for tm, tn, cm, cn, pp in TILES:
        kw = dict(tile_M=tm, tile_N=tn, cluster_M=cm, cluster_N=cn, pingpong=pp)

        def run(kw=kw):
            return plain_epi.gemm(x, w, out, epi_args={}, **kw)

        if attempt(f"{name} {kw}", run) is False:
            cells.append("failed")
            continue
        ms = timed(run)
        diff = (out.float() - ref.float()).abs().max().item()
        cells.append(f"{ms:.3f} ({tflops(ROWS, n, k, ms):.0f}; diff {diff:.1e})")
        if best is None or ms < best[0]:
            best = (ms, kw)
    print(f"| {name} [{n}, {k}] | " + " | ".join(cells) + " |", flush=True)
    return None if best is None else best[1]


def gelu_case(gen, gelu_epi, kw: dict) -> None:
    x, w = rand(gen, ROWS, D), rand(gen, HIDDEN, D, std=0.02)
    h = F.linear(x, w)
    ref = F.gelu(h)
    both, gemm, act = timed(lambda: F.gelu(F.linear(x, w))), timed(lambda: F.linear(x, w)), timed(lambda: F.gelu(h))
    print(f"mlp up + GELU: cuBLAS + F.gelu {both:.3f} ms (GEMM {gemm:.3f}, GELU {act:.3f})", flush=True)
    out = torch.empty(ROWS, HIDDEN, device="cuda", dtype=torch.bfloat16)

    def run():
        return gelu_epi.gemm(x, w, out, epi_args={}, **kw)

    if attempt("gelu epilogue", run) is not False:
        diff = (out.float() - ref.float()).abs()
        print(f"  QuACK + GELU epilogue {timed(run):.3f} ms; max diff {diff.max().item():.2e}, values differing "
              f"{(diff > 0).float().mean().item():.2%}", flush=True)  # fmt: skip


def gate_case(gen, gate_epi, name: str, n: int, k: int, kw: dict) -> None:
    h, w = rand(gen, ROWS, k), rand(gen, n, k, std=0.02)
    res, gate = rand(gen, 2, ROWS // 2, n), rand(gen, 2, 1, n, std=0.5)
    gate[1] = gate[0]  # one timestep for both guidance passes: one gate row

    def eager():
        return fused.gate_residual(res, F.linear(h, w).view_as(res), gate)

    ref = eager().view(ROWS, n)
    print(f"{name} + gate residual: cuBLAS + Triton {timed(eager):.3f} ms", flush=True)
    out = torch.empty(ROWS, n, device="cuda", dtype=torch.bfloat16)

    def run():
        return gate_epi.gemm(h, w, out, res.view(ROWS, n), epi_args={"gate": gate[0].view(1, n)}, **kw)

    if attempt(f"{name} gate epilogue", run) is not False:
        diff = (out.float() - ref.float()).abs()
        print(f"  QuACK + gate epilogue {timed(run):.3f} ms; max diff {diff.max().item():.2e}, values differing "
              f"{(diff > 0).float().mean().item():.2%}", flush=True)  # fmt: skip


def main() -> None:
    plain_epi, gelu_epi, gate_epi = epilogues()
    gen = torch.Generator(device="cuda").manual_seed(0)
    print(f"| product [N, K] at M = {ROWS} | cuBLAS ms (TFLOP/s) | " + " | ".join(f"QuACK {t}" for t in TILES) + " |")
    best = {}
    for name, (n, k) in {"attn q/k/v/out": (D, D), "mlp up": (HIDDEN, D), "mlp down": (D, HIDDEN)}.items():
        best[name] = plain_row(gen, plain_epi, name, n, k) or {}
        torch.cuda.empty_cache()
    print("\nfused epilogues (the best tile above for the shape):")
    gelu_case(gen, gelu_epi, best["mlp up"])
    gate_case(gen, gate_epi, "mlp down", D, HIDDEN, best["mlp down"])
    gate_case(gen, gate_epi, "attn out", D, D, best["attn q/k/v/out"])


if __name__ == "__main__":
    main()
