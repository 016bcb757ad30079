"""Run a post-training recipe for a few steps and report step time, tokens/s, model TFLOP/s and peak memory per GPU.

Runs the real NeMo path (``llm.finetune`` with the recipe's model, trainer, optimizer) on mock clips of the recipe's
token grid. Under ``torchrun`` it uses every process; ``--tp`` overrides the recipe's tensor-parallel size.

    python bench/bench_recipe.py --factory cosmos_ar_4b_tealrobotsmall_tp1 --steps 10
    torchrun --nproc-per-node=2 bench/bench_recipe.py --factory cosmos_ar_4b_tealrobot_tp4 --tp 2 --steps 8 \\
        --save-every 6 --out /tmp/tp          # then, on 1 GPU, the same --out resumes the TP=2 checkpoint at TP=1:
    python bench/bench_recipe.py --factory cosmos_ar_4b_tealrobot_tp4 --tp 1 --steps 8 --out /tmp/tp
    python bench/bench_recipe.py --smoke      # CPU: the tiny recipe (checks the script)
    python bench/bench_recipe.py --mem-cap-gib 78 --steps 20          # an 80 GB card's usable memory on an H200
    python bench/bench_recipe.py --grid 5x40x64 --set model.config.loss_impl=reference --profile /tmp/prof

``--set a.b=c`` overrides any field of the recipe (value parsed as a Python literal, else a string), as the ``nemo``
CLI would; ``--profile DIR`` runs the torch profiler over two steps after warm-up and prints the top CUDA kernels.

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
    p.add_argument(
        "--save-every",
        type=int,
        default=0,
        help="checkpoint interval; 0: no checkpoints (use a large value with --resume-from: NeMo's resume needs the callback)",
    )
    p.add_argument("--out", default=None, help="run folder (checkpoints); default a temp dir")
    p.add_argument("--resume-from", default=None, help="a checkpoint folder (.../checkpoints/step=N) to resume")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--precision", default=None, help="bf16 | bf16-mixed (default: the recipe's)")
    p.add_argument("--grid", default=None, help="latent grid TxHxW instead of the recipe's, e.g. 5x40x64")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", help="override a recipe field")
    p.add_argument(
        "--mem-cap-gib",
        type=float,
        default=0.0,
        help="cap this process's CUDA memory (set_per_process_memory_fraction) before the model is built",
    )
    p.add_argument("--profile", default=None, help="folder for the profiler table (steps 5-6)")
    p.add_argument("--label", default="", help="a name for this run in the RESULT line")
    p.add_argument("--peft", default=None, help="e.g. lora: the recipe's PEFT (to profile a LoRA step)")
    args = p.parse_args()

    import fiddle as fdl
    import lightning.pytorch as pl
    import nemo_run as run
    import torch

    from nemo_cosmos_ar.recipes import cosmos_ar

    world = int(os.environ.get("WORLD_SIZE", "1"))
    out = args.out or tempfile.mkdtemp(prefix="bench_recipe_")
    if args.smoke:
        task = cosmos_ar.tiny_cpu_recipe(
            output_root=out, max_steps=args.steps, devices=world, tensor_parallel=args.tp or 1
        )
        name = "cosmos_ar_tiny_cpu"
    else:
        name = args.factory
        extra = {"peft": args.peft} if args.peft else {}
        task = getattr(cosmos_ar, name)(max_steps=50_000, allow_random_init=True, **extra)  # mock clips, random weights
        task.log.log_dir = os.path.join(out, "posttraining", "autoregressive_base")
        task.trainer.devices = world
        if args.tp:
            task.trainer.strategy.tensor_model_parallel_size = args.tp
        tp = task.trainer.strategy.tensor_model_parallel_size
        task.data.global_batch_size = world // tp
        task.trainer.strategy.ckpt_async_save = False
        if args.precision:
            task.trainer.plugins.precision = args.precision
            task.trainer.strategy.ddp.grad_reduce_in_fp32 = args.precision != "bf16"
        if args.grid:
            grid = tuple(int(x) for x in args.grid.split("x"))
            task.model.config.latent_shape = grid
            task.data.latent_shape = grid
            for cb in task.trainer.callbacks:  # the metrics line derives its FLOPs from the model config then
                if hasattr(cb, "flops_per_token"):
                    cb.flops_per_token = 0.0
    for item in args.set:
        path, value = item.split("=", 1)
        _set(task, path, value)
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

    if args.mem_cap_gib and torch.cuda.is_available():
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, args.mem_cap_gib * 2**30 / total))
        print(f"memory cap: {args.mem_cap_gib:.1f} GiB of {total / 2**30:.1f} GiB", flush=True)

    class Probe(pl.Callback):
        def __init__(self):
            self.rows = []
            self.prof = None

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if args.profile and trainer.global_step == 4 and trainer.global_rank == 0:
                acts = torch.profiler.ProfilerActivity
                self.prof = torch.profiler.profile(activities=[acts.CUDA if torch.cuda.is_available() else acts.CPU])
                self.prof.__enter__()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            mem = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
            self.rows.append(
                (trainer.global_step, float(loss), time.perf_counter() - self.t0, mem, self.prof is not None)
            )  # profiled steps are slower: left out of the medians
            if self.prof is not None and trainer.global_step == 6:
                self.prof.__exit__(None, None, None)
                _profile_report(self.prof, args.profile, args.label or name, steps=2)
                self.prof = None

        def on_train_end(self, trainer, pl_module):
            if trainer.global_rank != 0 or not self.rows:
                return
            cfg = pl_module.config.cosmos_config()
            s = cfg.seq_length - 1
            dm = trainer.datamodule
            timed = [r[2] for r in self.rows[2:] if not r[4]] or [r[2] for r in self.rows]
            dt = statistics.median(timed)
            tps = dm.global_batch_size * s / dt / trainer.world_size
            res = {
                "factory": name,
                "world": trainer.world_size,
                "tp": trainer.strategy.tensor_model_parallel_size,
                "grid": list(cfg.latent_shape),
                "tokens_per_sample": s,
                "global_batch": dm.global_batch_size,
                "ms_per_step": dt * 1e3,
                "tokens_per_s_per_gpu": tps,
                "model_tflops_per_gpu": tps * cfg.train_flops_per_token(s) / 1e12,
                "peak_gib": max(r[3] for r in self.rows),
                "losses": {r[0]: r[1] for r in self.rows},
                "reserved_gib": torch.cuda.max_memory_reserved() / 2**30 if torch.cuda.is_available() else 0.0,
                "cap_gib": args.mem_cap_gib or None,
                "label": args.label,
                "sets": args.set,
                "precision": trainer.precision_plugin.mode if hasattr(trainer.precision_plugin, "mode") else "",
                "steps_timed": len(timed),
                "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
            }
            print("RESULT " + json.dumps(res), flush=True)

    task.trainer.callbacks.append(run.Config(Probe))
    fdl.build(task)()


def _set(task, path: str, value: str) -> None:
    import ast

    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    *parents, leaf = path.split(".")
    obj = task
    for part in parents:
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    setattr(obj, leaf, parsed)


def _profile_report(prof, folder: str, label: str, steps: int) -> None:
    """Top CUDA kernels over the profiled steps, and their time by kind (per step)."""
    os.makedirs(folder, exist_ok=True)
    events = [e for e in prof.key_averages() if e.device_time_total > 0 and e.device_type.name == "CUDA"]
    events.sort(key=lambda e: -e.device_time_total)
    total = sum(e.device_time_total for e in events)
    kinds = {}
    for e in events:
        kinds[_kind(e.key)] = kinds.get(_kind(e.key), 0.0) + e.device_time_total
    lines = [
        f"## profile: {label} ({steps} steps; CUDA time per step {total / steps / 1e3:.1f} ms)",
        "",
        "| kind | ms/step | share |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {k} | {v / steps / 1e3:.1f} | {100 * v / total:.1f}% |"
        for k, v in sorted(kinds.items(), key=lambda x: -x[1])
    ]
    lines += ["", "| kernel | calls/step | ms/step | share |", "|---|---:|---:|---:|"]
    for e in events[:30]:
        lines.append(
            f"| `{e.key[:90]}` | {e.count / steps:.0f} | {e.device_time_total / steps / 1e3:.2f} | "
            f"{100 * e.device_time_total / total:.1f}% |"
        )
    text = "\n".join(lines)
    print(text, flush=True)
    with open(os.path.join(folder, f"profile_{label.replace('/', '_')}.md"), "w") as f:
        f.write(text + "\n")


def _kind(name: str) -> str:
    n = name.lower()
    if any(k in n for k in ("gemm", "cutlass", "sm90_xmma", "nvjet", "cublas", "matmul")):
        return "matmul"
    if any(k in n for k in ("flash", "cudnn", "fmha", "attention", "sdpa")):
        return "attention"
    if any(k in n for k in ("nccl", "allreduce", "all_reduce")):
        return "communication"
    if "adam" in n or "multi_tensor" in n or "foreach" in n:
        return "optimizer"
    if "reduce" in n or "norm" in n:
        return "reductions/norms"
    if "memcpy" in n or "memset" in n or "copy" in n:
        return "copies"
    return "elementwise/other"


if __name__ == "__main__":
    main()
