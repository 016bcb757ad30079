"""Which torch SDPA kernel to prefer on a GPU (no Megatron, no NeMo: the AR layer spec and the diffusion decoder's
DiT both use it).

torch's own order tries flash attention first and cuDNN last. On the H200 cuDNN is the faster of the two at this
project's shapes: 556 against 306 TFLOP/s for causal attention over 12,800 tokens, forward and backward
(``../shared/reference/gpu_notes.md``), and for the DiT's non-causal 20,480-token forward see BENCHMARKS.md
(issue 13, ``bench/bench_dd_kernels.py``). torch skips any backend that cannot take the inputs, so the order is a
preference, never an error.
"""

from __future__ import annotations

import contextlib

import torch


def preferred_sdpa_backends(device: torch.device):
    """A context that makes SDPA try cuDNN, then flash, memory-efficient and math on CUDA; on CPU torch's choice."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    order = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    return sdpa_kernel(order, set_priority=True)
