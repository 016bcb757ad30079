"""Post-training recipes: CLI dry runs, the Slurm job script, and real tiny training runs on CPU (gloo)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, child_env, run_torchrun

NEMO = [sys.executable, "-c", "import sys; sys.argv[0] = 'nemo'; from nemo_run.__main__ import app; app()"]


def _run(cmd, timeout=600, env=None, ok=(0,)):
    e = child_env(COLUMNS="250", **(env or {}))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=e, cwd=REPO, start_new_session=True)
    if proc.returncode not in ok:
        pytest.fail(f"{cmd} -> {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def _losses(path: Path) -> dict[int, float]:
    return {d["step"]: d["loss"] for d in map(json.loads, path.read_text().splitlines())}


def test_cli_dryrun_prints_complete_gpu_configs():
    out = _run(NEMO + ["llm", "finetune", "--factory", "cosmos_ar_4b_tealrobotsmall_tp1", "--dryrun", "--yes"]).stdout
    for needle in ["CosmosARConfig4B", "latent_shape=(5, 24, 40)", "tensor_model_parallel_size=1", "lr=0.001",
                   "weight_decay=0.05", "clip_grad=1.0", "warmup_steps=5000", "CosmosPrecision(precision='bf16')",
                   "posttraining/autoregressive_base"]:  # fmt: skip
        assert needle in out, needle
    out = _run(NEMO + ["llm", "finetune", "--factory", "cosmos_ar_4b_tealrobot_tp4", "--dryrun", "--yes",
                       "trainer.strategy.sequence_parallel=True"]).stdout  # fmt: skip
    assert "latent_shape=(5, 40, 53)" in out and "tensor_model_parallel_size=4" in out and "devices=4" in out
    assert "sequence_parallel=True" in out
    out = _run(NEMO + ["llm", "finetune", "--factory", "cosmos_ar_12b_tealrobot_tp8", "--dryrun", "--yes"]).stdout
    assert "CosmosARConfig12B" in out and "tensor_model_parallel_size=8" in out and "devices=8" in out


def test_slurm_job_script(tmp_path):
    script = tmp_path / "render.py"
    script.write_text(
        "import fiddle as fdl, nemo_run as run\n"
        "from nemo_cosmos_ar.recipes.cosmos_ar import cosmos_ar_4b_tealrobot_tp4\n"
        "from nemo_cosmos_ar.recipes.executors import cosmos_slurm\n"
        f"ex = fdl.build(cosmos_slurm(account='acct', partition='batch', nodes=2, gpus_per_node=4, job_dir='{tmp_path}'))\n"
        "ex.packager = run.Packager()\n"
        "with run.Experiment('cosmos-test', executor=ex) as exp:\n"
        "    exp.add(cosmos_ar_4b_tealrobot_tp4(num_nodes=2), name='train')\n"
        "    exp.dryrun()\n"
    )
    out = _run([sys.executable, str(script)]).stdout
    for needle in ["#SBATCH --nodes=2", "#SBATCH --gpus-per-node=4", "#SBATCH --ntasks-per-node=1",
                   "#SBATCH --partition=batch", "#SBATCH --account=acct", "torchrun", "--nnodes 2",
                   "--nproc-per-node 4", "--node-rank $SLURM_NODEID", "nemo_run.core.runners.fdl_runner"]:  # fmt: skip
        assert needle in out, needle


def test_tiny_recipe_trains_and_resumes_exactly_after_a_kill(tmp_path):
    """TP=1: the loss falls; a run hard-killed after its step-10 checkpoint and restarted continues the same curve."""
    script = str(REPO / "tests" / "scripts" / "train_tiny.py")
    full, part = tmp_path / "full.jsonl", tmp_path / "part.jsonl"
    _run([sys.executable, script, "--out", str(tmp_path / "a"), "--losses", str(full), "--max-steps", "20"])
    a = _losses(full)
    assert sorted(a) == list(range(1, 21))
    assert a[20] < a[1] - 0.5, a  # memorising 4 fixed clips: the loss must fall by a clear margin
    _run([sys.executable, script, "--out", str(tmp_path / "b"), "--losses", str(part), "--max-steps", "20",
          "--kill-after", "13"], ok=(-9,))  # fmt: skip
    assert max(_losses(part)) == 13
    part.unlink()
    _run([sys.executable, script, "--out", str(tmp_path / "b"), "--losses", str(part), "--max-steps", "20"])
    b = _losses(part)
    assert sorted(b) == list(range(11, 21))  # resumed from the step-10 checkpoint
    for step in b:
        assert abs(b[step] - a[step]) < 1e-5, (step, b[step], a[step])


def test_tiny_recipe_tp2_trains_and_resumes_at_tp1(tmp_path):
    """TP=2 under torchrun trains; its step-10 checkpoint resumed at TP=1 continues the curve it continues at TP=2."""
    out, losses = tmp_path / "run", tmp_path / "tp2.jsonl"
    run_torchrun("train_tiny.py", "--out", str(out), "--losses", str(losses), "--tp", "2", "--max-steps", "10",
                 "--save-every", "10", nproc=2)  # fmt: skip
    tp2 = _losses(losses)
    assert sorted(tp2) == list(range(1, 11)) and tp2[10] < tp2[1] - 0.3
    shutil.copytree(out, tmp_path / "run_copy")
    at_tp2, at_tp1 = tmp_path / "resumed_tp2.jsonl", tmp_path / "resumed_tp1.jsonl"
    run_torchrun("train_tiny.py", "--out", str(tmp_path / "run_copy"), "--losses", str(at_tp2), "--tp", "2",
                 "--max-steps", "12", nproc=2)  # fmt: skip
    script = str(REPO / "tests" / "scripts" / "train_tiny.py")
    _run([sys.executable, script, "--out", str(out), "--losses", str(at_tp1), "--max-steps", "12"])
    r1, r2 = _losses(at_tp1), _losses(at_tp2)
    assert sorted(r1) == sorted(r2) == [11, 12]
    # Same weights, optimizer state and data position; TP=1 and TP=2 differ only in fp32 reduction order.
    for step in (11, 12):
        assert abs(r1[step] - r2[step]) < 1e-4, (step, r1[step], r2[step])
