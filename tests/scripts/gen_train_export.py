"""A tiny post-training run and its exports, for the generation-from-any-checkpoint tests.

    python gen_train_export.py OUT

Trains the tiny CPU recipe for 2 steps (NeMo distributed checkpoint under OUT/run/.../checkpoints/step=*-last), then
exports that checkpoint to cosmos-predict1's ``OUT/export/model.pt``, TP=2 shards ``OUT/shards/model_model_mp_{r}.pt``
and a Hugging Face folder ``OUT/hf``. Prints the checkpoint folder on the last line.
"""

import sys
from pathlib import Path


def main() -> None:
    out = Path(sys.argv[1])
    import fiddle as fdl

    from nemo_cosmos_ar.recipes.cosmos_ar import tiny_cpu_recipe

    task = tiny_cpu_recipe(output_root=str(out / "run"), max_steps=2, save_every=2)
    task.log.tensorboard = None
    fdl.build(task)()
    ckpt = max((out / "run").rglob("step=*-last"))
    from nemo_cosmos_ar.nemo_glue.connectors import CosmosARHFExporter, CosmosARPTExporter

    CosmosARPTExporter(str(ckpt))(output_path=out / "export", tp=1)
    CosmosARPTExporter(str(ckpt))(output_path=out / "shards" / "model.pt", tp=2)
    CosmosARHFExporter(str(ckpt))(output_path=out / "hf")
    print(ckpt)


if __name__ == "__main__":  # NeMo's data loader re-imports __main__ in worker processes
    main()
