"""FP8 GEMMs for the DiT's token-stream projections (opt-in, ``DiffusionDecoder(gemm="fp8")``; it changes the output).

Why: half of a DiT forward at one 20,480-token chunk is GEMMs (368 of 735 ms on the H200), and FP8 ``_scaled_mm``
with row-wise scales runs the three shapes 1.7-1.9x faster than bf16 (``bench/bench_dd_kernels.py``). Quantizing the
activations with eager ops costs more than that saves, so here the quantization is fused into the kernels that
produce the activations: the modulated LayerNorm (input of q/k/v, the cross-attention's q and the MLP's first layer)
and the MLP's GELU (input of its second layer); only the attention output (input of ``to_out``) gets a kernel of its
own. What stays bf16: the cross-attention keys and values (512 context rows), the patch embedding, the time and
adaLN projections and the final layer.

Scaling: e4m3 (max 448) with one fp32 scale per weight output row (computed once, at conversion) and one per
activation row (per token, computed by the producing kernel): ``scale = amax / 448`` so the row's largest value maps
to 448 (within rounding). The eager definitions below are the reference; the Triton kernels compute the same bf16
values (the GELU by a table of eager's), then the same scale (``amax * (1/448)``) and quotient (IEEE division), so
their e4m3 rows have eager's values. The GEMMs accumulate with cuBLASLt's fast FP8 accumulation (``FAST_ACCUM``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nemo_cosmos_ar.diffusion_decoder import fused

FP8 = torch.float8_e4m3fn
FP8_MAX = 448.0
INV_FP8_MAX = 1.0 / FP8_MAX  # scale = amax * (1/448): torch on CUDA divides by a scalar this way, so the kernels do
MIN_SCALE = 1e-12  # an all-zero row: any positive scale gives zeros
GEMMS = ("bf16", "fp8")
# Launch widths (the outputs do not depend on them): the best of bench/bench_dd_elementwise.py on the H200 at 20,480
# tokens (BENCHMARKS.md, issue 13; call d8, with the GPU's rounding and the GELU table): the row quantizer 8 warps at
# 4,096 values a row (92 us; 91 at 4) and 32 at 16,384 with the GELU (400 us; 405 at 16, 568 at 8); the LayerNorm +
# quantize 4 warps (123 against 144 us at 8).
LN_QUANT_WARPS = 4
# On the GPU (bench/bench_dd_fp8_speedups.py, BENCHMARKS.md issue 13, call c8):
# - the e4m3 conversion rounds the quantizers' quotients: the same values as the written-out rounding, which
#   Triton's CPU interpreter needs; 20-35% faster;
# - the MLP's GELU is read from a table of eager GELU over all 16-bit inputs: exactly eager's (the erf formula in
#   the kernel differed from it for ~1 value in 10,000), 2x faster.
# Module switches so the benches can time the old ways.
HARDWARE_ROUNDING = True
GELU_TABLE = True
# cuBLASLt's fast accumulation in the FP8 GEMMs (no periodic fp32 promotion of the tensor cores' partial sums):
# a guided step 1.173 -> 1.126 s; the DiT's output moves 2.9% (relative L2) from exact accumulation's, and its
# difference from bf16 GEMMs stays 4.16% (call c8). On, as part of the opt-in FP8 mode.
FAST_ACCUM = True
_GELU_TABLES: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}


def gelu_table(device: torch.device, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """Eager ``F.gelu`` of every 16-bit ``dtype`` value, indexed by its bit pattern (computed on ``device`` by the
    same kernel eager runs, so a lookup equals eager GELU there by construction)."""
    key = (device, dtype)
    if key not in _GELU_TABLES:
        bits = torch.arange(1 << 16, dtype=torch.int32, device=device).to(torch.int16)
        _GELU_TABLES[key] = F.gelu(bits.view(dtype))
    return _GELU_TABLES[key]


def quant_warps(d: int) -> int:
    return 32 if d >= 8192 else 8


@dataclass
class QuantRows:
    """Activation rows in FP8: ``data [M, K]`` e4m3, ``scale [M, 1]`` fp32, ``lead`` the source's leading shape."""

    data: torch.Tensor
    scale: torch.Tensor
    lead: tuple[int, ...]

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return (self.data.float() * self.scale).to(dtype).reshape(*self.lead, -1)


def check_device(device: torch.device) -> None:
    """Refuse a CUDA GPU without FP8 tensor cores with row-wise scales (before Hopper) in one line; CPU runs the
    same maths in fp32 (tests)."""
    if device.type == "cuda":
        cc = torch.cuda.get_device_capability(device)
        if cc < (9, 0):
            raise ValueError(
                f"FP8 DiT GEMMs need a Hopper or later GPU (compute capability 9.0+); {device} is {cc[0]}.{cc[1]}: "
                "use --diffusion-decoder-gemm bf16"
            )


# ---- eager definitions (the reference; what runs without Triton) ----
def quantize_rows_eager(x: torch.Tensor) -> QuantRows:
    """Per-row e4m3 quantization of ``x [..., K]`` (rows = all leading dims)."""
    xf = x.reshape(-1, x.shape[-1]).float()
    scale = (xf.abs().amax(-1, keepdim=True) * INV_FP8_MAX).clamp_min(MIN_SCALE)
    return QuantRows((xf / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8), scale, tuple(x.shape[:-1]))


