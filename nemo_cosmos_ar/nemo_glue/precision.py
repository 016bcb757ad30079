"""Training precision modes, chosen per recipe with one string (NeMo glue).

| mode | weights | gradients (reduced in) | Adam states | master copy | 4B optimizer+grads |
| --- | --- | --- | --- | --- | --- |
| ``"bf16"`` | bf16 | bf16 | bf16 | none | 24 GB |
| ``"bf16-mixed"`` | bf16 | fp32 | fp32 | fp32 | 64 GB |
| ``"32"`` | fp32 | fp32 | fp32 | none | 48 GB (CPU tests) |

``"bf16"`` is how cosmos-predict1 post-trains (bf16 parameters, fused AdamW directly on them): it is what lets the
4B train on one 80 GB GPU. ``"bf16-mixed"`` is NeMo's usual mode: more memory, updates smaller than bf16's
resolution are not lost.

NeMo's ``MegatronMixedPrecision`` writes its dtype settings into the optimizer config, and Megatron-Core builds the
fp32-master ``Float16OptimizerWithFloat16Params`` whenever that config says ``bf16``. Pure bf16 therefore needs two
small pieces: ``CosmosPrecision`` (says whether master weights are wanted, and reduces gradients in bf16) and
``CosmosOptimizerModule`` (builds Megatron's plain ``FP32Optimizer`` — which steps the parameters in their own dtype —
when the precision plugin says so, and switches torch AdamW to its fused kernel on GPU). Checkpoints of either mode
resume in the other: see ``CosmosOptimizerModule`` and ``tests/test_precision.py``.
"""

# No `from __future__ import annotations`: nemo-run parses `a.b=c` CLI overrides from the real annotations.

import dataclasses
import math
from typing import Optional

import torch
from nemo.lightning.pytorch.optim import MegatronOptimizerModule
from nemo.lightning.pytorch.plugins.mixed_precision import MegatronMixedPrecision
from nemo.lightning.pytorch.strategies import MegatronStrategy
from nemo.utils import logging

PRECISION_MODES = ("bf16", "bf16-mixed", "32")


def check_precision(precision: str) -> str:
    if precision not in PRECISION_MODES:
        raise ValueError(f"precision={precision!r} is not a training mode; use one of {', '.join(PRECISION_MODES)}")
    return precision


class CosmosPrecision(MegatronMixedPrecision):
    """``MegatronMixedPrecision`` with the Cosmos precision modes (table in the module docstring)."""

    def __init__(self, precision: str = "bf16") -> None:
        check_precision(precision)
        if precision == "32":
            super().__init__(precision="32", params_dtype=torch.float32, grad_reduce_in_fp32=True)
        else:
            super().__init__(
                precision="bf16-mixed", params_dtype=torch.bfloat16, grad_reduce_in_fp32=precision == "bf16-mixed"
            )
        self.mode = precision
        self.master_weights = precision != "bf16"

    def convert_optimizer(self, optimizer):
        # The parent asserts that the optimizer config says bf16 like the model; pure bf16 builds it without.
        return super().convert_optimizer(optimizer) if self.master_weights else optimizer


class CosmosStrategy(MegatronStrategy):
    """``MegatronStrategy`` that records in each checkpoint's metadata whether it holds fp32 master weights, so an
    optimizer of the other precision mode can ask for exactly what is there (see ``_cross_mode_checkpoints``)."""

    @property
    def sharded_state_dict_metadata(self):
        metadata = super().sharded_state_dict_metadata
        metadata[MASTER_WEIGHTS_KEY] = bool(getattr(self.precision_plugin, "master_weights", True))
        return metadata


MASTER_WEIGHTS_KEY = "cosmos_master_weights"


