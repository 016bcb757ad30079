"""Run the tiny CPU recipe in-process (optionally under torchrun) and record the per-step losses.

    python train_tiny.py --out DIR --losses FILE [--tp 2] [--max-steps N] [--sched-steps N] [--kill-after N]

``--kill-after N`` SIGKILLs the process group right after step N finished (no clean-up, helper processes such as
the checkpoint writer's included), to test resume. Start it in its own session.
"""

import argparse
import json
import os
import signal


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--losses", required=True)
    p.add_argument("--tp", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=20)
    p.add_argument("--sched-steps", type=int, default=20)
    p.add_argument("--save-every", type=int, default=10)
    p.add_argument("--kill-after", type=int, default=0)
    p.add_argument("--data-path", default=None)
    p.add_argument("--precision", default="32", help="32 | bf16 | bf16-mixed")
    p.add_argument("--clip", type=float, default=0.0, help="gradient clipping (optim.config.clip_grad)")
    p.add_argument("--grad-accum-fusion", action="store_true", help="model.config.gradient_accumulation_fusion")
    p.add_argument("--dump-optim", default=None, help="write the Adam moments' sums here after each step (json)")
    args = p.parse_args()

    import fiddle as fdl
    import lightning.pytorch as pl
    import nemo_run as run
    import torch

    from nemo_cosmos_ar.recipes.cosmos_ar import tiny_cpu_recipe

    world = int(os.environ.get("WORLD_SIZE", "1"))
    task = tiny_cpu_recipe(output_root=args.out, max_steps=args.sched_steps, devices=world, tensor_parallel=args.tp,
                           save_every=args.save_every, data_path=args.data_path,
                           precision=args.precision)  # fmt: skip
    task.trainer.max_steps = args.max_steps
    task.optim.config.clip_grad = args.clip
    task.model.config.gradient_accumulation_fusion = args.grad_accum_fusion
    task.log.tensorboard = None

    class Recorder(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_rank == 0:
                loss = outputs["loss"] if isinstance(outputs, dict) else outputs
                with open(args.losses, "a") as f:
                    f.write(json.dumps({"step": trainer.global_step, "loss": float(loss)}) + "\n")
            if args.dump_optim and trainer.global_rank == 0:
                leaf = trainer.optimizers[0].mcore_optimizer
                leaf = getattr(leaf, "chained_optimizers", [leaf])[0]
                opt = leaf.optimizer
                states = [s for s in opt.state.values() if "exp_avg" in s]
                model_param = next(p for p in pl_module.parameters() if p.requires_grad)
                row = {"step": trainer.global_step, "leaf": type(leaf).__name__,
                       "param_dtype": str(opt.param_groups[0]["params"][0].dtype),
                       "moment_dtype": str(states[0]["exp_avg"].dtype),
                       "grad_dtype": str(model_param.main_grad.dtype),
                       "grad_norm": float(getattr(trainer.optimizers[0].mcore_optimizer, "_cosmos_last_norm", float("nan")))}  # fmt: skip
                for k in ("exp_avg", "exp_avg_sq"):
                    row[k] = sum(float(s[k].double().abs().sum()) for s in states)
                with open(args.dump_optim, "a") as f:
                    f.write(json.dumps(row) + "\n")
            if args.kill_after and trainer.global_step >= args.kill_after:
                os.killpg(os.getpgid(0), signal.SIGKILL)  # a hard kill: no checkpoint on exit, no shutdown

    task.trainer.callbacks.append(run.Config(Recorder))
    fdl.build(task)()


if __name__ == "__main__":
    main()