# ---- dispatchers ----
def quantize_rows(x: torch.Tensor, kernels: str = "auto", gelu: bool = False) -> QuantRows:
    """``x`` (or ``gelu(x)``, rounded to ``x``'s dtype as eager GELU is) quantized per row."""
    if not fused.use_triton(x, kernels):
        return quantize_rows_eager(F.gelu(x) if gelu else x)
    d = x.shape[-1]
    x2 = x.reshape(-1, d).contiguous()
    q = torch.empty(x2.shape, dtype=FP8, device=x.device)
    s = torch.empty(x2.shape[0], 1, dtype=torch.float32, device=x.device)
    block = fused.pow2(d)
    hw = x.is_cuda  # the written-out rounding and the formula where Triton's CPU interpreter runs (tests)
    lut = gelu and hw and GELU_TABLE and x.dtype in (torch.bfloat16, torch.float16)
    fused.triton_kernels()["quant"][(x2.shape[0],)](
        x2, q, s, d, MIN_SCALE, gelu_table(x.device, x.dtype) if lut else x2, BLOCK_D=block, GELU=gelu,
        HW_ROUND=HARDWARE_ROUNDING and hw, LUT=lut, num_warps=quant_warps(d),
    )  # fmt: skip
    return QuantRows(q, s, tuple(x.shape[:-1]))


def ln_modulate_quant(
    x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, eps: float, kernels: str = "auto"
) -> QuantRows:
    """``fused.ln_modulate`` (rounded to ``x``'s dtype) quantized per row, in one kernel on the GPU."""
    if not fused.use_triton(x, kernels):
        return quantize_rows_eager(fused.ln_modulate(x, shift, scale, eps, "eager"))
    b, s, d = x.shape
    x = x.contiguous()
    q = torch.empty(b * s, d, dtype=FP8, device=x.device)
    qs = torch.empty(b * s, 1, dtype=torch.float32, device=x.device)
    stride = fused.mod_stride(shift, scale)
    fused.triton_kernels()["ln"][(b * s,)](
        x, shift, scale, q, qs, s, d, stride, eps, MIN_SCALE,
        BLOCK_D=fused.pow2(d), QUANT=True, HW_ROUND=HARDWARE_ROUNDING and x.is_cuda, num_warps=LN_QUANT_WARPS,
    )  # fmt: skip
    return QuantRows(q, qs, (b, s))


class FP8Linear(nn.Module):
    """A bias-free ``nn.Linear`` with e4m3 weights (one fp32 scale per output row) on ``torch._scaled_mm``.

    ``forward`` takes either activations in the model dtype (quantized here, per row) or ``QuantRows`` from a fused
    producer, and returns ``[*lead, out_features]`` in the model dtype.
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        if linear.bias is not None:
            raise ValueError("FP8Linear converts bias-free linears only (the DiT's projections have none)")
        q = quantize_rows_eager(linear.weight.detach())  # a weight row is quantized as an activation row is
        self.register_buffer("weight", q.data)  # [N, K]
        self.register_buffer("weight_scale", q.scale.t().contiguous())  # [1, N]
        self.out_dtype = linear.weight.dtype
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.kernels = "auto"
        self.fast_accum = FAST_ACCUM

    def forward(self, x: torch.Tensor | QuantRows) -> torch.Tensor:
        q = x if isinstance(x, QuantRows) else quantize_rows(x, self.kernels)
        if q.data.is_cuda:
            # row-wise scales need a bf16 output on Hopper: another model dtype is cast from it
            try:
                out = self._mm(q)
            except torch.OutOfMemoryError:
                raise
            except RuntimeError as err:  # a torch/cuBLAS without fast accumulation for row-wise scales
                if not self.fast_accum:
                    raise
                warnings.warn(f"FP8 GEMM: fast accumulation refused ({err}); accumulating exactly", stacklevel=2)
                self.fast_accum = False
                out = self._mm(q)
            out = out.to(self.out_dtype)
        else:  # CPU (tests): the same product in fp32; torch's CPU _scaled_mm before 2.13 has no row-wise scales
            w = self.weight.float() * self.weight_scale.t()
            out = ((q.data.float() * q.scale) @ w.t()).to(self.out_dtype)
        return out.reshape(*q.lead, self.out_features)

    def _mm(self, q: QuantRows) -> torch.Tensor:
        return torch._scaled_mm(
            q.data, self.weight.t(), scale_a=q.scale, scale_b=self.weight_scale, out_dtype=torch.bfloat16,
            use_fast_accum=self.fast_accum,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, e4m3 row-scaled"


def convert_linears(root: nn.Module, names: list[str]) -> int:
    """Replace the ``nn.Linear`` submodules of ``root`` at the dotted ``names`` by ``FP8Linear``; returns how many
    were converted (an ``FP8Linear`` already there is left as is)."""
    done = 0
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = root.get_submodule(parent_name) if parent_name else root
        mod = getattr(parent, child) if not child.isdigit() else parent[int(child)]
        if isinstance(mod, FP8Linear):
            continue
        if not isinstance(mod, nn.Linear):
            raise TypeError(f"{name} is a {type(mod).__name__}, not an nn.Linear")
        new = FP8Linear(mod)
        if child.isdigit():
            parent[int(child)] = new
        else:
            setattr(parent, child, new)
        done += 1
    return done