class CosmosOptimizerModule(MegatronOptimizerModule):
    """``MegatronOptimizerModule`` that follows ``CosmosPrecision`` and uses fused AdamW on GPU.

    ``fused_adam``: None = on when the parameters are on a GPU. Megatron-Core creates ``torch.optim.AdamW`` without
    choosing an implementation (the multi-tensor ``foreach`` one), which reads and writes the optimizer state in
    several passes; the fused kernel does one.
    """

    def __init__(self, config, lr_scheduler=None, fused_adam: Optional[bool] = None, **kwargs) -> None:
        super().__init__(config, lr_scheduler, **kwargs)
        self.fused_adam = fused_adam

    def optimizers(self, model):
        plugin = getattr(getattr(model, "trainer", None), "precision_plugin", None)
        if getattr(plugin, "master_weights", True):
            optimizers = super().optimizers(model)
        else:
            # Megatron-Core picks FP32Optimizer (no master copy: AdamW steps the bf16 parameters and keeps its
            # states in their dtype) when the config says neither bf16 nor fp16; the model itself stays bf16.
            # Its gradient clipping asserts fp32 gradients, so clipping is done here (``clip_bf16_grads``).
            config = self.config
            self.config = dataclasses.replace(config, bf16=False, fp16=False, clip_grad=0.0)
            try:
                optimizers = super().optimizers(model)
            finally:
                self.config = config
            for opt in optimizers:
                clip_bf16_grads(getattr(opt, "mcore_optimizer", opt), config.clip_grad)
        for leaf in _leaf_optimizers(optimizers):
            _cross_mode_checkpoints(leaf)
        return optimizers

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        super().on_train_batch_start(trainer, pl_module, batch, batch_idx)
        # Here rather than at creation: loading a checkpoint replaces the param groups (and their flags).
        for leaf in _leaf_optimizers(self._optimizers or []):
            use_fused_adam(leaf.optimizer, self.fused_adam)


def clip_bf16_grads(mcore, max_norm: float) -> None:
    """Global-norm gradient clipping for bf16 gradients, in place of Megatron's (which asserts fp32 ones).

    Replaces the optimizer's ``get_grad_norm``, which Megatron calls once per step after the gradients are in
    ``param.grad`` and before the update, so the norm it logs is this one. The norm is computed like Megatron's
    ``get_grad_norm_fp32`` (L2 over the gradients that are not tensor-parallel duplicates, summed over the
    grad-stats group) but in fp32 from per-tensor norms with one host sync, where Megatron's fallback without apex
    syncs once per tensor. A non-finite norm stops training with one line, as Megatron's NaN check would.
    """
    leaves = _leaf_optimizers([mcore])

    def get_grad_norm() -> float:
        grads = [g for leaf in leaves for g in leaf.get_main_grads_for_grad_norm()]
        if grads:
            squares = torch.stack(torch._foreach_norm(grads, 2.0, dtype=torch.float32)).pow(2).sum()
        else:
            squares = torch.zeros((), dtype=torch.float32, device=torch.cuda.current_device())
        group = mcore.get_grad_stats_parallel_group()
        if group is not None and torch.distributed.is_initialized():
            torch.distributed.all_reduce(squares, group=group)
        norm = float(squares.sqrt())
        if not math.isfinite(norm):
            raise FloatingPointError(
                f"the gradient norm is {norm}: training diverged (lower optim.config.lr, or "
                "resume from an earlier checkpoint)"
            )
        mcore._cosmos_last_norm = norm
        if max_norm > 0 and norm > max_norm:
            every = [p.grad for leaf in leaves for p in leaf.get_parameters() if p.grad is not None]
            torch._foreach_mul_(every, max_norm / (norm + 1e-6))
        return norm

    mcore.get_grad_norm = get_grad_norm


def _leaf_optimizers(optimizers) -> list:
    """The Megatron optimizers under NeMo's wrapper and Megatron's ``ChainedOptimizer`` (one per param-group set)."""
    leaves = []
    for opt in optimizers:
        mcore = getattr(opt, "mcore_optimizer", opt)
        leaves.extend(getattr(mcore, "chained_optimizers", [mcore]))
    return leaves


