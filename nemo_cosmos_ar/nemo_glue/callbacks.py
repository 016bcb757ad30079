"""Training metrics users need, as one Lightning callback (NeMo glue).

Per step, on rank 0 only (no collectives here: the values were already reduced inside the step): training loss,
cross-entropy, z-loss, teacher-forced next-token accuracy, learning rate, step time, tokens/s per GPU and model
TFLOP/s per GPU -- printed as one log line and logged to TensorBoard/W&B through Lightning.
"""

# No `from __future__ import annotations`: nemo-run parses `a.b=c` CLI overrides from the real annotations.

import time

import lightning.pytorch as pl
import torch


class CosmosARMetrics(pl.Callback):
    """``flops_per_token``: model FLOPs per trained token (``CosmosARConfig.train_flops_per_token``); 0 = derive it
    from the model config at fit start."""

    def __init__(self, flops_per_token: float = 0.0, print_every: int = 1) -> None:
        self.flops_per_token = flops_per_token
        self.print_every = max(1, print_every)
        self._t0 = None

    def on_fit_start(self, trainer, pl_module) -> None:
        if not self.flops_per_token and hasattr(pl_module.config, "cosmos_config"):
            cfg = pl_module.config.cosmos_config()
            self.flops_per_token = cfg.train_flops_per_token(cfg.seq_length - 1)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        dt = time.perf_counter() - (self._t0 or time.perf_counter())
        dm = trainer.datamodule
        tokens = dm.global_batch_size * dm.seq_length
        world = max(1, trainer.world_size)
        tps = tokens / max(dt, 1e-9) / world
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        metrics = {"train/loss": float(loss.detach()) if torch.is_tensor(loss) else float(loss)}
        extra = getattr(pl_module.training_loss_reduction, "last_metrics", {}) or {}
        metrics.update({f"train/{k}": v for k, v in extra.items()})
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else 0.0
        metrics.update(
            {
                "train/lr": lr,
                "perf/step_time_s": dt,
                "perf/tokens_per_s_per_gpu": tps,
                "perf/model_tflops_per_gpu": tps * self.flops_per_token / 1e12,
            }
        )
        if torch.cuda.is_available():
            metrics["perf/peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
        pl_module.log_dict(metrics, on_step=True, on_epoch=False, batch_size=1, rank_zero_only=True)
        if trainer.global_rank == 0 and trainer.global_step % self.print_every == 0:
            acc = extra.get("accuracy", float("nan"))
            print(
                f"step {trainer.global_step}/{trainer.max_steps} loss {metrics['train/loss']:.4f} "
                f"ce {extra.get('ce', float('nan')):.4f} z {extra.get('z_loss', float('nan')):.2f} acc {acc:.3f} "
                f"lr {lr:.3e} | {dt * 1000:.0f} ms/step {tps:,.0f} tok/s/gpu "
                f"{metrics['perf/model_tflops_per_gpu']:.3g} TFLOP/s/gpu",
                flush=True,
            )

    def on_validation_end(self, trainer, pl_module) -> None:
        val = trainer.callback_metrics.get("val_loss")
        if trainer.global_rank == 0 and val is not None and not trainer.sanity_checking:
            extra = getattr(pl_module.validation_loss_reduction, "last_metrics", {}) or {}
            print(
                f"validation at step {trainer.global_step}: loss {float(val):.4f} ce {extra.get('ce', float('nan')):.4f} "
                f"acc {extra.get('accuracy', float('nan')):.3f}",
                flush=True,
            )
