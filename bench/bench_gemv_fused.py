"""The CUDA int8 products with the decode step's norms, residual adds and SwiGLU folded in (``gemv_cuda.gemv_int8``'s
``norm`` / ``residual`` / ``glu``, what ``--decode-int8-kernel fused`` runs) against generate's unfused chain.

1. Exactness per 4B shape and fusion: the kernel against ``gemv_cuda.reference`` (max |diff| relative to the largest
   output, share of equal bf16 outputs), and a CUDA graph's replay against the eager call (bit-equal).
2. A block-choice sweep per fused shape (us per product, 16 weight copies in one graph, PDL).
3. A layer without its attention, 16 layers chained in one graph with PDL, us per layer:
   unfused = QKV, attention out, add+norm (inductor, PDL), fc1, SwiGLU (inductor, PDL), fc2, add+norm
   fused   = QKV(norm), attention out(+residual), fc1(norm, glu), fc2(+residual), at the plain kernel's blocks and at
             each shape's best block choice;
   as generate runs it (fused_int8.run_layers) = the same with fc1's norm a kernel of its own, at fused_int8.CONFIGS.

    python bench/bench_gemv_fused.py            # H200
    python bench/bench_gemv_fused.py fc1+glu    # one shape's row only
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_gemv import graph_time  # noqa: E402
from nemo_cosmos_ar.inference import fused_int8 as FI  # noqa: E402
from nemo_cosmos_ar.inference import fused_step as FS  # noqa: E402
from nemo_cosmos_ar.inference import gemv_cuda as GC  # noqa: E402
from nemo_cosmos_ar.inference import quant  # noqa: E402

D, F, V, EPS = 4096, 14336, 64000, 1e-5
SWEEP = [(2, 2, 4, 0), (2, 2, 4, 8), (2, 2, 8, 8), (2, 4, 4, 8), (2, 2, 4, 4), (2, 4, 8, 4), (1, 4, 8, 8), (1, 2, 4, 8)]


def weights(n: int, k: int, copies: int, glu: bool = False):
    out = []
    for _ in range(copies):
        q, s = quant.quantize_rows(torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02)
        out.append(quant.interleave_glu(q, s) if glu else (q, s))
    return out


def main() -> None:
    torch.manual_seed(0)
    dev = "cuda"
    nw = (1 + 0.1 * torch.randn(D, device=dev)).bfloat16()
    r = torch.randn(1, 1, D, device=dev, dtype=torch.bfloat16)
    o = torch.randn(1, 1, D, device=dev, dtype=torch.bfloat16)
    m = torch.randn(1, 1, F, device=dev, dtype=torch.bfloat16) * 0.3
    shapes = {  # name: (n, k, input, fusions, copies)
        "qkv+norm": (6144, D, r, dict(norm=(nw, EPS)), 16),
        "proj+res": (D, D, o, dict(residual=r), 16),
        "fc1+norm+glu": (2 * F, D, r, dict(norm=(nw, EPS), glu=True), 16),
        "fc1+glu": (2 * F, D, r, dict(glu=True), 16),
        "fc2+res": (D, F, m, dict(residual=r), 16),
        "output+norm": (V, D, r, dict(norm=(nw, EPS)), 4),
    }
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}\n")
    print("| product | N x K | rel. err vs reference | bf16 = reference | graph = eager | unfused default us | "
          "fused default us | fused best us [rows, unroll, warps, per SM] |")  # fmt: skip
    print("|---|---|---|---:|---|---:|---:|---:|")
    data, best = {}, {}
    only = sys.argv[1:]  # shape names: only their rows (no chain, which needs every shape)
    for name, (n, k, x, fus, copies) in shapes.items():
        if only and name not in only:
            continue
        ws = weights(n, k, copies, glu=fus.get("glu", False))
        data[name] = ws
        q, s = ws[0]
        ref = GC.reference(x, q, s, **fus).float()
        out = GC.gemv_int8(x, q, s, pdl=True, **fus).float()
        top = ref.abs().max().item()
        err = (out - ref).abs().max().item() / top
        same = (out == ref).float().mean().item()
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            cap = GC.gemv_int8(x, q, s, pdl=True, **fus)
        g.replay()
        torch.cuda.synchronize()
        eq = torch.equal(cap.float(), out)
        t_plain = graph_time(lambda i, ws=ws, x=x: GC.gemv_int8(x, *ws[i], pdl=True), copies)
        res = []
        for cfg in SWEEP:
            if fus.get("glu") and cfg[0] != 2:
                continue
            t = graph_time(lambda i, c=cfg, ws=ws, x=x, f=fus: GC.gemv_int8(x, *ws[i], pdl=True, config=c, **f), copies)
            res.append((t, cfg))
        t_def = graph_time(lambda i, ws=ws, x=x, f=fus: GC.gemv_int8(x, *ws[i], pdl=True, **f), copies)
        tb, cfg = min(res)
        best[name] = cfg
        print(f"| {name} | {n} x {k} | {err:.2e} | {same:.4f} | {eq} | {t_plain * 1e6:.1f} | {t_def * 1e6:.1f} | "
              f"{tb * 1e6:.1f} {list(cfg)} |", flush=True)  # fmt: skip

    if only:
        return
    addn = FS._fn("add_norm", FS.add_norm, True, pdl=True)
    act = FS._fn("swiglu", FS.swiglu, True, pdl=True)
    plain_fc1 = weights(2 * F, D, 16)

    def unfused(i):
        GC.gemv_int8(unfused.h, *data["qkv+norm"][i], pdl=True)
        x, h = addn(unfused.x, GC.gemv_int8(o, *data["proj+res"][i], pdl=True), nw, EPS)
        mm = act(GC.gemv_int8(h, *plain_fc1[i], pdl=True))
        y = GC.gemv_int8(mm, *data["fc2+res"][i], pdl=True)
        unfused.x, unfused.h = addn(x, y, nw, EPS)

    def fused(i, cfgs=None):
        c = cfgs or {}
        x = fused.x
        GC.gemv_int8(x, *data["qkv+norm"][i], pdl=True, norm=(nw, EPS), config=c.get("qkv+norm"))
        x = GC.gemv_int8(o, *data["proj+res"][i], pdl=True, residual=x, config=c.get("proj+res"))
        mm = GC.gemv_int8(x, *data["fc1+norm+glu"][i], pdl=True, norm=(nw, EPS), glu=True, config=c.get("fc1+norm+glu"))
        fused.x = GC.gemv_int8(mm, *data["fc2+res"][i], pdl=True, residual=x, config=c.get("fc2+res"))

    rms = FS._fn("rms", FI._rms, True, pdl=True)  # fused_int8's own compiled norm

    def shipped(i):  # what --decode-int8-kernel fused runs (fused_int8.run_layers): fc1's norm a kernel of its own
        c = FI.CONFIGS
        x = fused.x
        GC.gemv_int8(x, *data["qkv+norm"][i], pdl=True, norm=(nw, EPS), config=c.get("qkv"))
        x = GC.gemv_int8(o, *data["proj+res"][i], pdl=True, residual=x, config=c.get("proj"))
        mm = GC.gemv_int8(rms(x, nw, EPS), *data["fc1+glu"][i], pdl=True, glu=True, config=c.get("fc1"))
        fused.x = GC.gemv_int8(mm, *data["fc2+res"][i], pdl=True, residual=x, config=c.get("fc2"))

    for _ in range(2):  # compile inductor's pieces outside the graph
        unfused.x, unfused.h, fused.x = r, r, r
        unfused(0)
        fused(0)
        shipped(0)
    print("\nA layer without attention, 16 layers chained in one CUDA graph with PDL, us per layer:\n")
    print("| chain | us per layer |\n|---|---:|")
    for label, fn in (
        ("unfused (generate's --decode-int8-kernel cuda)", unfused),
        ("fused, default blocks", fused),
        ("fused, each shape's best blocks", lambda i: fused(i, best)),
        ("fused as generate runs it (fc1's norm a kernel; fused_int8.CONFIGS)", shipped),
        ("unfused again", unfused),
    ):
        unfused.x, unfused.h, fused.x = r, r, r
        print(f"| {label} | {graph_time(fn, 16) * 1e6:.1f} |", flush=True)
    print(f"\nbest fused blocks: {best}")


if __name__ == "__main__":
    main()
