"""The 7B DiT's GELU and gated residuals done by the cuBLAS products before them (issue 13): a measurement.

``diffusion_decoder/epilogues.py`` computes the MLP's GELU in cuBLASLt's epilogue (``torch._addmm_activation``) and
each ``x + gate * y`` as one product with the gate folded into a copy of the weight and x as the C operand
(``x.addmm_(y_in, (gate W).T)``). This times, at the guided step's 40,960 rows (both guidance passes batched; the
cross-attention's at the conditional pass's 20,480):

* each product with and without its epilogue (the separate passes: ``F.gelu``, ``fused.gate_residual``);
* a 2-block DiT forward at the 7B widths and the real 20,480 tokens a row, guided (2 rows, one noise level, the
  unconditional row's cross-attention skipped), epilogues off / on interleaved, ms a forward and the predicted
  seconds of a 15-step guided sampling (28 blocks);
* the error of each against fp32.

    python bench/bench_dit_blas_epilogues.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cuda_timing import burst_ms  # noqa: E402

from nemo_cosmos_ar.diffusion_decoder import epilogues, fused  # noqa: E402
from nemo_cosmos_ar.diffusion_decoder.config import get_dit_config  # noqa: E402
from nemo_cosmos_ar.diffusion_decoder.network import DiffusionDecoderDiT  # noqa: E402

D, HIDDEN = 4096, 16384


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def products(rounds: int) -> None:
    g = torch.Generator(device="cuda").manual_seed(0)

    def rand(*shape, scale=1.0):
        return torch.randn(*shape, device="cuda", generator=g, dtype=torch.bfloat16) * scale

    print("| product (rows) | separate passes ms | with the epilogue ms | gain ms | rel L2 vs fp32: separate / fused |")
    print("|---|---:|---:|---:|---|")
    # MLP up + GELU
    rows = 40960
    h, w1 = rand(2, rows // 2, D), rand(HIDDEN, D, scale=D**-0.5)
    sep = lambda: F.gelu(F.linear(h, w1))  # noqa: E731
    fus = lambda: epilogues.linear_gelu(h, w1)  # noqa: E731
    ref = F.gelu(h[:1, :1024].float() @ w1.float().T)
    errs = (rel(sep()[:1, :1024], ref), rel(fus()[:1, :1024], ref))
    times = [(burst_ms(sep, reps=10), burst_ms(fus, reps=10)) for _ in range(rounds)]
    a, b = statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)
    print(
        f"| MLP up + GELU [{HIDDEN}, {D}] ({rows}) | {a:.3f} | {b:.3f} | {a - b:+.3f} | {errs[0]:.2e} / {errs[1]:.2e} |"
    )
    # the three gated residuals
    for name, n_in, rows in (("MLP down", HIDDEN, 40960), ("self out", D, 40960), ("cross out", D, 20480)):
        gated_row(name, n_in, rows, rounds, rand)


def gated_row(name: str, n_in: int, rows: int, rounds: int, rand) -> None:
    b = rows // 20480
    y_in, w, x0 = rand(b, 20480, n_in), rand(D, n_in, scale=n_in**-0.5), rand(b, 20480, D)
    gate = rand(1, 1, D, scale=0.1).expand(b, 1, D)
    x = x0.clone()

    def sep():
        return fused.gate_residual(x0, F.linear(y_in, w), gate)

    def fus():  # writes into x, which grows from call to call: for the timing only
        return epilogues.linear_gate_residual(y_in, w, x, gate)

    ref = x0[:, :512].float() + gate.float() * (y_in[:, :512].float() @ w.float().T)
    e_sep = rel(sep()[:, :512], ref)
    e_fus = rel(epilogues.linear_gate_residual(y_in, w, x0.clone(), gate)[:, :512], ref)
    times = [(burst_ms(sep, reps=10), burst_ms(fus, reps=10)) for _ in range(rounds)]
    a, c = statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)
    print(f"| {name} + gated residual [{D}, {n_in}] ({rows}) | {a:.3f} | {c:.3f} | {a - c:+.3f} | "
          f"{e_sep:.2e} / {e_fus:.2e} |")  # fmt: skip


def forward(rounds: int) -> None:
    cfg = dataclasses.replace(get_dit_config("7b"), num_blocks=2)
    torch.manual_seed(0)
    with torch.device("cuda"):
        ref = DiffusionDecoderDiT(cfg).eval().requires_grad_(False)
        with torch.no_grad():
            for p in ref.parameters():
                if p.ndim == 1:
                    p.add_(0.1 * torch.randn_like(p))
    net = copy.deepcopy(ref).bfloat16()
    g = torch.Generator(device="cuda").manual_seed(0)
    # the real chunk: 8 latent frames of 80 x 128 -> 20,480 tokens a row after the 2 x 2 patches
    x = torch.randn(2, cfg.latent_channels, 8, 80, 128, device="cuda", generator=g)
    ctx = torch.randn(2, 512, cfg.context_dim, device="cuda", generator=g)
    tok = torch.randint(0, cfg.token_vocab_size, (2, 8, 40, 64), device="cuda", generator=g)
    args = lambda dt: (x.to(dt), torch.tensor(1.0, device="cuda", dtype=dt), ctx.to(dt), tok, 24.0)  # noqa: E731
    with torch.no_grad():
        exact = ref(*args(torch.float32), context_rows=1)
        del ref
        torch.cuda.empty_cache()
        bf = args(torch.bfloat16)
        outs, times = {}, {"off": [], "auto": []}
        for mode in ("off", "auto"):
            net.set_epilogues(mode)
            outs[mode] = net(*bf, context_rows=1)
        for _ in range(rounds):
            for mode in ("off", "auto"):
                net.set_epilogues(mode)
                times[mode].append(burst_ms(lambda: net(*bf, context_rows=1), reps=5))
    off, on = statistics.median(times["off"]), statistics.median(times["auto"])
    print(f"\n2-block forward, 2 x 20,480 tokens (guided), {rounds} interleaved rounds of 5, ms a forward:")
    print("| epilogues | ms | per block ms | 28 blocks x 15 steps s | rel L2 vs fp32 |")
    print("|---|---:|---:|---:|---:|")
    for mode, ms in (("off", off), ("auto", on)):
        print(f"| {mode} | {ms:.2f} | {ms / 2:.2f} | {ms / 2 * 28 * 15 / 1000:.2f} | {rel(outs[mode], exact):.2e} |")
    print(
        "all rounds, off:",
        " ".join(f"{t:.2f}" for t in times["off"]),
        "auto:",
        " ".join(f"{t:.2f}" for t in times["auto"]),
    )
    print(f"auto vs off rel L2 {rel(outs['auto'], outs['off']):.2e}; predicted DiT gain "
          f"{(off - on) / 2 * 28 * 15 / 1000:.2f} s")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", choices=("products", "forward"), default=None)
    a = ap.parse_args()
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}")
    if a.only != "forward":
        products(a.rounds)
    if a.only != "products":
        forward(a.rounds)


if __name__ == "__main__":
    main()
