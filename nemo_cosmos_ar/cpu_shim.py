"""CUDA stand-ins that let the real Megatron-Core and NeMo 2 code paths run on a CPU-only machine (gloo).

Megatron-Core 0.15 and NeMo 2.7 assume CUDA in a few hundred places (``torch.cuda.current_device()`` as a device,
the CUDA RNG tracker, ``torch.cuda.Stream``, ``device='cuda'`` literals, ``pin_memory=True``). Tests and the CPU demo
call ``apply()`` once, before building models (entry points through ``runtime.prepare_process()``). Every function
returns at once when CUDA is available, so a GPU run is never touched. This is the only module in the project that
monkeypatches anything.

Known limits on CPU: no TransformerEngine/apex fused kernels; Megatron's gradient clipping asserts CUDA tensors, so
recipes turn ``clip_grad`` off when running here.
"""

from __future__ import annotations

import contextlib
import functools

import torch
from torch.overrides import TorchFunctionMode

_APPLIED = {"torch": False, "mode": None, "nemo": False}


def on_cpu() -> bool:
    return not torch.cuda.is_available()


def patch_torch_cuda() -> None:
    """Device queries, synchronise, streams and memory counters become CPU no-ops."""
    if not on_cpu() or _APPLIED["torch"]:
        return

    class _Stream:
        def __init__(self, *a, **k):
            pass

        def wait_stream(self, *a, **k):
            pass

        def synchronize(self):
            pass

        def record_event(self, *a, **k):
            return None

    torch.cuda.current_device = lambda: "cpu"  # used as a device= argument all over Megatron-Core
    torch.cuda.synchronize = lambda *a, **k: None
    torch.cuda.Stream = _Stream
    torch.cuda.stream = lambda *a, **k: contextlib.nullcontext()
    torch.cuda.current_stream = lambda *a, **k: _Stream()
    torch.cuda.empty_cache = lambda: None
    for name in ("max_memory_reserved", "max_memory_allocated", "memory_allocated", "memory_reserved"):
        setattr(torch.cuda, name, lambda *a, **k: 0)
    torch.cuda.reset_peak_memory_stats = lambda *a, **k: None
    _APPLIED["torch"] = True


class CudaToCpuMode(TorchFunctionMode):
    """Rewrites ``device='cuda[:n]'`` to CPU in factory calls, drops ``pin_memory``, makes ``.cuda()`` a no-op and
    reports CPU tensors' ``.type()`` as the CUDA type."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func is torch.Tensor.cuda or func is torch.Tensor.pin_memory:
            return args[0]
        if func is torch.Tensor.type and len(args) == 1 and not kwargs:
            # Megatron's mixed-precision optimizer accepts parameters by their type string ("torch.cuda.*Tensor").
            name = func(*args)
            return name.replace("torch.", "torch.cuda.", 1) if name.count(".") == 1 else name
        if kwargs.get("pin_memory"):
            kwargs["pin_memory"] = False
        dev = kwargs.get("device")
        if dev is not None and (str(dev).startswith("cuda") or isinstance(dev, int)):
            kwargs["device"] = "cpu"
        if func is torch.Tensor.to and len(args) > 1 and isinstance(args[1], (str, torch.device, int)):
            if isinstance(args[1], int) or str(args[1]).startswith("cuda"):
                args = (args[0], "cpu") + tuple(args[2:])
        return func(*args, **kwargs)


def enter_cuda_to_cpu_mode() -> None:
    """Push ``CudaToCpuMode`` for the rest of the process (Megatron DDP / optimizer and NeMo need it)."""
    if not on_cpu() or _APPLIED["mode"] is not None:
        return
    mode = CudaToCpuMode()
    mode.__enter__()
    _APPLIED["mode"] = mode


def install_cpu_rng_tracker(seed: int = 1234) -> None:
    """Replace Megatron-Core's CUDA RNG tracker by one that forks CPU generator states, added lazily."""
    if not on_cpu():
        return
    from megatron.core import parallel_state
    from megatron.core.tensor_parallel import random as mrandom

    base = mrandom.CudaRNGStatesTracker
    if getattr(base, "_cpu_tracker", False):
        base = base.__bases__[0]

    class CpuRNGStatesTracker(base):
        _cpu_tracker = True

        def add(self, name, seed_):
            if seed_ in self.seeds_ or name in self.states_:
                raise RuntimeError(f"rng state {name}/{seed_} already exists")
            self.seeds_.add(seed_)
            saved = torch.get_rng_state()
            torch.manual_seed(seed_)
            self.states_[name] = torch.get_rng_state()
            torch.set_rng_state(saved)

        @contextlib.contextmanager
        def fork(self, name=mrandom._MODEL_PARALLEL_RNG_TRACKER_NAME):
            if name not in self.states_:
                tp = (
                    parallel_state.get_tensor_model_parallel_rank()
                    if parallel_state.model_parallel_is_initialized()
                    else 0
                )
                self.add(name, seed + 2718 + tp + 7919 * len(self.states_))
            saved = torch.get_rng_state()
            torch.set_rng_state(self.states_[name])
            try:
                yield
            finally:
                self.states_[name] = torch.get_rng_state()
                torch.set_rng_state(saved)

    mrandom.CudaRNGStatesTracker = CpuRNGStatesTracker
    # Activation recompute (CheckpointFunction) saves and restores the CUDA generator's state besides the CPU one
    # and the tracker's; without CUDA there is no such generator, so there is nothing to save.
    mrandom._get_cuda_rng_state = lambda *a, **k: torch.empty(0, dtype=torch.uint8)
    mrandom._set_cuda_rng_state = lambda *a, **k: None
    mrandom._CUDA_RNG_STATE_TRACKER = CpuRNGStatesTracker()
    mrandom._CUDA_RNG_STATE_TRACKER_INITIALIZED = True


def patch_nemo() -> None:
    """NeMo 2.7.3 checkpoint load asserts CUDA in ``_fix_tensors_device``; on CPU the tensors are already right."""
    if not on_cpu() or _APPLIED["nemo"]:
        return
    import nemo.lightning.io.pl as nemo_pl

    nemo_pl._fix_tensors_device = lambda ckpt: ckpt
    _APPLIED["nemo"] = True


@functools.cache
def apply(seed: int = 1234, nemo: bool = False) -> None:
    """Everything a CPU run of Megatron-Core (and NeMo, with ``nemo=True``) needs. No-op with CUDA."""
    if not on_cpu():
        return
    patch_torch_cuda()
    enter_cuda_to_cpu_mode()
    install_cpu_rng_tracker(seed)
    if nemo:
        patch_nemo()
