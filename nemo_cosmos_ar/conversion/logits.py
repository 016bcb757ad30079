"""Teacher-forced fp32 logits of any checkpoint the project reads, for parity checks (``cosmos-ar convert logits``).

The Megatron-Core model is built at TP = WORLD_SIZE (1 without torchrun) in fp32 on the available device. A NeMo
checkpoint is loaded the way training loads it (``dist_checkpointing.load`` of the model's sharded state dict, so any
saved TP works); a native one goes through ``checkpoint_mapping``. No NeMo import.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from nemo_cosmos_ar import checks
from nemo_cosmos_ar.conversion import native_io
from nemo_cosmos_ar.conversion.architecture import resolve_config, same_shapes
from nemo_cosmos_ar.conversion.nemo_reader import MODULE_PREFIX, NeMoCheckpointReader, is_nemo_checkpoint, lora_base
from nemo_cosmos_ar.model import checkpoint_mapping as cm
from nemo_cosmos_ar.model.config import CosmosARConfig
from nemo_cosmos_ar.model.presets import as_config


def compute_logits(
    checkpoint: str | Path, tokens: torch.Tensor, config: str | CosmosARConfig | None = None
) -> torch.Tensor:
    """Teacher-forced fp32 logits ``[B, S, vocab]`` of a NeMo checkpoint or a native one, gathered, on CPU, on every
    rank. ``config`` (preset name, config.json or ``CosmosARConfig``) must agree with a NeMo checkpoint's own
    architecture and chooses a native checkpoint's (default: ``architecture.resolve_config``'s rules)."""
    from nemo_cosmos_ar.model.mcore import build_gpt_model
    from nemo_cosmos_ar.runtime import gather_vocab_parallel, init_megatron, shutdown

    tp = int(os.environ.get("WORLD_SIZE", "1"))
    had_process_group = torch.distributed.is_initialized()
    device = init_megatron(tp=tp)
    from megatron.core import dist_checkpointing, parallel_state

    try:
        if is_nemo_checkpoint(checkpoint):
            if lora_base(checkpoint) is not False:
                raise checks.UserError(
                    f"{checkpoint} holds LoRA adapters only: `cosmos-ar convert export --checkpoint "
                    f"{checkpoint} --output <dir>` merges them into the base; run logits on that"
                )
            reader = NeMoCheckpointReader(checkpoint)
            cfg = reader.config
            if config is not None:  # an explicit architecture must agree with the checkpoint's own
                want = as_config(config)
                if not same_shapes(want, cfg):
                    raise cm.CheckpointMismatch(
                        f"{checkpoint} holds a {cfg.name!r} model ({cfg.n_layers} layers, dim {cfg.dim}), not the "
                        f"requested {want.name!r}; drop --model/--config"
                    )
            model = build_gpt_model(cfg, tensor_model_parallel_size=tp)
            sharded = model.sharded_state_dict(prefix=MODULE_PREFIX)
            loaded = dist_checkpointing.load(sharded, str(reader.weights))
            state = {k[len(MODULE_PREFIX) :]: v for k, v in loaded.items() if k.startswith(MODULE_PREFIX)}
        else:
            ckpt = native_io.load_native(checkpoint)
            cfg = resolve_config(ckpt, config)
            model = build_gpt_model(cfg, tensor_model_parallel_size=tp)
            spec = cm.layer_spec_of(name for name, _ in model.named_parameters())
            full = cm.native_to_mcore({k: v.float() for k, v in ckpt.tensors.items()}, cfg, spec)
            rank = parallel_state.get_tensor_model_parallel_rank()
            state = {k: cm.mcore_tp_slice(k, v, tp, rank) for k, v in full.items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("_extra_state")]
        if missing or unexpected:
            raise RuntimeError(f"weights did not load: missing {missing[:6]}, unexpected {unexpected[:6]}")
        if tokens.shape[1] > cfg.seq_length or int(tokens.min()) < 0 or int(tokens.max()) >= cfg.vocab_size:
            lo, hi = int(tokens.min()), int(tokens.max())
            raise ValueError(
                f"tokens {list(tokens.shape)} in [{lo}, {hi}] do not fit the model: at most "
                f"{cfg.seq_length} tokens (latent grid {list(cfg.latent_shape)}), ids < {cfg.vocab_size}"
            )
        model = model.to(device).eval()
        out = []
        with torch.no_grad():
            for row in tokens:
                ids = row[None].to(device)
                pos = torch.arange(ids.shape[1], device=device)[None]
                logits = gather_vocab_parallel(model(ids, pos, None))
                out.append(logits[..., : cfg.vocab_size].float().cpu())
        return torch.cat(out)
    finally:
        if had_process_group:  # the caller's group stays (re-creating one inside a torchrun launch desyncs ranks)
            parallel_state.destroy_model_parallel()
        else:
            shutdown()
