"""The DiT's GELU and gated residuals computed by the GEMMs that produce their inputs (``epilogues="auto"``).

Why: after the bf16 GEMMs and the attention, the largest passes of a DiT step are over GEMM outputs: the MLP's
exact GELU over the ``[tokens, 16,384]`` activation (1.09 ms a block at the guided step's 40,960 rows on the H200)
and the three ``x + gate * y`` after the attention outputs and the MLP. A GEMM can apply them as it writes its tile.
cuBLAS has no exact-GELU epilogue (its GELU is the tanh approximation), so these run on QuACK (``quack-kernels``,
a dependency of FlashAttention-4), whose Hopper GEMMs take an epilogue written as a function of the fp32
accumulator. Measured (BENCHMARKS.md, issue 13, ``bench/bench_dit_epilogues.py``): MLP up + GELU 8.85 -> 7.60 ms,
MLP down + gated residual 7.29 -> 7.07 ms, attention out + gated residual 2.25 -> 2.13 ms a block.

What differs from the separate passes: the epilogue works on the fp32 accumulator, so it skips the roundings to
bf16 in between (of the GEMM output before the GELU, of ``gate * y`` before the sum) and uses the GPU's fast erf:
one bf16 rounding step apart for about a fifth to a third of the values, the same class of difference as between
attention kernels (the GPU tier measures the DiT block's error against fp32 with and without). The products
themselves are QuACK's and equal cuBLAS's bit for bit at these shapes.

Where QuACK, a Hopper GPU, bf16 or the shapes are missing, or the first call fails (a warning says why), the
callers run the separate ops (``fused.py``). No NeMo import.
"""

from __future__ import annotations

import importlib.util
import warnings

import torch

EPILOGUES = ("auto", "off")
FAILURES: list[str] = []  # the first failure's message; the separate ops from then on
# QuACK's Hopper GEMM at 128x256 tiles on 2x1 clusters: within 1% of cuBLAS at the DiT's 4096-wide products
# (bench_dit_epilogues.py, a60); the other tiles tried were 1-60% slower
TILE = dict(tile_M=128, tile_N=256, cluster_M=2, cluster_N=1, pingpong=False)
_MODS: dict = {}


def usable(x: torch.Tensor, weight: torch.Tensor, mode: str) -> bool:
    """Whether ``x @ weight.T`` with an epilogue runs on QuACK: ``mode`` "auto", no earlier failure, bf16 CUDA
    tensors on a Hopper GPU (the architecture measured), QuACK importable, widths the tiles divide."""
    if mode == "off" or FAILURES:
        return False
    if mode != "auto":
        raise ValueError(f"unknown DiT epilogues {mode!r}; choose one of {EPILOGUES}")
    if not (x.is_cuda and x.dtype == torch.bfloat16 and weight.dtype == torch.bfloat16):
        return False
    n, k = weight.shape
    if n % 256 or k % 64:
        return False
    return torch.cuda.get_device_capability(x.device)[0] == 9 and importlib.util.find_spec("quack") is not None


def _mods() -> dict:
    """The two epilogue functions, built once (QuACK keys its compiled kernels by the functions' source)."""
    if not _MODS:
        # the module, not the function, is referenced: QuACK fingerprints what an epilogue uses, a module by its
        # name; a function outside site-packages would be traced into (gelu_erf's wrapper holds a ContextVar)
        import quack.activation as qa
        from quack.epilogue.frontend import gemm_epilogue

        @gemm_epilogue()
        def gelu_epi(acc):
            return {"D": qa.gelu_erf(acc)}

        @gemm_epilogue()
        def gate_epi(acc, c, gate):
            return {"D": c + gate * acc}

        _MODS.update(gelu=gelu_epi, gate=gate_epi)
    return _MODS


def _run(fn) -> bool:
    """``fn()``; False after warning once that it failed (the caller then runs the separate ops)."""
    try:
        fn()
        return True
    except Exception as err:  # QuACK and the CuTe DSL raise several types (compile, resources, driver)
        FAILURES.append(f"{type(err).__name__}: {err}")
        warnings.warn(
            f"the DiT's fused GEMM epilogues failed ({FAILURES[-1].splitlines()[0][:200]}); using the separate "
            "GELU and residual kernels from now on",
            stacklevel=3,
        )
        return False


def linear_gelu(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor | None:
    """``gelu(x @ weight.T)`` (exact GELU) for ``x [..., K]``, ``weight [N, K]``; None if QuACK failed."""
    n = weight.shape[0]
    a = x.reshape(-1, x.shape[-1])
    out = torch.empty(a.shape[0], n, device=x.device, dtype=x.dtype)
    if not _run(lambda: _mods()["gelu"].gemm(a, weight, out, epi_args={}, **TILE)):
        return None
    return out.view(*x.shape[:-1], n)


def linear_gate_residual(
    y_in: torch.Tensor, weight: torch.Tensor, x: torch.Tensor, gate: torch.Tensor
) -> torch.Tensor | None:
    """``x + gate * (y_in @ weight.T)`` for ``y_in [B, S, K]``, ``x [B, S, N]``, ``gate [B, 1, N]`` (adaLN's
    per-sample gate); None if QuACK failed. One GEMM per sample, each with its gate row."""
    b, s, n = x.shape
    out = torch.empty(b, s, n, device=x.device, dtype=x.dtype)
    a, res = y_in.contiguous(), x.contiguous()

    def run():
        for i in range(b):
            _mods()["gate"].gemm(
                a[i], weight, out[i], res[i], epi_args={"gate": gate[i].reshape(1, n).contiguous()}, **TILE
            )

    return out if _run(run) else None
