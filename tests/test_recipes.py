"""Post-training recipes: grids, arguments and launch checks of the factories, and real tiny training runs on CPU
(gloo). The ``nemo`` CLI dry runs are in test_launch.py."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, child_env, run_torchrun


def _run(cmd, timeout=600, env=None, ok=(0,)):
    e = child_env(COLUMNS="250", **(env or {}))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=e, cwd=REPO, start_new_session=True)
    if proc.returncode not in ok:
        pytest.fail(f"{cmd} -> {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def _losses(path: Path) -> dict[int, float]:
    return {d["step"]: d["loss"] for d in map(json.loads, path.read_text().splitlines())}


# The CLI dry runs of the recipes (configs, sbatch script, torchrun command) are in test_launch.py, batched.


@pytest.fixture(scope="module")
def recipes():
    from nemo_cosmos_ar.recipes import cosmos_ar

    return cosmos_ar


# The grids cosmos-predict1's experiments train on, written out (not derived) so a wrong grid rule shows up here.
EXPECTED_GRIDS = {
    "cosmos_ar_4b_tealrobotsmall_tp1": (5, 24, 40),
    "base_4b_example_tealrobotsmall_tp1": (5, 24, 40),
    "cosmos_ar_4b_tealrobot_tp4": (5, 40, 53),
    "base_4b_example_tealrobot_tp4": (5, 40, 53),
    "cosmos_ar_12b_tealrobot_tp8": (5, 40, 53),
    "cosmos_ar_4b_tealrobotsmall_lora_24gb": (5, 24, 40),
}


def test_every_recipe_grid_is_derived_from_its_resolution(recipes):
    from nemo_cosmos_ar.tokenizer import grid

    assert sorted(recipes.GPU_RECIPES) == sorted(EXPECTED_GRIDS)
    for name, (resolution, factory) in recipes.GPU_RECIPES.items():
        task = factory()
        want = grid.latent_shape(33, *grid.parse_resolution(resolution))
        assert want == EXPECTED_GRIDS[name], name
        assert tuple(task.model.config.latent_shape) == tuple(task.data.latent_shape) == want, name
        assert task.data.path is None and task.resume.allow_random_init is False, name
    tiny = recipes.tiny_cpu_recipe()
    assert tuple(tiny.model.config.latent_shape) == tuple(tiny.data.latent_shape) == (3, 4, 6)
    assert grid.latent_shape(*recipes.TINY_CLIP) == (3, 4, 6) and tiny.resume.allow_random_init is True
    # the guide's names are the same runs, logged under the guide's experiment names
    alias = recipes.base_4b_example_tealrobot_tp4(num_nodes=2)
    assert alias.log.name == "base_4b_example_tealrobot_tp4" and alias.trainer.num_nodes == 2
    assert alias.log.log_dir.endswith("posttraining/autoregressive_base")


def test_recipe_grid_follows_resolution_frames_and_dataset(recipes, tmp_path):
    task = recipes.cosmos_ar_4b_tealrobotsmall_tp1(resolution="480x640", num_frames=17)
    assert tuple(task.model.config.latent_shape) == tuple(task.data.latent_shape) == (3, 30, 40)
    # 4B FLOPs per token at 3x30x40 (3,599 trained positions): 6N + 6·L·S·q_width, N without the input embedding
    assert task.trainer.callbacks[1].flops_per_token == 6.0 * 3_751_944_192 + 6.0 * 16 * 3599 * 4096
    data = tmp_path / "kitchen"
    data.mkdir()
    (data / "metadata.json").write_text(json.dumps({"latent_shape": [5, 24, 40], "resolution": [384, 640]}))
    task = recipes.cosmos_ar_4b_tealrobot_tp4(data_path=str(data))  # recipe default 640x848; the data says 384x640
    assert tuple(task.model.config.latent_shape) == tuple(task.data.latent_shape) == (5, 24, 40)
    with pytest.raises(recipes.RecipeError) as e:
        recipes.cosmos_ar_4b_tealrobot_tp4(data_path=str(data), resolution="640x848")
    assert str(e.value) == (
        f"{data} holds 33-frame 384x640 clips (grid 5x24x40) but the recipe asks for grid 5x40x53: drop "
        "resolution=/num_frames= to train at the data's size, or pass resolution=384x640,num_frames=33"
    )
    with pytest.raises(recipes.RecipeError, match=r"num_frames=32: 32 frames is not 1\+8k"):
        recipes.cosmos_ar_12b_tealrobot_tp8(num_frames=32)
    with pytest.raises(recipes.RecipeError, match="must look like HEIGHTxWIDTH"):
        recipes.cosmos_ar_12b_tealrobot_tp8(resolution="640")


def test_shortened_run_scales_the_warmup(recipes, capfd):
    from nemo_cosmos_ar.recipes import _common

    assert [_common.warmup_for(n) for n in (50_000, 80_000, 1000, 20, 5)] == [5000, 5000, 100, 2, 1]
    full = recipes.cosmos_ar_4b_tealrobotsmall_tp1()
    sched = full.optim.lr_scheduler
    assert (sched.max_steps, sched.warmup_steps, full.trainer.max_steps) == (50_000, 5000, 50_000)
    assert "warm-up" not in capfd.readouterr().err
    short = recipes.cosmos_ar_4b_tealrobotsmall_tp1(max_steps=1000)
    sched = short.optim.lr_scheduler
    assert (sched.max_steps, sched.warmup_steps, short.trainer.max_steps) == (1000, 100, 1000)
    assert capfd.readouterr().err == (
        "[cosmos_ar] cosmos_ar_4b_tealrobotsmall_tp1: warm-up 100 steps (10% of max_steps=1000; the full "
        "50,000-step schedule warms up for 5,000)\n"
    )


def test_finetune_without_base_checkpoint_refuses(recipes):
    """At launch (the nemo CLI hook) and again when the run starts (CosmosAutoResume), one line naming the
    argument; allow_random_init=True or a restore path lets it go."""
    from types import SimpleNamespace

    from nemo.lightning.pytorch.strategies.utils import RestoreConfig
    from nemo_run.cli.api import RunContextError

    from nemo_cosmos_ar.nemo_glue.resume import NO_BASE_CHECKPOINT, CosmosAutoResume
    from nemo_cosmos_ar.recipes.cli_hooks import check_cosmos_task

    assert NO_BASE_CHECKPOINT == (
        "finetune needs the base model: pass base_checkpoint=<NeMo checkpoint from `cosmos-ar convert import`> to "
        "the factory (or resume.restore_config.path=...), or allow_random_init=True to train from random weights"
    )
    ctx = SimpleNamespace(dryrun=False, executor=None)
    with pytest.raises(RunContextError, match="^finetune needs the base model: pass base_checkpoint="):
        check_cosmos_task(ctx, recipes.cosmos_ar_4b_tealrobotsmall_tp1(), [])
    check_cosmos_task(ctx, recipes.cosmos_ar_4b_tealrobotsmall_tp1(allow_random_init=True), [])
    check_cosmos_task(ctx, recipes.cosmos_ar_4b_tealrobotsmall_tp1(base_checkpoint="/ckpt"), [])
    task = recipes.cosmos_ar_4b_tealrobotsmall_tp1()
    task.resume.restore_config.path = "/ckpt"  # what resume.restore_config.path=/ckpt does
    check_cosmos_task(ctx, task, [])

    trainer = SimpleNamespace(strategy=SimpleNamespace())
    resume = CosmosAutoResume(
        restore_config=RestoreConfig(path=None), resume_if_exists=True, resume_ignore_no_checkpoint=True
    )
    with pytest.raises(ValueError, match="^finetune needs the base model"):
        resume.setup(trainer)
    resume = CosmosAutoResume(restore_config=RestoreConfig(path=None), allow_random_init=True)
    resume.setup(trainer)
    assert resume.restore_config is None and not hasattr(trainer.strategy, "restore_config")


def test_executors_fit_the_recipe(recipes, tmp_path, monkeypatch):
    import fiddle as fdl
    import nemo_run as run

    from nemo_cosmos_ar.recipes.executors import cosmos_local, cosmos_slurm, fit_to_recipe

    task = recipes.cosmos_ar_4b_tealrobot_tp4(num_nodes=2)
    ex = fit_to_recipe(fdl.build(cosmos_slurm(account="a")), task)
    assert (ex.nodes, ex.gpus_per_node, ex.torchrun_nproc_per_node, ex.ntasks_per_node) == (2, 4, 4, 1)
    ex = fdl.build(cosmos_slurm(account="a", nodes=2, gpus_per_node=8))
    want = (
        r"starts 2 node\(s\) x 8 process\(es\) but the recipe trains on trainer.num_nodes=2 x "
        r"trainer.devices=4: make run.executor.nodes / run.executor.gpus_per_node"
    )
    with pytest.raises(recipes.RecipeError, match=want):
        fit_to_recipe(ex, task)
    local = fit_to_recipe(fdl.build(cosmos_local()), recipes.cosmos_ar_4b_tealrobot_tp4())
    assert isinstance(local, run.LocalExecutor) and local.nproc_per_node() == 4 and local.nnodes() == 1
    monkeypatch.chdir(tmp_path)
    assert fdl.build(cosmos_slurm()).tunnel.job_dir == str(tmp_path / "nemo_runs")  # mounted: must be absolute
    assert isinstance(fdl.build(cosmos_slurm(ssh_host="h", job_dir="/x")).tunnel, run.SSHTunnel)
    assert type(fdl.build(cosmos_slurm()).packager) is run.GitArchivePackager  # ships the checkout's HEAD
    assert type(fdl.build(cosmos_slurm(ship_code=False)).packager) is run.Packager  # uses the image's package
    with pytest.raises(recipes.RecipeError, match="job_dir='runs' must be an absolute path on login1"):
        cosmos_slurm(ssh_host="login1", job_dir="runs")


def test_tiny_recipe_trains_and_resumes_exactly_after_a_kill(tmp_path):
    """TP=1: the loss falls; a run hard-killed after its step-10 checkpoint and restarted continues the same curve."""
    script = str(REPO / "tests" / "scripts" / "train_tiny.py")
    full, part = tmp_path / "full.jsonl", tmp_path / "part.jsonl"
    _run([sys.executable, script, "--out", str(tmp_path / "a"), "--losses", str(full), "--max-steps", "20"])
    a = _losses(full)
    assert sorted(a) == list(range(1, 21))
    assert a[20] < a[1] - 0.5, a  # memorising 4 fixed clips: the loss must fall by a clear margin
    killed = [sys.executable, script, "--out", str(tmp_path / "b"), "--losses", str(part), "--max-steps", "20"]
    _run([*killed, "--kill-after", "13"], ok=(-9,))
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
    args = ["--out", str(out), "--losses", str(losses), "--tp", "2", "--max-steps", "10", "--save-every", "10"]
    run_torchrun("train_tiny.py", *args, nproc=2)
    tp2 = _losses(losses)
    assert sorted(tp2) == list(range(1, 11)) and tp2[10] < tp2[1] - 0.3
    shutil.copytree(out, tmp_path / "run_copy")
    at_tp2, at_tp1 = tmp_path / "resumed_tp2.jsonl", tmp_path / "resumed_tp1.jsonl"
    args = ["--out", str(tmp_path / "run_copy"), "--losses", str(at_tp2), "--tp", "2", "--max-steps", "12"]
    run_torchrun("train_tiny.py", *args, nproc=2)
    script = str(REPO / "tests" / "scripts" / "train_tiny.py")
    _run([sys.executable, script, "--out", str(out), "--losses", str(at_tp1), "--max-steps", "12"])
    r1, r2 = _losses(at_tp1), _losses(at_tp2)
    assert sorted(r1) == sorted(r2) == [11, 12]
    # Same weights, optimizer state and data position; TP=1 and TP=2 differ only in fp32 reduction order.
    for step in (11, 12):
        assert abs(r1[step] - r2[step]) < 1e-4, (step, r1[step], r2[step])
