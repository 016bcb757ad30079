"""The ``fast`` tokenizer backend: the eager network, compiled and laid out for speed (issue 15).

Same weights, same chunking and interface as ``EagerTokenizer``; what changes is how the network runs, each change a
``FastOptions`` switch so that ``bench/bench_tokenizer.py`` can measure them one by one:

* ``compile``: ``torch.compile`` of the heavy part of encode (``encoder`` + ``quant_conv``) and of decode
  (``post_quant_conv`` + ``decoder``), static shapes, one graph each (``fullgraph``). The FSQ rounding and the
  index <-> code maps stay eager: they are tiny, and kept out of the compiler so indices come from the same float
  ops as the eager backend's. ``compile_mode`` is torch.compile's ``mode`` (None = default; ``"reduce-overhead"`` adds
  CUDA graphs, ``"max-autotune-no-cudagraphs"`` tunes kernels by timing them). ``emulate_precision_casts`` makes
  inductor round the intermediates of fused bf16 kernels as eager does (e.g. ``sigmoid(x)`` to bf16 before
  ``x * sigmoid(x)``), so that FSQ sees the eager latents more often bit for bit; off, fused kernels keep fp32
  intermediates (closer to fp32, further from eager bf16; the fused Haar transforms then lose their eager rounding).
* ``channels_last``: convolutions run in ``torch.channels_last_3d`` (cuDNN's fast layout for bf16 3D convolutions);
  when compiling, also inductor's ``layout_optimization`` (which otherwise picks channels-last by itself). Off by
  default: cuDNN sums in another order in that layout, and in bf16 that moved 0.33 % of the indices off eager's on
  an H200 (a change this small flips FSQ levels: bf16 and fp32 eager agree on only ~68 %). None = on CUDA only.
* ``fused_haar``: the 2-level 3D Haar patcher / un-patcher as element-wise arithmetic that rounds where the eager
  modules round (``fused_haar.py``): bit-identical to them in bf16 when run eagerly. ``opaque_haar`` (on) keeps them
  eager inside the compiled graph (custom ops): on the H200 inductor's fused kernel for the un-patcher decoded at
  only 44.4 dB against eager bf16, while the same arithmetic run eagerly was identical; off, one or two compiled
  kernels per level.
* ``eager_reductions``: the GroupNorms and the attention softmaxes run as PyTorch's eager kernels inside the compiled
  graph (custom ops the compiler cannot decompose). Inductor otherwise rewrites them as its own reductions, which sum
  in another order. In bf16 on a CPU with inductor's C++ kernels (8 real-looking 33x256x384 clips) that left 83.1 %
  of the indices equal to eager's for the released sizes (decode 36.2 dB) and 95.4 % for the tiny network (group
  norm 4.4 points of the loss, softmax 0.2); with both kept eager the compiled network gave eager's indices and
  decoded frames bit for bit, for both. The price: inductor cannot fuse the norm with the swish after it.
* ``cudnn_benchmark``: cuDNN picks convolution algorithms by timing them (None = on CUDA). ``prepare-data`` turns it
  off: a timed choice can differ between runs, and its datasets must be byte-identical when resumed.

Compilation happens on the first call with a new clip shape (batch size included) and its cost is recorded in
``compile_seconds`` (first call minus nothing: the first call's whole time, compile plus one run). ``warmup(shape)``
pays it ahead of time for encode and decode.

Accuracy (tests/test_tokenizer_fast.py): fp32 on CPU gives the eager backend's indices; in bf16 the fused Haar
transforms are bit-identical to eager's, and the compiled network with eager reductions gives eager bf16's indices
(under inductor's decompositions in the tests; with inductor's C++ kernels as measured above). bf16 on the GPU is
measured against eager bf16 by ``bench/bench_tokenizer.py`` (indices equal, decoded PSNR). The defaults are the
accuracy-safe choices (``channels_last`` off, ``eager_reductions`` on); the bench rows show what each costs.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from nemo_cosmos_ar.tokenizer.backends import EagerTokenizer
from nemo_cosmos_ar.tokenizer.fused_haar import fuse_haar
from nemo_cosmos_ar.tokenizer.modules import CausalConv3d, _AttentionBase
from nemo_cosmos_ar.tokenizer.networks import CausalVideoTokenizer

COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


# Opaque to torch.compile: traced as one call of the eager kernel. Contiguous input, as the eager network feeds them,
# so that the same kernel (and summation order) runs whatever layout the compiled graph chose.
@torch.library.custom_op("nemo_cosmos_ar::eager_group_norm", mutates_args=())
def eager_group_norm(
    x: torch.Tensor, groups: int, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float
) -> torch.Tensor:
    return F.group_norm(x.contiguous(), groups, weight, bias, eps)


@eager_group_norm.register_fake
def _(x: torch.Tensor, groups: int, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float) -> torch.Tensor:
    return torch.empty_like(x, memory_format=torch.contiguous_format)


@torch.library.custom_op("nemo_cosmos_ar::eager_softmax", mutates_args=())
def eager_softmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    return F.softmax(x.contiguous(), dim=dim)


@eager_softmax.register_fake
def _(x: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.empty_like(x, memory_format=torch.contiguous_format)


class EagerGroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` (same parameters and keys) through ``eager_group_norm``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return eager_group_norm(x, self.num_groups, self.weight, self.bias, self.eps)


def use_eager_reductions(network: nn.Module) -> nn.Module:
    """Route every GroupNorm and attention softmax of ``network`` through the opaque eager ops, in place."""
    for module in list(network.modules()):
        if isinstance(module, _AttentionBase):
            module.softmax = eager_softmax
        for name, child in module.named_children():
            if type(child) is nn.GroupNorm:
                new = EagerGroupNorm(child.num_groups, child.num_channels, child.eps, child.affine)
                ref = next(child.parameters(), None)
                if ref is not None:
                    new.to(device=ref.device, dtype=ref.dtype).load_state_dict(child.state_dict())
                setattr(module, name, new)
    return network


@dataclass(kw_only=True)
class FastOptions:
    """Switches of the ``fast`` backend (see the module docstring). None = decided by the device."""

    compile: bool = True
    compile_mode: str | None = None
    compile_backend: str = "inductor"  # "aot_eager" traces without generating kernels (CPU tests)
    emulate_precision_casts: bool = True
    channels_last: bool | None = False
    fused_haar: bool = True
    opaque_haar: bool = True
    eager_reductions: bool = True
    cudnn_benchmark: bool | None = None

    def __post_init__(self) -> None:
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(f"unknown compile_mode {self.compile_mode!r}; choose one of {COMPILE_MODES}")

    def resolved(self, device: torch.device) -> FastOptions:
        """These options with every None decided for ``device``."""
        cuda = device.type == "cuda"
        return replace(
            self,
            channels_last=cuda if self.channels_last is None else self.channels_last,
            cudnn_benchmark=cuda if self.cudnn_benchmark is None else self.cudnn_benchmark,
        )

    @property
    def cuda_graphs(self) -> bool:
        return self.compile and self.compile_mode in ("reduce-overhead", "max-autotune")


class FastTokenizer(EagerTokenizer):
    """``EagerTokenizer`` with the ``FastOptions`` applied (arguments as for ``EagerTokenizer``, plus ``options``).

    The network is modified in place (fused Haar modules, channels-last weights): pass one that nothing else uses.
    """

    def __init__(
        self,
        network: CausalVideoTokenizer,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        pixel_chunk_duration: int | None = 33,
        max_enc_batch_size: int = 8,
        max_dec_batch_size: int = 4,
        options: FastOptions | None = None,
    ) -> None:
        super().__init__(network, device, dtype, pixel_chunk_duration, max_enc_batch_size, max_dec_batch_size)
        self.options = (options or FastOptions()).resolved(self.device)
        net = self.network
        if self.options.fused_haar:
            fuse_haar(net, opaque=self.options.opaque_haar)
        if self.options.eager_reductions:
            use_eager_reductions(net)
        if self.options.channels_last:
            for m in net.modules():
                if isinstance(m, CausalConv3d):
                    m.memory_format = torch.channels_last_3d
                    m.conv3d.to(memory_format=torch.channels_last_3d)
        self._encode_net, self._decode_net = self._latent, self._pixels
        if self.options.compile:
            kw = dict(backend=self.options.compile_backend, dynamic=False, fullgraph=True)
            if self.options.compile_mode not in (None, "default"):
                kw["mode"] = self.options.compile_mode
            self._encode_net = torch.compile(self._latent, **kw)
            self._decode_net = torch.compile(self._pixels, **kw)
        self.compile_seconds: dict[tuple[str, tuple[int, ...]], float] = {}

    # The compiled parts: pixels -> pre-quantisation latent, codes -> pixels.
    def _latent(self, video: torch.Tensor) -> torch.Tensor:
        return self.network.quant_conv(self.network.encoder(video))

    def _pixels(self, codes: torch.Tensor) -> torch.Tensor:
        return self.network.decoder(self.network.post_quant_conv(codes))

    def _run(self, name: str, fn, x: torch.Tensor) -> torch.Tensor:
        key = (name, tuple(x.shape))
        first = key not in self.compile_seconds
        start = time.perf_counter() if first else 0.0
        benchmark = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = bool(self.options.cudnn_benchmark)
        rounding = contextlib.nullcontext()
        if first and self.options.compile and self.options.compile_backend == "inductor":  # compiles now
            import torch._inductor.config as inductor_config

            rounding = inductor_config.patch(
                emulate_precision_casts=self.options.emulate_precision_casts,
                layout_optimization=bool(self.options.channels_last),
            )
        try:
            if self.options.cuda_graphs:  # a new step: outputs of the previous replay may be overwritten
                torch.compiler.cudagraph_mark_step_begin()
            with rounding:
                out = fn(x)
            if self.options.cuda_graphs:
                out = out.clone()  # the graph's output buffer is reused by the next replay
        finally:
            torch.backends.cudnn.benchmark = benchmark
        if first:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.compile_seconds[key] = time.perf_counter() - start
        return out

    def _encode_clips(self, video: torch.Tensor) -> torch.Tensor:
        return self.network.quantizer(self._run("encode", self._encode_net, video))[0]

    def _decode_clips(self, indices: torch.Tensor) -> torch.Tensor:
        codes = self.network.quantizer.indices_to_codes(indices).to(self.dtype)
        return self._run("decode", self._decode_net, codes)

    def warmup(self, num_frames: int, height: int, width: int, batch: int = 1, calls: int = 3) -> float:
        """Compile (and, with CUDA graphs, record) encode and decode for ``batch`` clips of this size; returns the
        seconds it took. Later calls with that shape start at full speed."""
        start = time.perf_counter()
        video = torch.zeros(batch, self.config.in_channels, num_frames, height, width, device=self.device)
        for _ in range(calls):
            ids = self.encode(video)
            self.decode(ids)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - start
