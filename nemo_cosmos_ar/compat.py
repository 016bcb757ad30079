"""Compatibility fixes for versions outside the pinned stack, applied by ``runtime.prepare_process()``.

Megatron-Core 0.15.3's distributed checkpointing calls ``np.product``, which NumPy 2 removed; NeMo containers
ship NumPy 1.x, but machines with NumPy 2 (e.g. a plain CUDA PyTorch image) fail on the first TP>1 checkpoint
save with ``module 'numpy' has no attribute 'product'``. ``np.prod`` is the same function.
"""

import numpy as np


def apply() -> None:
    if not hasattr(np, "product"):
        np.product = np.prod  # type: ignore[attr-defined]
