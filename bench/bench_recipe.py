"""Run a post-training recipe for a few steps and report step time, tokens/s, model TFLOP/s and peak memory per GPU.

Runs the real NeMo path (``llm.finetune`` with the recipe's model, trainer, optimizer) on mock clips of the recipe's
token grid. Under ``torchrun`` it uses every process; ``--tp`` overrides the recipe's tensor-parallel size.

    python bench/bench_recipe.py --factory cosmos_ar_4b_tealrobotsmall_tp1 --steps 10
    torchrun --nproc-per-node=2 bench/bench_recipe.py --factory cosmos_ar_4b_tealrobot_tp4 --tp 2 --steps 8 \\
        --save-every 6 --out /tmp/tp          # then, on 1 GPU, the same --out resumes the TP=2 checkpoint at TP=1:
    python bench/bench_recipe.py --factory cosmos_ar_4b_tealrobot_tp4 --tp 1 --steps 8 --out /tmp/tp
    python bench/bench_recipe.py --smoke      # CPU: the tiny recipe (checks the script)

Prints one ``RESULT {json}`` line (rank 0) with per-step losses and the medians over steps after the first two.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--factory", default="cosmos_ar_4b_tealrobotsmall_tp1")
    p.add_argument("--tp", type=int, default=None)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--save-every", type=int, default=0,
                   help="checkpoint interval; 0: no checkpoints (use a large value with --resume-from: NeMo's resume needs the callback)")
    p.add_argument("--out", default=None, help="run folder (checkpoints); default a temp dir")
    p.add_argument("--resume-from", default=None, help="a checkpoint folder (.../checkpoints/step=N) to resume")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()

    import fiddle as fdl
    import lightning.pytorch as pl
    import nemo_run as run
    import torch

    from nemo_cosmos_ar.recipes import cosmos_ar

    world = int(os.environ.get("WORLD_SIZE", "1"))
    out = args.out or tempfile.mkdtemp(prefix="bench_recipe_")
    if args.smoke:
        task = cosmos_ar.tiny_cpu_recipe(output_root=out, max_steps=args.steps, devices=world, tensor_parallel=args.tp or 1)
        name = "cosmos_ar_tiny_cpu"
    else:
        name = args.factory
        task = getattr(cosmos_ar, name)(max_steps=50_000, allow_random_init=True)  # mock clips, random weights
        task.log.log_dir = os.path.join(out, "posttraining", "autoregressive_base")
        task.trainer.devices = world
        if args.tp:
            task.trainer.strategy.tensor_model_parallel_size = args.tp
        tp = task.trainer.strategy.tensor_model_parallel_size
        task.data.global_batch_size = world // tp
        task.trainer.strategy.ckpt_async_save = False
    task.trainer.max_steps = args.steps
    if args.resume_from:
        task.resume.resume_from_path = args.resume_from
    task.log.tensorboard = None
    ckpt = task.trainer.callbacks[0]
    ckpt.every_n_train_steps = args.save_every or 10**9
    # One checkpoint only: a 4B bf16-mixed checkpoint with optimizer state is ~56 GB.
    ckpt.save_last, ckpt.save_top_k, ckpt.save_optim_on_train_end = False, 1, False
    if not args.save_every:
        task.trainer.enable_checkpointing = False
        task.trainer.callbacks = task.trainer.callbacks[1:]
        task.log.ckpt = None

    class Probe(pl.Callback):
        def __init__(self):
            self.rows = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            mem = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
            self.rows.append((trainer.global_step, float(loss), time.perf_counter() - self.t0, mem))

        def on_train_end(self, trainer, pl_module):
            if trainer.global_rank != 0 or not self.rows:
                return
            cfg = pl_module.config.cosmos_config()
            s = cfg.seq_length - 1
            dm = trainer.datamodule
            timed = [r[2] for r in self.rows[2:]] or [r[2] for r in self.rows]
            dt = statistics.median(timed)
            tps = dm.global_batch_size * s / dt / trainer.world_size
            res = {
                "factory": name, "world": trainer.world_size, "tp": trainer.strategy.tensor_model_parallel_size,
                "grid": list(cfg.latent_shape), "tokens_per_sample": s, "global_batch": dm.global_batch_size,
                "ms_per_step": dt * 1e3, "tokens_per_s_per_gpu": tps,
                "model_tflops_per_gpu": tps * cfg.train_flops_per_token(s) / 1e12,
                "peak_gib": max(r[3] for r in self.rows), "losses": {r[0]: r[1] for r in self.rows},
                "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
            }  # fmt: skip
            print("RESULT " + json.dumps(res), flush=True)

    task.trainer.callbacks.append(run.Config(Probe))
    fdl.build(task)()


if __name__ == "__main__":
    main()
