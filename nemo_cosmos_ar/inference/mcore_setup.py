"""Megatron-Core set-up for the decode engine (``engine.py`` re-exports these names): its quiet import without the
extension builds it would start, torch.distributed and Megatron's parallel state at a TP size, and the training
``GPTModel`` built empty for a checkpoint to fill. No NeMo import."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import warnings

import torch
import torch.distributed as dist

from nemo_cosmos_ar.model.config import CosmosARConfig


@contextlib.contextmanager
def skip_megatron_extension_builds():
    """While active, ``torch.utils.cpp_extension.load_inline`` refuses the builds Megatron-Core starts on import and
    nothing here uses (``compat.refuse_unused_builds``: ~20 s of g++ on a fresh machine with a CUDA toolkit); every
    other name is built as usual. Restored afterwards: importing this library changes nothing process-wide."""
    from torch.utils import cpp_extension

    from nemo_cosmos_ar.compat import refuse_unused_builds

    real = cpp_extension.load_inline
    cpp_extension.load_inline = refuse_unused_builds(real)
    try:
        yield
    finally:
        cpp_extension.load_inline = real


def _quiet_megatron_import() -> None:
    """Import Megatron-Core with its import-time chatter (apex/TE fallbacks, experimental notices) silenced, and
    without the extension build it would start (``skip_megatron_extension_builds``)."""
    import logging

    with warnings.catch_warnings(), skip_megatron_extension_builds():
        warnings.simplefilter("ignore")
        level = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            import megatron.core.models.gpt  # noqa: F401
            import megatron.core.tensor_parallel  # noqa: F401

            from nemo_cosmos_ar.model import layer_spec  # noqa: F401  (builds the spec's imports)
        finally:
            logging.disable(level)


def world() -> tuple[int, int]:
    """``(rank, world size)`` of this process: torchrun's environment, else (0, 1)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def init_parallel(tp: int, device: torch.device | None = None) -> torch.device:
    """torch.distributed (NCCL on GPU, gloo on CPU) and Megatron's parallel state at ``tp``; this rank's device.

    Works under torchrun (one GPU per rank: ``cuda:LOCAL_RANK``) and as a single process (a one-rank group on a free
    port). ``device``: "cpu" or a CUDA device (default: CUDA when present). Idempotent; refuses a parallel state
    already set up at another TP size.
    """
    _quiet_megatron_import()
    from megatron.core import parallel_state, tensor_parallel

    rank, size = world()
    if size != tp:
        raise ValueError(
            f"tensor parallelism {tp} needs {tp} processes, this run has {size}: start it as "
            f"`torchrun --nproc-per-node {tp} ... cosmos-ar generate --num-gpus {tp}`"
        )
    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        if size > 1:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            if device.index not in (None, local):
                raise ValueError(
                    f"--device {device}: under torchrun each rank uses its own GPU (cuda:LOCAL_RANK); "
                    "drop the device index"
                )
            device = torch.device("cuda", local)
        elif device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        if "MASTER_ADDR" not in os.environ or "RANK" not in os.environ:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if parallel_state.model_parallel_is_initialized():
        have = parallel_state.get_tensor_model_parallel_world_size()
        if have != tp:
            raise ValueError(f"Megatron's parallel state is already set up at TP={have}, not {tp}")
    else:
        parallel_state.initialize_model_parallel(tensor_model_parallel_size=tp)
        if device.type == "cuda":
            tensor_parallel.model_parallel_cuda_manual_seed(1234)  # dropout is 0; the tracker must merely exist
    return device


def check_tp(cfg: CosmosARConfig, tp: int) -> None:
    """Megatron splits whole KV groups and vocab rows across TP ranks: ``tp`` must divide both."""
    if tp < 1 or cfg.n_kv_heads % tp or cfg.n_heads % tp:
        raise ValueError(
            f"--num-gpus {tp} must divide the model's {cfg.n_kv_heads} KV heads and {cfg.n_heads} "
            f"attention heads (e.g. 1, 2, 4 or 8 for the 4B and 12B)"
        )


def build_model(cfg: CosmosARConfig, tp: int, device: torch.device, dtype: torch.dtype, vocab_rows: int | None = None):
    """The training ``GPTModel`` for ``cfg`` at ``tp``, parameters allocated on ``device`` in ``dtype`` and left
    uninitialised (the checkpoint fills them; no 4B random init). ``vocab_rows``: a padded embedding size (a
    checkpoint saved with Megatron's vocab padding); the logits are cut back to ``cfg.vocab_size``."""
    _quiet_megatron_import()
    from nemo_cosmos_ar.model.mcore import build_gpt_model

    check_tp(cfg, tp)
    build_cfg = dataclasses.replace(cfg, vocab_size=vocab_rows) if vocab_rows else cfg
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_gpt_model(
            build_cfg,
            params_dtype=dtype,
            tensor_model_parallel_size=tp,
            perform_initialization=False,
            use_cpu_initialization=device.type != "cuda",
        )
    # Every parameter in ``dtype``: Megatron creates the torch RMSNorm weights in the default dtype whatever
    # params_dtype says (training's Float16Module casts them the same way for a bf16 run).
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)
