"""The DiT's attention core (no NeMo): torch SDPA, TransformerEngine, or FlashAttention-4.

All three compute the same bf16 attention (softmax scale 1/sqrt(D), no mask); they differ in the kernel and so in
rounding. Which one:

* ``"sdpa"``: torch ``scaled_dot_product_attention`` with cuDNN tried first (``model.sdpa``); runs everywhere.
* ``"fa4"``: FlashAttention-4's forward (the optional ``flash-attn-4`` package, CuTe DSL; Hopper and Blackwell;
  measured with 4.0.0b36). In the whole generate on the H200 the DiT's 15 guided steps take 15.0 s with it against
  15.9 s with cuDNN, and its error against fp32 attention equals cuDNN's (BENCHMARKS.md, issue 13, eleventh
  session). Importing it loads a ~190 MB compiler library (4.5 s warm, 15.7 s from a cold page cache on the H200),
  so ``preload`` starts the import on a thread as soon as a decoder that uses it is built, and the first call waits
  for it there. FA4 compiles its kernels at the first call; ``preload`` turns on its on-disk kernel cache
  (``FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED``, unless the caller set it) so later processes load them instead.
  On Hopper the self-attention runs other tiles than FA4's default (``SM90_LONG_TILES``), with a fallback.
* ``"te"``: TransformerEngine's ``DotProductAttention``, when it is installed.
* ``"auto"``: ``"fa4"`` where it can run (a CUDA GPU of compute capability 9.x or 10.x and the package installed),
  else ``"sdpa"``. The diffusion decoder falls back to ``"sdpa"`` with a warning when an installed package fails to
  import (``DiffusionDecoder``); asked for by name, ``"fa4"`` raises instead.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import warnings

import torch
import torch.nn.functional as F

from nemo_cosmos_ar.model.sdpa import preferred_sdpa_backends
from nemo_cosmos_ar.runtime import Background

ATTENTION_BACKENDS = ("sdpa", "te", "fa4")  # what a DiT runs; "auto" resolves to one of them (``resolve``)
ATTENTION_CHOICES = ("auto",) + ATTENTION_BACKENDS
FA4_MODULE = "flash_attn.cute.interface"
FA4_ARCHS = (9, 10)  # the compute capabilities FlashAttention-4 has forwards for (sm90 Hopper, sm100 Blackwell)
FA4_INSTALL = "pip install flash-attn-4"

# FA4's Hopper forward runs 128 x 128 tiles with P @ V from registers for head dim 128 (its default, tuned on an H100
# SXM). At the DiT's self-attention (2 x 20,480 tokens, 32 heads) 192-row query tiles with P @ V from shared memory
# are 4-5% faster on the H200, and their output equals the default's bit for bit: the key tiles stay 128 rows, so
# every row's softmax sums in the same order (bench/bench_fa4_tiles.py; BENCHMARKS.md, issue 13, twenty-eighth
# session). They go through FA4's private ``_flash_attn_fwd`` (``flash_attn_func`` takes no tiles); a package whose
# private call differs or refuses them falls back to ``flash_attn_func`` with one warning. None: always the default.
# COSMOS_AR_FA4_DEFAULT_TILES=1 keeps FA4's default (for A/B timings).
SM90_LONG_TILES: dict | None = (
    None
    if os.environ.get("COSMOS_AR_FA4_DEFAULT_TILES") == "1"
    else {"tile_mn": (192, 128), "mma_pv_is_rs": False, "intra_wg_overlap": True}
)
LONG_KV = 4096  # key rows from which SM90_LONG_TILES is used (the cross-attention's 512 keep the default)

_fa4_lock = threading.Lock()
_fa4_import: Background | None = None  # preload's import
_tiles_refused: str | None = None  # why SM90_LONG_TILES failed once in this process (then not tried again)


def fa4_installed() -> bool:
    """Whether the FlashAttention-4 package can be found (without importing its compiler libraries)."""
    try:
        return (
            importlib.util.find_spec("flash_attn") is not None
            and importlib.util.find_spec("flash_attn.cute") is not None
        )
    except (ImportError, ValueError):  # a broken parent package: treat as absent
        return False


def fa4_unavailable(device: torch.device) -> str | None:
    """Why FlashAttention-4 cannot run on ``device``, or None if it can."""
    device = torch.device(device)
    if device.type != "cuda":
        return f"FlashAttention-4 runs on CUDA GPUs only, not on {device.type}"
    major, minor = torch.cuda.get_device_capability(device)
    if major not in FA4_ARCHS:
        return f"FlashAttention-4 has forwards for sm90 and sm100 GPUs only; this one is sm{major}{minor}"
    if not fa4_installed():
        return f"FlashAttention-4 is not installed ({FA4_INSTALL})"
    return None


def resolve(name: str, device: torch.device) -> str:
    """The backend ``name`` means on ``device``: ``"auto"`` picks ``"fa4"`` where it can run, else ``"sdpa"``.

    Raises:
        ValueError: an unknown name, or ``"fa4"`` where it cannot run (the message says why).
    """
    if name not in ATTENTION_CHOICES:
        raise ValueError(f"unknown attention backend {name!r}; choose one of {ATTENTION_CHOICES}")
    if name == "auto":
        return "fa4" if fa4_unavailable(device) is None else "sdpa"
    if name == "fa4":
        reason = fa4_unavailable(device)
        if reason is not None:
            raise ValueError(f"attention backend 'fa4': {reason}; use 'sdpa' (or 'auto')")
    return name


def _import_fa4():
    os.environ.setdefault("FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED", "1")  # compiled kernels reused across processes
    return importlib.import_module(FA4_MODULE)


def preload() -> None:
    """Start importing FlashAttention-4 on a thread (once per process); ``fa4_module`` waits for it."""
    global _fa4_import
    with _fa4_lock:
        if _fa4_import is None:
            _fa4_import = Background(_import_fa4, "cpu", "cosmos-ar-fa4-import")


def fa4_module():
    """FlashAttention-4's interface module (imported by ``preload``'s thread; waits for it)."""
    preload()
    try:
        return _fa4_import.result()
    except ImportError as err:
        raise RuntimeError(f"attention backend 'fa4' could not import {FA4_MODULE} ({err}); {FA4_INSTALL}, "
                           "or use 'sdpa'") from None  # fmt: skip


def fa4_tiles(head_dim: int, kv_len: int, capability: tuple[int, int]) -> dict | None:
    """The tile arguments for FA4 at these shapes, or None for its default: ``SM90_LONG_TILES`` for head dim 128 and
    at least ``LONG_KV`` keys on a compute capability 9.x GPU, unless they failed before in this process."""
    if SM90_LONG_TILES is None or _tiles_refused is not None:
        return None
    return SM90_LONG_TILES if head_dim == 128 and kv_len >= LONG_KV and capability[0] == 9 else None


def fa4_attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, tiles: dict | None) -> torch.Tensor:
    """``[B, S, heads, D]`` attention on FlashAttention-4: with ``tiles`` (``fa4_tiles``) through its private
    ``_flash_attn_fwd``, falling back for good to ``flash_attn_func`` (its default) if that call fails once."""
    global _tiles_refused
    mod = fa4_module()
    if tiles is not None and _tiles_refused is None:
        try:
            return mod._flash_attn_fwd(q, k, v, **tiles)[0]
        except torch.OutOfMemoryError:
            raise
        except Exception as err:  # noqa: BLE001 -- a private call: any refusal means "use the public one"
            _tiles_refused = f"{err.__class__.__name__}: {str(err).strip()[:200]}"
            warnings.warn(f"FlashAttention-4 refused the DiT's tuned tiles ({_tiles_refused}); using its default "
                          "tiles (the same output, ~4% slower on an H200)", stacklevel=2)  # fmt: skip
    out = mod.flash_attn_func(q, k, v)
    return out[0] if isinstance(out, tuple) else out


def fa4_import_error() -> BaseException | None:
    """Wait for ``preload``'s import and return its error (None: FlashAttention-4 is ready)."""
    preload()
    return _fa4_import.exception()


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, backend: str, ops: dict) -> torch.Tensor:
    """``[B, S, heads, D]`` q and ``[B, S_kv, heads, D]`` k, v -> ``[B, S, heads*D]``; softmax scale 1/sqrt(D), no
    mask, no dropout. ``ops`` caches a backend's module (TransformerEngine's) for its caller."""
    b, s, heads, d = q.shape
    if backend == "fa4":
        tiles = fa4_tiles(d, k.shape[1], torch.cuda.get_device_capability(q.device)) if q.is_cuda else None
        return fa4_attend(q, k, v, tiles).reshape(b, s, heads * d)
    if backend == "te":
        if "te" not in ops:
            try:
                import transformer_engine.pytorch as te
            except ImportError as err:
                raise RuntimeError(f"attention backend 'te' needs TransformerEngine ({err}); use 'sdpa'") from None
            ops["te"] = te.DotProductAttention(
                heads, d, attention_dropout=0.0, qkv_format="bshd", attn_mask_type="no_mask"
            )
        return ops["te"](q.contiguous(), k.contiguous(), v.contiguous()).reshape(b, s, heads * d)
    with preferred_sdpa_backends(q.device):  # cuDNN first: faster than torch's default (flash) on the H200
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    return out.transpose(1, 2).reshape(b, s, heads * d)
