"""Run the tiny CPU recipe in-process (optionally under torchrun) and record the per-step losses.

    python train_tiny.py --out DIR --losses FILE [--tp 2] [--max-steps N] [--sched-steps N] [--kill-after N]
        [--peft lora --base NEMO_CKPT] [--logits TOKENS.pt PREFIX] [--frozen-report FILE] [--export DIR]
        [--recompute uniform|block N]

``--kill-after N`` SIGKILLs the process group right after step N finished (no clean-up, helper processes such as
the checkpoint writer's included), to test resume. Start it in its own session.

LoRA (tests/test_lora.py): ``--logits`` writes the model's fp32 logits of the token ids in TOKENS.pt to
``PREFIX_init.pt`` (before step 1: the adapters are in place) and ``PREFIX_end.pt`` (after the last step);
``--frozen-report`` writes, after step ``--frozen-at``, which parameters are trainable and which changed since
step 1 (per rank); ``--export DIR`` runs ``cosmos-ar convert export`` of the final checkpoint after training
(merged fp32 model.pt, TP=2 shards, HF folder, adapters only) and ``convert logits`` of the merged model.pt.
"""

import argparse
import json
import os
import signal

import lightning.pytorch as pl
import torch

ARGS = None  # the parsed command line, for Recorder


def logits(pl_module):
    from nemo_cosmos_ar.runtime import gather_vocab_parallel

    tokens = torch.load(ARGS.logits[0], weights_only=True)
    pos = torch.arange(tokens.shape[1])[None]
    model, was_training = pl_module.module, pl_module.training
    model.eval()
    with torch.no_grad():
        out = torch.cat([gather_vocab_parallel(model(row[None], pos, None)).float() for row in tokens])
    model.train(was_training)
    return out[..., : pl_module.config.vocab_size]


class Recorder(pl.Callback):
    """Losses, kills, optimizer dumps and the LoRA checks of the module docstring (options in ``ARGS``)."""

    snapshot = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.snapshot is None:  # the first step of this process: the adapters (if any) are in place
            self.snapshot = {n: p.detach().clone() for n, p in pl_module.named_parameters()}
            if ARGS.logits:
                out = logits(pl_module)
                if trainer.global_rank == 0:
                    torch.save(out, ARGS.logits[1] + "_init.pt")

    def on_train_end(self, trainer, pl_module):
        if ARGS.logits:
            out = logits(pl_module)
            if trainer.global_rank == 0:
                torch.save(out, ARGS.logits[1] + "_end.pt")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if ARGS.frozen_report and trainer.global_step == ARGS.frozen_at:
            params = dict(pl_module.named_parameters())
            report = {
                "trainable": sorted(n for n, p in params.items() if p.requires_grad),
                "changed": sorted(n for n, p in params.items() if not torch.equal(p, self.snapshot[n])),
                "params": len(params),
                "step": trainer.global_step,
            }
            with open(f"{ARGS.frozen_report}.rank{trainer.global_rank}", "w") as f:
                json.dump(report, f)
        if trainer.global_rank == 0:
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            with open(ARGS.losses, "a") as f:
                f.write(json.dumps({"step": trainer.global_step, "loss": float(loss)}) + "\n")
        if ARGS.dump_optim and trainer.global_rank == 0:
            leaf = trainer.optimizers[0].mcore_optimizer
            leaf = getattr(leaf, "chained_optimizers", [leaf])[0]
            opt = leaf.optimizer
            states = [s for s in opt.state.values() if "exp_avg" in s]
            model_param = next(p for p in pl_module.parameters() if p.requires_grad)
            row = {
                "step": trainer.global_step,
                "leaf": type(leaf).__name__,
                "param_dtype": str(opt.param_groups[0]["params"][0].dtype),
                "moment_dtype": str(states[0]["exp_avg"].dtype),
                "grad_dtype": str(model_param.main_grad.dtype),
                "grad_norm": float(getattr(trainer.optimizers[0].mcore_optimizer, "_cosmos_last_norm", float("nan"))),
            }
            for k in ("exp_avg", "exp_avg_sq"):
                row[k] = sum(float(s[k].double().abs().sum()) for s in states)
            with open(ARGS.dump_optim, "a") as f:
                f.write(json.dumps(row) + "\n")
        if ARGS.kill_after and trainer.global_step >= ARGS.kill_after:
            os.killpg(os.getpgid(0), signal.SIGKILL)  # a hard kill: no checkpoint on exit, no shutdown


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
    p.add_argument("--peft", default=None, help="lora: train LoRA adapters (recipe defaults)")
    p.add_argument("--base", default=None, help="base NeMo checkpoint (the recipe's base_checkpoint)")
    p.add_argument("--resume-from", default=None, help="resume this checkpoint folder (resume.resume_from_path)")
    p.add_argument("--logits", nargs=2, default=None, metavar=("TOKENS", "PREFIX"))
    p.add_argument("--frozen-report", default=None)
    p.add_argument("--frozen-at", type=int, default=10)
    p.add_argument("--export", default=None)
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the tiny recipe's)")
    p.add_argument(
        "--recompute",
        nargs=2,
        default=None,
        metavar=("METHOD", "LAYERS"),
        help="full activation recompute: uniform|block and model.config.recompute_num_layers",
    )
    args = p.parse_args()

    import fiddle as fdl
    import nemo_run as run

    from nemo_cosmos_ar.recipes.cosmos_ar import tiny_cpu_recipe

    world = int(os.environ.get("WORLD_SIZE", "1"))
    task = tiny_cpu_recipe(
        output_root=args.out,
        max_steps=args.sched_steps,
        devices=world,
        tensor_parallel=args.tp,
        save_every=args.save_every,
        data_path=args.data_path,
        precision=args.precision,
        peft=args.peft,
        base_checkpoint=args.base,
        **({"lr": args.lr} if args.lr else {}),
    )
    if args.resume_from:
        task.resume.resume_from_path = args.resume_from
    task.trainer.max_steps = args.max_steps
    task.optim.config.clip_grad = args.clip
    task.model.config.gradient_accumulation_fusion = args.grad_accum_fusion
    if args.recompute:
        task.model.config.recompute_granularity = "full"
        task.model.config.recompute_method = args.recompute[0]
        task.model.config.recompute_num_layers = int(args.recompute[1])
    task.log.tensorboard = None

    global ARGS
    ARGS = args
    # A module-level class (not a local one): the checkpoints' context/io.json records the trainer's callbacks,
    # and fiddle cannot serialise a local class (io.json would be left empty).
    task.trainer.callbacks.append(run.Config(Recorder))
    fdl.build(task)()
    if args.export:
        export(args, task)


def export(args, task) -> None:
    """The final checkpoint through `cosmos-ar convert export` (``lora_export_checks.py``, in this process: NeMo is
    imported already)."""
    import glob

    import lora_export_checks

    run_dir = os.path.join(task.log.log_dir, task.log.name, "checkpoints")
    (last,) = glob.glob(os.path.join(run_dir, "*-last"))
    lora_export_checks.run(last, args.export, args.logits[0])


if __name__ == "__main__":
    main()
