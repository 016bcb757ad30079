"""Train the tiny model for a few steps on a prepared clip-token dataset and record what each micro-batch carried.

    python data_train_step.py --data DIR --out DIR --record FILE [--steps N] [--global-batch-size N]

Every micro-batch that reaches the model (training and validation) is appended to FILE as one JSON line: tokens,
labels and loss_mask (as lists), position_ids' range and whether it was a training step; and each training step's
loss once the step ends.
"""

import argparse
import json

RECORD = None  # the --record file (module level, so the checkpoint's fiddle context can name the data step)


def recording_data_step(dataloader_iter):
    import torch

    from nemo_cosmos_ar.nemo_glue.model import cosmos_data_step

    batch = cosmos_data_step(dataloader_iter)
    row = {k: batch[k].tolist() for k in ("tokens", "labels", "loss_mask")}
    row["position_ids"] = [int(batch["position_ids"].min()), int(batch["position_ids"].max())]
    row["training"] = torch.is_grad_enabled()  # validation steps run without autograd
    with open(RECORD, "a") as f:
        f.write(json.dumps(row) + "\n")
    return batch


def main() -> None:
    global RECORD
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--record", required=True)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--global-batch-size", type=int, default=2)
    args = p.parse_args()
    RECORD = args.record

    import fiddle as fdl
    import lightning.pytorch as pl
    import nemo_run as run

    from nemo_cosmos_ar.recipes.cosmos_ar import tiny_cpu_recipe

    class LossRecorder(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            with open(args.record, "a") as f:
                f.write(json.dumps({"step": trainer.global_step, "loss": float(loss)}) + "\n")

    task = tiny_cpu_recipe(
        output_root=args.out,
        max_steps=args.steps,
        save_every=args.steps,
        data_path=args.data,
        global_batch_size=args.global_batch_size,
    )
    task.model.config.data_step_fn = recording_data_step
    task.log.tensorboard = None
    task.trainer.callbacks.append(run.Config(LossRecorder))
    fdl.build(task)()


if __name__ == "__main__":
    main()
