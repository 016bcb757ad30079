"""Process set-up shared by the CLI, the recipes, the tests and the benchmarks: the process-wide fixes
(``prepare_process``), the process-group / Megatron-Core parallel-state set-up, the offload routine
(``free_memory``) of generate, the diffusion decoder and the guardrails, the pinned-buffer copy of a
memory-mapped checkpoint to the GPU (``copy_to_device``), and a load on a thread (``Background``: the diffusion
decoder's and the guardrails').

Works under ``torchrun`` (reads RANK/WORLD_SIZE) and as a plain single process (fills the env in). Uses NCCL on
GPUs and gloo on CPU, where it also applies the CUDA shims of ``cpu_shim``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

import torch
import torch.distributed as dist


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_memory(device: torch.device | str) -> None:
    """What cosmos-predict1's offloading does after ``del``: a full garbage collection, then the cached CUDA blocks
    handed back to the driver. Only for what a user asked to offload: in a process holding Megatron-Core and NeMo
    (~500 k Python objects) the collection alone takes ~0.27 s (2-core CPU machine), and ``empty_cache`` frees
    blocks this process would reuse."""
    import gc

    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


def prepare_process(nemo: bool = True) -> None:
    """The process-wide fixes an entry point applies before it builds Megatron-Core or NeMo objects (idempotent):
    NumPy 2 compatibility (``compat``) everywhere, and on a machine without CUDA the CUDA stand-ins of ``cpu_shim``
    (with NeMo's when ``nemo``). Library modules never apply them on import."""
    from nemo_cosmos_ar import compat, cpu_shim

    compat.apply()
    cpu_shim.apply(nemo=nemo)


def init_megatron(tp: int = 1, seed: int = 1234, cp: int = 1) -> torch.device:
    """Initialise torch.distributed and Megatron's parallel state; return this rank's device."""
    from nemo_cosmos_ar import cpu_shim

    cpu_shim.apply(seed)
    if "RANK" not in os.environ:
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    from megatron.core import parallel_state, tensor_parallel

    if not parallel_state.model_parallel_is_initialized():
        parallel_state.initialize_model_parallel(tensor_model_parallel_size=tp, context_parallel_size=cp)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        tensor_parallel.model_parallel_cuda_manual_seed(seed)
    return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")


def shutdown() -> None:
    from megatron.core import parallel_state

    if dist.is_initialized():
        dist.barrier()
    parallel_state.destroy_model_parallel()
    if dist.is_initialized():
        dist.destroy_process_group()


def gather_vocab_parallel(logits: torch.Tensor) -> torch.Tensor:
    """All-gather vocab-parallel logits ``[..., V/tp]`` to ``[..., V]`` (no grad)."""
    from megatron.core import parallel_state

    tp = parallel_state.get_tensor_model_parallel_world_size()
    if tp == 1:
        return logits
    parts = [torch.empty_like(logits) for _ in range(tp)]
    dist.all_gather(parts, logits.contiguous(), group=parallel_state.get_tensor_model_parallel_group())
    return torch.cat(parts, dim=-1)


def copy_to_device(
    tensors: dict[str, torch.Tensor], device: torch.device, chunk_bytes: int = 256 << 20
) -> dict[str, torch.Tensor]:
    """``{name: tensor on device}`` for CPU tensors (e.g. a memory-mapped checkpoint), copied through two reusable
    pinned buffers (each at most ``chunk_bytes``) on the current stream; returns when every copy is done.

    Why: ``.to(cuda)`` of a pageable tensor is staged by the driver, and the 7B decoder's 14 GB went 2.4 s that way
    against 0.9 s through our own pinned buffers (one H200, page cache warm, bench/bench_load_interference.py).
    """
    if device.type != "cuda":
        return {k: v.to(device) for k, v in tensors.items()}
    stream = torch.cuda.current_stream(device)
    chunk_bytes = max(1, min(chunk_bytes, max((v.numel() * v.element_size() for v in tensors.values()), default=1)))
    bufs = [torch.empty(chunk_bytes, dtype=torch.uint8, pin_memory=True) for _ in range(2)]
    free: list[torch.cuda.Event | None] = [None, None]
    out, k = {}, 0
    for name, src in tensors.items():
        dst = torch.empty(src.shape, dtype=src.dtype, device=device)
        if src.numel() == 0:
            out[name] = dst
            continue
        s, d = src.contiguous().reshape(-1).view(torch.uint8), dst.view(-1).view(torch.uint8)
        for pos in range(0, s.numel(), chunk_bytes):
            n = min(chunk_bytes, s.numel() - pos)
            if free[k] is not None:
                free[k].synchronize()  # the copy that last read this buffer is done
            bufs[k][:n].copy_(s[pos : pos + n])
            d[pos : pos + n].copy_(bufs[k][:n], non_blocking=True)
            free[k] = torch.cuda.Event()
            free[k].record(stream)
            k = 1 - k
        out[name] = dst
    for ev in free:  # the pinned buffers are freed on return: their copies must be done
        if ev is not None:
            ev.synchronize()
    return out


T = TypeVar("T")
_BACKGROUND: list[threading.Thread] = []


def background_busy() -> list[str]:
    """The names of the ``Background`` loads still running. A process that ends on an error while one runs must
    leave through ``os._exit``: interpreter shutdown runs C++ static destructors under a thread that is still inside
    a CUDA copy or a compiler import, and the process aborts ("terminate called without an active exception")."""
    return [t.name for t in _BACKGROUND if t.is_alive()]


class Background(Generic[T]):
    """``fn()`` on a daemon thread, its CUDA work on a side stream of ``device`` (on the caller's stream its copies
    would queue behind the caller's kernels), synchronised before the result is handed over. ``result()`` waits for
    it and returns it, or raises its error in the caller's thread."""

    def __init__(self, fn: Callable[[], T], device: torch.device | str, name: str) -> None:
        self._future: Future = Future()
        self.thread = threading.Thread(target=self._run, args=(fn, torch.device(device)), name=name, daemon=True)
        self.thread.start()
        _BACKGROUND[:] = [t for t in _BACKGROUND if t.is_alive()] + [self.thread]  # finished ones are dropped

    def _run(self, fn: Callable[[], T], device: torch.device) -> None:
        try:
            cuda = device.type == "cuda"
            side = torch.cuda.Stream(device) if cuda else None
            with torch.cuda.device(device) if cuda else contextlib.nullcontext(), torch.cuda.stream(side):
                out = fn()
                if cuda:
                    side.synchronize()
            self._future.set_result(out)
        except BaseException as err:  # noqa: BLE001 - raised by result()
            self._future.set_exception(err)

    def result(self) -> T:
        return self._future.result()

    def exception(self) -> BaseException | None:
        """Wait for ``fn`` and return its error, or None."""
        return self._future.exception()