def use_fused_adam(optimizer, fused: Optional[bool] = None) -> bool:
    """Switch a ``torch.optim.Adam(W)`` to the fused kernel (``fused=None``: when every parameter is on a GPU).

    torch reads ``group["fused"]`` at each step; the step counters must then be float32 tensors on the parameters'
    device, which a checkpoint loaded on the host may not give.
    """
    if not isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW):
        return False
    params = [p for g in optimizer.param_groups for p in g["params"]]
    if fused is None:
        fused = bool(params) and all(p.is_cuda for p in params)
    if not fused:
        return False
    for group in optimizer.param_groups:
        if group.get("fused"):
            continue
        group["fused"], group["foreach"] = True, False
        for p in group["params"]:
            state = optimizer.state.get(p)
            if state and "step" in state:
                step = state["step"]
                state["step"] = torch.as_tensor(float(step), dtype=torch.float32, device=p.device)
    return True


def _cross_mode_checkpoints(leaf) -> None:
    """Give both precision modes one checkpoint layout, so either resumes the other.

    Both save the Adam moments under the same sharded keys (``optimizer.state.exp_avg.<param>``); they load into
    the receiving optimizer's dtype. What differs is the nesting around them, and Megatron's loader requires the
    requested nesting to equal the saved one: ``Float16OptimizerWithFloat16Params`` (bf16-mixed) saves
    ``{"optimizer": {state, param_groups}, "fp32_from_fp16_params": [[fp32 masters]]}``, ``FP32Optimizer`` saves
    ``{state, param_groups}``. In pure bf16 the ``FP32Optimizer`` here saves and requests the first layout with
    empty master lists (the fp32 masters of a bf16-mixed checkpoint are then simply not read: the bf16 weights were
    rounded from them at its last step). A bf16-mixed optimizer restoring a pure-bf16 checkpoint (``CosmosStrategy``
    marks it in the checkpoint's metadata) asks for no masters and starts them from the loaded bf16 weights: all the
    information there is.
    """
    if getattr(leaf, "_cosmos_cross_mode", False):
        return
    leaf._cosmos_cross_mode = True
    if hasattr(leaf, "fp32_from_float16_groups"):  # bf16-mixed
        sharded, load = leaf.sharded_state_dict, leaf.load_state_dict

        def mixed_sharded_state_dict(model_sharded_state_dict, is_loading=False, metadata=None, **kwargs):
            out = sharded(model_sharded_state_dict, is_loading, metadata=metadata, **kwargs)
            if is_loading and (metadata or {}).get(MASTER_WEIGHTS_KEY) is False:
                out["fp32_from_fp16_params"] = [[] for _ in out["fp32_from_fp16_params"]]
            return out

        def load_state_dict(state_dict):
            masters = state_dict.get("fp32_from_fp16_params")
            load(state_dict)
            if not masters or not any(masters):
                for fp32_group, model_group in zip(leaf.fp32_from_float16_groups, leaf.float16_groups):
                    for master, param in zip(fp32_group, model_group):
                        master.data.copy_(param.data)
                logging.info("checkpoint of pure-bf16 training: the fp32 master weights start from its bf16 weights")

        leaf.sharded_state_dict, leaf.load_state_dict = mixed_sharded_state_dict, load_state_dict
        return
    params = [p for g in leaf.param_groups for p in g["params"]]
    if not params or params[0].dtype != torch.bfloat16:  # "32": keep Megatron's own layout
        return
    sharded, load = leaf.sharded_state_dict, leaf.load_state_dict

    def sharded_state_dict(model_sharded_state_dict, is_loading=False, **kwargs):
        inner = sharded(model_sharded_state_dict, is_loading, **kwargs)
        return {"optimizer": inner, "fp32_from_fp16_params": [[] for _ in inner["param_groups"]]}

    def load_state_dict(state_dict):
        return load(state_dict["optimizer"] if "optimizer" in state_dict else state_dict)

    leaf.sharded_state_dict, leaf.load_state_dict = sharded_state_dict, load_state_dict
