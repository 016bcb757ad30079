"""LoRA post-training on one GPU (issue 16): ms/step, model TFLOP/s, peak memory and checkpoint size, one table.

    python bench/bench_lora.py                       # every run below, one after another, on GPU 0
    python bench/bench_lora.py --gpus 0,1            # the same runs two at a time, one per GPU
    python bench/bench_lora.py --only 4b_24gb,4b_4800 --steps 20
    python bench/bench_lora.py --smoke               # CPU: the tiny recipe with LoRA (checks the script)

Every run is the real NeMo path (``llm.finetune`` with the recipe's model, trainer, optimizer and ``CosmosLoRA``:
rank 32, alpha 32, all four linears), random init (``allow_random_init``), mock clips of the grid, batch 1, in a
process of its own (so a memory cap or an out-of-memory stays with its run). The runs:

| label | recipe | tokens | notes |
|---|---|---:|---|
| 4b_12800 | ``cosmos_ar_4b_tealrobotsmall_tp1(peft='lora')`` at grid 5x40x64 | 12,800 | checkpoint at the end |
| 12b_10600 | ``cosmos_ar_12b_tealrobot_tp8(peft='lora')``, TP=1 on one GPU | 10,600 | checkpoint; OOM: more recompute |
| 4b_4800 | ``cosmos_ar_4b_tealrobotsmall_tp1(peft='lora')``, uncapped | 4,800 | the 24 GB run's reference |
| 4b_24gb | ``cosmos_ar_4b_tealrobotsmall_lora_24gb`` (recompute 8 of 16 layers), capped at 22 GiB | 4,800 | 20 steps |
| 4b_24gb_r4, 4b_24gb_r0 | the same with 4 / no recomputed layers, capped | 4,800 | does less recompute fit? |

The cap is ``torch.cuda.set_per_process_memory_fraction(22 GiB / total)``, set before the model is built; the
allocator then refuses to hold more than that (allocated plus cached), as a 24 GB card would.

**Model TFLOP/s, LoRA count** (``nemo_glue.lora.lora_train_flops_per_token``): per trained token ``4·N`` for the
frozen weights (N without the input embedding: forward 2 + input gradient 2; LoRA computes no weight gradient for
them), ``6·N_lora`` for the adapters, and causal attention ``6·L·S·(heads·head_dim)`` as in full training.
Activation recompute is not counted. The ``full-count`` column divides the full post-training count (``6·N`` +
attention) by the same step time: it is not work LoRA does, only a like-for-like figure against the full runs of
BENCHMARKS.md. ms/step and TFLOP/s are medians over the steps after the first two; peak memory is the largest
``max_memory_allocated`` (and reserved) over the run; the checkpoint size is the step-N checkpoint folder (adapters
and their Adam moments; no base weights).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CAP_24GB = 22.0
RUNS = [
    dict(label="4b_12800", factory="cosmos_ar_4b_tealrobotsmall_tp1", grid=[5, 40, 64], checkpoint=True),
    dict(
        label="12b_10600",
        factory="cosmos_ar_12b_tealrobot_tp8",
        grid=[5, 40, 53],
        checkpoint=True,
        recompute=[0, 10, 20, 40],
    ),
    dict(label="4b_4800", factory="cosmos_ar_4b_tealrobotsmall_tp1", grid=[5, 24, 40]),
    dict(label="4b_24gb", factory="cosmos_ar_4b_tealrobotsmall_lora_24gb", cap_gib=CAP_24GB, steps=20),
    dict(label="4b_24gb_r4", factory="cosmos_ar_4b_tealrobotsmall_lora_24gb", cap_gib=CAP_24GB, recompute=[4]),
    dict(label="4b_24gb_r0", factory="cosmos_ar_4b_tealrobotsmall_lora_24gb", cap_gib=CAP_24GB, recompute=[0]),
]
SMOKE = [dict(label="tiny_cpu", factory="cosmos_ar_tiny_cpu", checkpoint=True, steps=4)]
OOM_MARKERS = ("OutOfMemoryError", "CUDA out of memory", "out of memory")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gpus", default="0", help="GPU ids to spread the runs over, e.g. 0,1 (one run per GPU)")
    p.add_argument("--only", default="", help="comma-separated labels")
    p.add_argument("--steps", type=int, default=12, help="steps per run (the 24 GB run always does 20)")
    p.add_argument("--out", default=None, help="folder for logs, checkpoints, results.json, table.md")
    p.add_argument("--run-timeout", type=int, default=420)
    p.add_argument("--smoke", action="store_true", help="CPU: the tiny recipe with LoRA")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    out = Path(args.out or tempfile.mkdtemp(prefix="bench_lora_"))
    out.mkdir(parents=True, exist_ok=True)
    runs = SMOKE if args.smoke else RUNS
    if args.only:
        wanted = args.only.split(",")
        runs = [r for r in runs if r["label"] in wanted]
    queue = [dict(r, steps=r.get("steps", args.steps), out=str(out / r["label"])) for r in runs]
    results, lock = [], threading.Lock()

    def gpu_loop(gpu: str) -> None:
        while True:
            with lock:
                if not queue:
                    return
                spec = queue.pop(0)
            res = run_with_fallbacks(spec, gpu, out, args.run_timeout, args.smoke)
            with lock:
                results.append(res)
                print("RESULT " + json.dumps(res), flush=True)

    gpus = ["cpu"] if args.smoke else args.gpus.split(",")
    threads = [threading.Thread(target=gpu_loop, args=(g,)) for g in gpus]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    order = [r["label"] for r in runs]
    results.sort(key=lambda r: order.index(r["label"]))
    (out / "results.json").write_text(json.dumps(results, indent=2))
    table = markdown(results)
    (out / "table.md").write_text(table + "\n")
    print(table, flush=True)
    print(f"logs, results.json and table.md in {out}", flush=True)


def run_with_fallbacks(spec: dict, gpu: str, out: Path, timeout: int, smoke: bool) -> dict:
    """Run ``spec`` with its first recompute setting; after an out-of-memory, the next one (if any)."""
    tries = spec.get("recompute") or [None]
    for i, recompute in enumerate(tries):
        s = dict(spec, recompute_layers=recompute)
        log = out / f"{spec['label']}{'' if recompute is None else f'_r{recompute}'}.log"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if not smoke:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        t0 = time.time()
        try:
            proc = subprocess.run(
                [sys.executable, __file__, "--worker", json.dumps(s)],
                stdout=open(log, "w"),
                stderr=subprocess.STDOUT,
                env=env,
                timeout=timeout,
            )
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        text = log.read_text(errors="replace")
        lines = [json.loads(line[7:]) for line in text.splitlines() if line.startswith("WORKER ")]
        res = {
            "label": spec["label"],
            "gpu": gpu,
            "rc": rc,
            "wall_s": round(time.time() - t0, 1),
            "recompute_layers": recompute,
            "cap_gib": spec.get("cap_gib"),
        }
        if lines:
            res.update(lines[-1])
        oom = any(m in text for m in OOM_MARKERS)
        res["status"] = "ok" if rc == 0 and lines else ("out of memory" if oom else f"failed ({rc})")
        if res["status"] != "out of memory" or i == len(tries) - 1:
            if res["status"].startswith("failed"):
                res["tail"] = text[-1500:]
            return res


def worker(spec: dict) -> None:
    """One run in this process; prints ``WORKER {json}`` at the end."""
    import fiddle as fdl
    import lightning.pytorch as pl
    import nemo_run as run
    import torch

    from nemo_cosmos_ar.nemo_glue.lora import CosmosLoRA, lora_train_flops_per_token
    from nemo_cosmos_ar.recipes import cosmos_ar

    factory = getattr(cosmos_ar, spec["factory"])
    kw = dict(max_steps=50_000, allow_random_init=True, peft="lora")  # mock clips, random weights
    if spec.get("recompute_layers") is not None:
        kw["recompute_layers"] = spec["recompute_layers"]
    if spec["factory"] == "cosmos_ar_tiny_cpu":
        task = cosmos_ar.tiny_cpu_recipe(output_root=spec["out"], max_steps=spec["steps"], peft="lora")
    else:
        task = factory(**kw)
        task.log.log_dir = os.path.join(spec["out"], "posttraining", "autoregressive_base")
        task.trainer.devices = 1
        task.trainer.strategy.tensor_model_parallel_size = 1
        task.data.global_batch_size = 1
        task.trainer.strategy.ckpt_async_save = False
        if spec.get("grid"):
            task.model.config.latent_shape = tuple(spec["grid"])
            task.data.latent_shape = tuple(spec["grid"])
    task.trainer.max_steps = spec["steps"]
    task.log.tensorboard = None
    ckpt = task.trainer.callbacks[0]
    if spec.get("checkpoint"):  # one checkpoint, after the last step
        ckpt.every_n_train_steps, ckpt.save_top_k, ckpt.save_last = spec["steps"], 1, False
        ckpt.save_optim_on_train_end = False
    else:
        task.trainer.enable_checkpointing = False
        task.trainer.callbacks = task.trainer.callbacks[1:]
        task.log.ckpt = None

    cap, total = spec.get("cap_gib"), 0
    if torch.cuda.is_available():
        total = torch.cuda.get_device_properties(0).total_memory
        if cap:
            torch.cuda.set_per_process_memory_fraction(min(1.0, cap * 2**30 / total))
            print(f"memory cap: {cap:.1f} GiB of {total / 2**30:.1f} GiB", flush=True)
    result: dict = {}

    class Probe(pl.Callback):
        rows: list = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self.rows.append((trainer.global_step, float(loss), time.perf_counter() - self.t0))

        def on_train_end(self, trainer, pl_module):
            cfg = pl_module.config.cosmos_config()
            s = cfg.seq_length - 1
            lora = next(cb for cb in trainer.callbacks if isinstance(cb, CosmosLoRA))
            timed = [r[2] for r in self.rows[2:]] or [r[2] for r in self.rows]
            dt = statistics.median(timed)
            tps = trainer.datamodule.global_batch_size * s / dt / trainer.world_size  # per GPU
            trainable = sum(p.numel() for p in pl_module.parameters() if p.requires_grad)
            frozen = sum(p.numel() for p in pl_module.parameters() if not p.requires_grad)
            cuda = torch.cuda.is_available()
            result.update(
                {
                    "factory": spec["factory"],
                    "preset": cfg.name,
                    "grid": list(cfg.latent_shape),
                    "tokens": s,
                    "steps": len(self.rows),
                    "steps_timed": len(timed),
                    "ms_per_step": dt * 1e3,
                    "tokens_per_s": tps,
                    "global_batch": trainer.datamodule.global_batch_size,
                    "lora_tflops": tps * lora_train_flops_per_token(cfg, lora, s) / 1e12,
                    "full_count_tflops": tps * cfg.train_flops_per_token(s) / 1e12,
                    "lora_flops_per_token": lora_train_flops_per_token(cfg, lora, s),
                    "adapter_params": lora.num_adapter_params(cfg),
                    "trainable_params_local": trainable,
                    "frozen_params_local": frozen,
                    "rank": lora.dim,
                    "alpha": lora.alpha,
                    "recompute": [
                        getattr(pl_module.config, "recompute_method", None),
                        getattr(pl_module.config, "recompute_num_layers", None),
                    ],
                    "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
                    "reserved_gib": torch.cuda.max_memory_reserved() / 2**30 if cuda else None,
                    "device": torch.cuda.get_device_name() if cuda else "cpu",
                    "device_gib": total / 2**30 if cuda else None,
                    "losses": {r[0]: r[1] for r in self.rows},
                }
            )

    task.trainer.callbacks.append(run.Config(Probe))
    fdl.build(task)()
    if spec.get("checkpoint"):
        folders = sorted(Path(spec["out"]).rglob("checkpoints/step=*"))
        if folders:
            last = folders[-1]
            result["checkpoint"] = str(last)
            result["checkpoint_mib"] = sum(f.stat().st_size for f in last.rglob("*") if f.is_file()) / 2**20
            result["checkpoint_weights_mib"] = (
                sum(f.stat().st_size for f in (last / "weights").rglob("*") if f.is_file()) / 2**20
            )
    print("WORKER " + json.dumps(result), flush=True)


def markdown(results: list[dict]) -> str:
    head = (
        "| run | tokens | recompute | cap GiB | status | ms/step | tokens/s | model TFLOP/s (LoRA count) | "
        "full-count TFLOP/s | peak alloc / reserved GiB | checkpoint MiB | adapter params |"
    )
    lines = [head, "|" + "---|" * 12]

    def f(v, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    for r in results:
        rec = r.get("recompute_layers")
        rec = r.get("recompute", [None, None])[1] if rec is None else rec
        mem = "-" if r.get("peak_gib") is None else f"{r['peak_gib']:.1f} / {r['reserved_gib']:.1f}"
        lines.append(
            f"| {r['label']} | {f(r.get('tokens'), ',')} | {rec or 0} | {f(r.get('cap_gib'), '.0f')} | {r['status']} "
            f"| {f(r.get('ms_per_step'), '.1f')} | {f(r.get('tokens_per_s'), ',.0f')} "
            f"| {f(r.get('lora_tflops'), '.1f')} | {f(r.get('full_count_tflops'), '.1f')} | {mem} "
            f"| {f(r.get('checkpoint_mib'), ',.1f')} "
            f"| {f(r.get('adapter_params'), ',')} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
