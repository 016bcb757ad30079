"""Small explicit builders the recipes compose (NeMo glue). No hidden defaults: every knob is an argument.

Defaults follow cosmos-predict1's AR post-training experiments: AdamW lr 1e-3, weight decay 0.05, betas
(0.9, 0.999), eps 1e-8, linear warm-up 5,000 steps (of 50,000) then cosine to 1e-8, gradient clipping 1.0, one clip
per GPU. A shorter run warms up for 10% of its steps (``warmup_for``). Precision is one of
``nemo_glue.precision.PRECISION_MODES``: "bf16" (cosmos-predict1's pure bf16: no fp32 master copy, bf16 Adam states)
by default on GPU, "bf16-mixed" (NeMo's usual fp32 masters) on request, "32" on CPU.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

import nemo_run as run
import torch
from megatron.core.optimizer import OptimizerConfig
from nemo import lightning as nl
from nemo.collections.llm.recipes.log.default import tensorboard_logger
from nemo.lightning.pytorch.optim import CosineAnnealingScheduler

from nemo_cosmos_ar.nemo_glue.callbacks import CosmosARMetrics
from nemo_cosmos_ar.nemo_glue.lora import (
    DEFAULT_ALPHA,
    DEFAULT_DIM,
    DEFAULT_DROPOUT,
    TARGET_MODULES,
    CosmosLoRA,
    CosmosLoRAMetrics,
)
from nemo_cosmos_ar.nemo_glue.precision import CosmosOptimizerModule, CosmosPrecision, CosmosStrategy, check_precision
from nemo_cosmos_ar.nemo_glue.resume import CosmosAutoResume

PROJECT, GROUP = "posttraining", "autoregressive_base"
# cosmos-predict1's post-training schedule: 5,000 warm-up steps in a 50,000-step run.
WARMUP_STEPS, WARMUP_FRACTION = 5000, 0.1


def warmup_for(max_steps: int, warmup_steps: int = WARMUP_STEPS) -> int:
    """Warm-up of a ``max_steps`` run: ``warmup_steps``, but at most 10% of the run (at least 1 step), so a
    shortened run still reaches its peak learning rate (1,000 steps -> 100)."""
    return max(1, min(warmup_steps, int(max_steps * WARMUP_FRACTION)))


def note(message: str) -> None:
    """One line about a choice a recipe made for the user (a shortened warm-up, mock data ...), on stderr."""
    print(f"[cosmos_ar] {message}", file=sys.stderr, flush=True)


def output_root() -> str:
    """``$OUTPUT_ROOT`` (cosmos-predict1's convention), default ``checkpoints``."""
    return os.environ.get("OUTPUT_ROOT", "checkpoints")


def run_dir(name: str, root: Optional[str] = None) -> str:
    """``<root>/posttraining/autoregressive_base/<name>``: where cosmos-predict1 users look for checkpoints."""
    return os.path.join(root or output_root(), PROJECT, GROUP, name)


def trainer(
    *,
    num_nodes: int = 1,
    devices: int = 1,
    tensor_parallel: int = 1,
    context_parallel: int = 1,
    sequence_parallel: bool = False,
    max_steps: int = 50_000,
    val_check_interval: int = 1000,
    limit_val_batches: float = 1.0,
    log_every_n_steps: int = 1,
    accelerator: str = "gpu",
    precision: str = "bf16",
    save_every: int = 1000,
    keep_last: int = 2,
    ckpt_async_save: bool = True,
    flops_per_token: float = 0.0,
) -> run.Config[nl.Trainer]:
    strategy = run.Config(
        CosmosStrategy,
        tensor_model_parallel_size=tensor_parallel,
        pipeline_model_parallel_size=1,
        context_parallel_size=context_parallel,
        sequence_parallel=sequence_parallel and tensor_parallel > 1,
        ckpt_async_save=ckpt_async_save,
        ckpt_parallel_load=accelerator == "gpu",
        ckpt_load_strictness="log_all",
        ddp=run.Config(
            nl.pytorch.strategies.megatron_strategy.DistributedDataParallelConfig,
            grad_reduce_in_fp32=check_precision(precision) != "bf16",
            overlap_grad_reduce=accelerator == "gpu",
            overlap_param_gather=False,
            # Pure bf16 checks the gradient norm for NaN/Inf once per step (nemo_glue/precision.py); Megatron's check
            # costs a norm and a host sync per bucket (27 ms of a 300 ms 4B step on an H200).
            use_distributed_optimizer=False,
            check_for_nan_in_grad=precision != "bf16",
        ),
    )
    checkpoint = run.Config(
        nl.ModelCheckpoint,
        every_n_train_steps=save_every,
        save_top_k=keep_last,
        monitor="step",
        mode="max",
        save_last=True,
        filename="{step}",
        save_optim_on_train_end=True,
    )
    return run.Config(
        nl.Trainer,
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        max_steps=max_steps,
        val_check_interval=val_check_interval,
        check_val_every_n_epoch=None,  # validate every val_check_interval steps, however long an epoch is
        limit_val_batches=limit_val_batches,
        num_sanity_val_steps=0,
        log_every_n_steps=log_every_n_steps,
        # NeMo's progress printer runs a collective on rank 0 only, which desynchronises gloo; our callback prints
        # a per-step line instead.
        enable_progress_bar=False,
        use_distributed_sampler=False,
        strategy=strategy,
        plugins=run.Config(CosmosPrecision, precision=precision),
        callbacks=[checkpoint, run.Config(CosmosARMetrics, flops_per_token=flops_per_token)],
    )


def optimizer(
    *,
    lr: float = 1e-3,
    min_lr: float = 1e-8,
    warmup_steps: int = 5000,
    max_steps: int = 50_000,
    weight_decay: float = 0.05,
    clip_grad: float = 1.0,
    distributed_optimizer: bool = False,
    bf16: bool = True,
) -> run.Config[CosmosOptimizerModule]:
    cfg = run.Config(
        OptimizerConfig,
        optimizer="adam",
        lr=lr,
        min_lr=min_lr,
        weight_decay=weight_decay,
        adam_beta1=0.9,
        adam_beta2=0.999,
        adam_eps=1e-8,
        clip_grad=clip_grad,
        bf16=bf16,
        fp16=False,
        params_dtype=torch.bfloat16 if bf16 else torch.float32,
        use_distributed_optimizer=distributed_optimizer,
    )
    sched = run.Config(
        CosineAnnealingScheduler, warmup_steps=warmup_steps, max_steps=max_steps, min_lr=min_lr, constant_steps=0
    )
    # bf16 here only says "the model is bf16"; whether Adam keeps fp32 master weights is the precision plugin's call.
    return run.Config(CosmosOptimizerModule, config=cfg, lr_scheduler=sched)


def logger(name: str, root: Optional[str] = None) -> run.Config[nl.NeMoLogger]:
    return run.Config(
        nl.NeMoLogger,
        log_dir=os.path.dirname(run_dir(name, root)),
        name=name,
        use_datetime_version=False,
        tensorboard=tensorboard_logger(name=name),
        wandb=None,
    )


def resume(base_checkpoint: Optional[str] = None, allow_random_init: bool = False) -> run.Config[CosmosAutoResume]:
    """Resume this run's own last checkpoint if there is one; otherwise start from ``base_checkpoint`` (a NeMo
    checkpoint made by ``cosmos-ar convert import``: weights only). With neither, the run refuses to start unless
    ``allow_random_init``. The restore config is always present, so ``resume.restore_config.path=...`` works."""
    restore = run.Config(
        nl.RestoreConfig, path=base_checkpoint, load_model_state=True, load_optim_state=False, load_artifacts=False
    )
    return run.Config(
        CosmosAutoResume,
        restore_config=restore,
        resume_if_exists=True,
        resume_ignore_no_checkpoint=True,
        allow_random_init=allow_random_init,
    )


LORA_TAG = "_lora"  # LoRA runs log and checkpoint under <name>_lora


def peft(scheme: Optional[str]) -> Optional[run.Config[CosmosLoRA]]:
    """The ``peft`` of a finetune task for the factories' ``peft=`` argument: None (or "none") trains all weights;
    "lora" gives ``CosmosLoRA`` with its defaults written out, so ``--dryrun`` shows them and ``peft.dim=16``,
    ``peft.alpha=...``, ``peft.dropout=...``, ``peft.target_modules=[...]`` override them (``nemo_glue/lora.py``
    explains each default). Raises ``ValueError`` for any other scheme."""
    if scheme is None or str(scheme).strip().lower() in ("", "none", "null"):
        return None
    if str(scheme).strip().lower() != "lora":
        raise ValueError(
            f"peft={scheme!r}: Cosmos AR recipes take peft='lora' (LoRA adapters on the frozen model) "
            "or peft=None (the default: train all weights)"
        )
    return run.Config(
        CosmosLoRA, target_modules=list(TARGET_MODULES), dim=DEFAULT_DIM, alpha=DEFAULT_ALPHA, dropout=DEFAULT_DROPOUT
    )


def finish_peft(task) -> None:
    """Make a finetune task whose ``peft`` is set a LoRA run; idempotent (the factories and the ``nemo`` CLI hook,
    after ``peft=`` overrides, both call it).

    * The run is named ``<name>_lora``: its checkpoints hold adapters only, so a LoRA run must never pick up a full
      run's checkpoints as its own (``resume_if_exists``), nor a full run a LoRA run's.
    * Model TFLOP/s follow the LoRA count (``nemo_glue.lora.lora_train_flops_per_token``).
    """
    if getattr(task, "peft", None) is None:
        return
    log = task.log
    if LORA_TAG not in log.name:
        log.name += LORA_TAG
        if getattr(log, "tensorboard", None) is not None:
            log.tensorboard.name = log.name
    callbacks = task.trainer.callbacks
    for i, cb in enumerate(callbacks):
        if getattr(cb, "__fn_or_cls__", None) is CosmosARMetrics:
            callbacks[i] = run.Config(CosmosLoRAMetrics, flops_per_token=0.0)  # counted at fit start
