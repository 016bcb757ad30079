"""Compatibility fixes for versions outside the pinned stack, applied by ``runtime.prepare_process()``.

Megatron-Core 0.15.3's distributed checkpointing calls ``np.product``, which NumPy 2 removed; NeMo containers
ship NumPy 1.x, but machines with NumPy 2 (e.g. a plain CUDA PyTorch image) fail on the first TP>1 checkpoint
save with ``module 'numpy' has no attribute 'product'``. ``np.prod`` is the same function.

Megatron-Core 0.15 builds a C++ extension when ``megatron.core`` is first imported
(``megatron/core/inference/unified_memory.py``: ``load_inline(name="managed_alloc_runtime")``, a CUDA managed-memory
pool for its own dynamic inference engine): one g++ run over torch's headers, ~20 s, paid on every fresh machine
with a CUDA toolkit (the lent H200 has nvcc), and by every process where the build fails. Nothing here uses that
pool, so ``refuse_unused_builds`` makes ``load_inline`` refuse that one name (``RuntimeError``, which Megatron
catches: the pool stays off, as on a machine without CUDA). It must be in place before Megatron is first imported:
``apply()`` (entry points) does it for the process; ``inference.engine`` does it around its own Megatron import.
"""

import numpy as np

SKIPPED_EXTENSIONS = frozenset({"managed_alloc_runtime"})


def refuse_unused_builds(load_inline):
    """``load_inline`` wrapped to refuse the builds named in ``SKIPPED_EXTENSIONS`` (idempotent)."""
    if getattr(load_inline, "refuses_unused_builds", False):
        return load_inline

    def guarded(name, *args, **kwargs):
        if name in SKIPPED_EXTENSIONS:
            raise RuntimeError(f"nemo_cosmos_ar: not building {name} (Megatron's unified memory pool; unused)")
        return load_inline(name, *args, **kwargs)

    guarded.refuses_unused_builds = True
    return guarded


def apply() -> None:
    if not hasattr(np, "product"):
        np.product = np.prod  # type: ignore[attr-defined]
    from torch.utils import cpp_extension

    cpp_extension.load_inline = refuse_unused_builds(cpp_extension.load_inline)
