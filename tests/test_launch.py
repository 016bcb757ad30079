"""Launching as NeMo users do: the README's and docs' command lines through the real ``nemo`` and ``cosmos-ar``
parsers, the rendered sbatch script / torchrun command, and the one-line answers to overrides that cannot work.

All ``nemo`` command lines run in ONE subprocess (``tests/scripts/nemo_batch.py``): the NeMo stack imports once.
"""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, child_env

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_FENCES = ("bash", "sh", "shell", "console")


def fenced_commands(path: Path) -> list[str]:
    """Command lines (continuations joined) of the shell-fenced blocks of a markdown file that start with ``nemo ``
    or ``cosmos-ar ``."""
    lines, out, fence, pending = path.read_text().splitlines(), [], None, ""
    for line in lines:
        if line.startswith("```"):
            fence = line[3:].strip() if fence is None else None
            pending = ""
            continue
        if fence not in SHELL_FENCES:
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        if pending.startswith(("nemo ", "cosmos-ar ")):
            out.append(pending)
        pending = ""
    return out


def argv_of(command: str) -> list[str]:
    """The argv a shell gives the command (comments dropped); a bare ``...`` means "more arguments" in the docs."""
    return [a for a in shlex.split(command, comments=True) if a != "..."]


DOC_COMMANDS = [(p.name, c) for p in DOCS for c in fenced_commands(p)]
NEMO_DOC_COMMANDS = [(where, c) for where, c in DOC_COMMANDS if c.startswith("nemo ")]
COSMOS_DOC_COMMANDS = [(where, c) for where, c in DOC_COMMANDS if c.startswith("cosmos-ar ")]
README_NEMO = [c for where, c in NEMO_DOC_COMMANDS if where == "README.md"]
SLURM_LINE = [c for c in README_NEMO if "cosmos_slurm" in c]
LOCAL_TP2_LINE = [c for c in README_NEMO if "trainer.devices=2" in c]

FT = ["llm", "finetune", "--factory"]
TP4_2N = "cosmos_ar_4b_tealrobot_tp4(num_nodes=2,base_checkpoint=/ckpt)"
# name -> (argv after `nemo`, stdin). Dry runs, or lines that must stop before launching anything.
EXTRA = {
    "slurm_positional": (FT + [TP4_2N, "run.executor=cosmos_slurm(ACCT,batch,2,4)", "--dryrun"], ""),
    "slurm_dotted": (
        FT
        + [
            TP4_2N,
            "run.executor=cosmos_slurm",
            "run.executor.account=ACCT",
            "run.executor.nodes=2",
            "run.executor.gpus_per_node=4",
            "--dryrun",
        ],
        "",
    ),
    "slurm_sized_by_recipe": (FT + [TP4_2N, "run.executor=cosmos_slurm", "--dryrun"], ""),
    "slurm_ssh": (
        FT
        + [
            "cosmos_ar_4b_tealrobot_tp4(base_checkpoint=/ckpt)",
            "--dryrun",
            "run.executor=cosmos_slurm(account=ACCT,ssh_host=login.invalid,job_dir=/lustre/runs,ship_code=False)",
        ],
        "",
    ),
    "local_too_many": (
        FT
        + [
            "cosmos_ar_4b_tealrobot_tp4(base_checkpoint=/ckpt)",
            "run.executor=cosmos_local(ntasks_per_node=8)",
            "--dryrun",
        ],
        "",
    ),
    "devices_8": (FT + ["cosmos_ar_4b_tealrobot_tp4(base_checkpoint=/ckpt)", "trainer.devices=8", "--dryrun"], ""),
    "peft": (FT + ["base_4b_example_tealrobotsmall_tp1", "peft=lora", "peft.dim=16", "--dryrun"], ""),
    "peft_factory": (
        FT
        + [
            "cosmos_ar_4b_tealrobot_tp4(peft=lora,base_checkpoint=/ckpt)",
            "peft.alpha=16",
            "peft.target_modules=['linear_qkv','linear_fc2']",
            "--dryrun",
        ],
        "",
    ),
    "peft_24gb": (FT + ["cosmos_ar_4b_tealrobotsmall_lora_24gb(base_checkpoint=/ckpt)", "--dryrun"], ""),
    "peft_unknown": (FT + ["cosmos_ar_4b_tealrobotsmall_tp1", "peft=dora", "--dryrun"], ""),
    "peft_field_without_lora": (FT + ["cosmos_ar_4b_tealrobotsmall_tp1", "peft.dim=16", "--dryrun"], ""),
    "peft_rank_vs_tp": (FT + ["cosmos_ar_4b_tealrobot_tp4(peft=lora)", "peft.dim=30", "--dryrun"], ""),
    "peft_some_layers": (
        FT + ["cosmos_ar_4b_tealrobotsmall_tp1(peft=lora)", "peft.target_modules=['*.layers.3.*']", "--dryrun"],
        "",
    ),
    "latent_shape": (FT + ["cosmos_ar_4b_tealrobotsmall_tp1", "model.config.latent_shape=[5,24,40]", "--dryrun"], ""),
    "bad_resolution": (FT + ["cosmos_ar_4b_tealrobotsmall_tp1(resolution=100x640)", "--dryrun"], ""),
    "overrides": (
        FT
        + [
            "cosmos_ar_4b_tealrobotsmall_tp1(resolution=480x640,num_frames=17)",
            "resume.restore_config.path=/ckpt/4b-nemo",
            "trainer.max_steps=1000",
            "--dryrun",
        ],
        "",
    ),
    "guide_name": (FT + ["base_4b_example_tealrobot_tp4", "--dryrun"], ""),
    "guide_name_small": (FT + ["base_4b_example_tealrobotsmall_tp1(max_steps=1000)", "--dryrun"], ""),
    "no_terminal": (FT + ["cosmos_ar_tiny_cpu"], ""),
    "answered_no": (FT + ["cosmos_ar_tiny_cpu"], "n\n"),
    "tp1_default": (FT + ["cosmos_ar_4b_tealrobotsmall_tp1", "--dryrun", "--yes"], ""),
    "tp4_sp": (FT + ["cosmos_ar_4b_tealrobot_tp4", "--dryrun", "--yes", "trainer.strategy.sequence_parallel=True"], ""),
    "tp1_mixed": (
        FT + ["cosmos_ar_4b_tealrobotsmall_tp1(precision=bf16-mixed,recompute_layers=2)", "--dryrun", "--yes"],
        "",
    ),
    "12b": (FT + ["cosmos_ar_12b_tealrobot_tp8", "--dryrun", "--yes"], ""),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, dict]:
    """Every documented ``nemo`` line (with ``--dryrun``) and every EXTRA line, run once; name/line -> result."""
    tmp = tmp_path_factory.mktemp("nemo_cli")
    # --dryrun right after the subcommand: whatever the line holds, nothing can be launched.
    jobs = [(c, argv_of(c)[1:3] + ["--dryrun"] + argv_of(c)[3:], "") for _, c in NEMO_DOC_COMMANDS]
    jobs += [(name, argv, stdin) for name, (argv, stdin) in EXTRA.items()]
    (tmp / "cmds.json").write_text(json.dumps([{"argv": a, "stdin": s} for _, a, s in jobs]))
    env = child_env(COLUMNS="4000", NEMORUN_HOME=str(tmp / "nemo_run_home"))
    script = REPO / "tests" / "scripts" / "nemo_batch.py"
    cmd = [sys.executable, str(script), str(tmp / "cmds.json"), str(tmp / "results.json")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=REPO)
    if proc.returncode:
        pytest.fail(f"nemo_batch.py failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    results = json.loads((tmp / "results.json").read_text())
    return {key: res for (key, _, _), res in zip(jobs, results)}


def _ok(res: dict) -> str:
    assert res["rc"] == 0, res["out"][-4000:]
    return res["out"]


def _error_line(res: dict) -> str:
    """The one error line of a refused command (nemo-run prints RunContextError as ``Error: ...``)."""
    assert res["rc"] == 1, res["out"][-4000:]
    errors = [line for line in res["out"].splitlines() if line.startswith(("Error:", "Unexpected error:"))]
    assert len(errors) == 1 and "Traceback" not in res["out"], res["out"][-4000:]
    return errors[0]


def _flat(text: str) -> str:
    """Rich prints a local launch's argv as a Python list over many lines: quotes, commas and line breaks out."""
    return re.sub(r"[\s',\[\]]+", " ", text)


def _sbatch(out: str) -> list[str]:
    """The sbatch script lines of a dry run (stripped of rich's log indentation)."""
    start = out.index("#!/bin/bash")
    return [line.strip() for line in out[start:].splitlines()]


def test_docs_have_the_launch_lines():
    assert len(SLURM_LINE) == 1 and len(LOCAL_TP2_LINE) == 1, README_NEMO
    assert len(NEMO_DOC_COMMANDS) >= 7 and len(DOC_COMMANDS) >= 20, DOC_COMMANDS


def test_readme_slurm_line_renders_the_sbatch_script(runs):
    out = _ok(runs[SLURM_LINE[0]])
    script = _sbatch(out)
    for line in [
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gpus-per-node=4",
        "#SBATCH --account=ACCT",
        "#SBATCH --partition=batch",
        "#SBATCH --exclusive",
    ]:
        assert line in script, line
    (srun,) = [line for line in script if line.startswith("srun ") and "torchrun" in line]
    assert "--container-image IMAGE" in srun
    assert re.search(r"--container-mounts /lustre:/lustre,/\S+:/nemo_run ", srun), srun
    torchrun = srun[srun.index("torchrun") :]
    assert torchrun.startswith("torchrun --rdzv-backend c10d --rdzv-endpoint $head_node_ip:29500 ")
    assert "--nnodes 2 --nproc-per-node 4 --node-rank $SLURM_NODEID" in torchrun
    assert "-m nemo_run.core.runners.fdl_runner" in torchrun
    # the job itself: TP=4 on 2 nodes of 4 GPUs, global batch 2 (one clip per data-parallel rank)
    for needle in [
        "tensor_model_parallel_size=4",
        "num_nodes=2",
        "devices=4",
        "global_batch_size=2",
        "latent_shape=(5, 40, 53)",
        "path='/lustre/checkpoints/Cosmos-Predict1-4B-nemo'",
    ]:
        assert needle in out, needle


def test_readme_local_tp2_line_starts_two_processes(runs):
    out = _ok(runs[LOCAL_TP2_LINE[0]])
    assert "Dry run of the launch on LocalExecutor" in out
    assert " torchrun --rdzv-backend c10d --rdzv-endpoint localhost:0 " in _flat(out)
    assert " --nnodes 1 --nproc-per-node 2 --node-rank 0 " in _flat(out)
    assert "tensor_model_parallel_size=2" in out and "devices=2" in out and "global_batch_size=1" in out


@pytest.mark.parametrize("where,command", NEMO_DOC_COMMANDS, ids=[c[:70] for _, c in NEMO_DOC_COMMANDS])
def test_documented_nemo_command_parses(runs, where, command):
    out = _ok(runs[command])
    assert "Dry run for " in out, out[-3000:]


@pytest.mark.parametrize("where,command", COSMOS_DOC_COMMANDS, ids=[c[:70] for _, c in COSMOS_DOC_COMMANDS])
def test_documented_cosmos_ar_command_parses(where, command):
    """Through the real argparse tree, so flags added or renamed by any subcommand keep the docs honest."""
    from nemo_cosmos_ar.cli import build_parser

    try:
        args = build_parser().parse_args(argv_of(command)[1:])
    except SystemExit as e:
        pytest.fail(f"{where}: `{command}` does not parse (exit {e.code})")
    assert args.command == argv_of(command)[1]


def test_executor_forms_agree(runs):
    """Keyword call (README), positional call, dotted overrides and no sizes at all: the same 2 x 4 job."""
    for name in ("slurm_positional", "slurm_dotted", "slurm_sized_by_recipe"):
        script = _sbatch(_ok(runs[name]))
        assert "#SBATCH --nodes=2" in script and "#SBATCH --gpus-per-node=4" in script, name
        assert any("--nnodes 2 --nproc-per-node 4 " in line for line in script), name
    # over SSH: the same script, with nemo-run's files in the cluster's job_dir (nothing connects in a dry run)
    script = _sbatch(_ok(runs["slurm_ssh"]))
    assert "#SBATCH --nodes=1" in script and "#SBATCH --gpus-per-node=4" in script
    assert any(line.startswith("#SBATCH --output=/lustre/runs/") for line in script), script
    assert _error_line(runs["local_too_many"]) == (
        "Error: the executor starts 1 node(s) x 8 process(es) but the recipe trains on trainer.num_nodes=1 x "
        "trainer.devices=4: make run.executor.ntasks_per_node match the recipe (or set trainer.num_nodes / "
        "trainer.devices), or leave the executor's sizes out to take the recipe's"
    )


def test_device_override_keeps_one_clip_per_gpu(runs):
    out = _ok(runs["devices_8"])
    assert "[cosmos_ar] 8 GPUs at TP x CP = 4: data.global_batch_size 1 -> 2 (one clip per GPU per step)" in out
    assert "global_batch_size=2" in out


def test_overrides_that_cannot_work_are_one_line(runs):
    assert _error_line(runs["peft_unknown"]) == (
        "Error: peft=dora: Cosmos AR recipes take peft=lora (LoRA adapters on the frozen model) or peft=none (train "
        "all weights)"
    )
    assert _error_line(runs["peft_field_without_lora"]) == (
        "Error: peft.dim sets a LoRA field, but this run trains all weights: add peft='lora' to the factory, e.g. "
        '--factory "cosmos_ar_4b_tealrobotsmall_tp1(peft=lora)" (or peft=lora on the line)'
    )
    assert _error_line(runs["peft_rank_vs_tp"]) == (
        "Error: peft.dim=30 is not divisible by the tensor-parallel size 4: the adapters are split across TP ranks "
        "like their layers; use a multiple of 4"
    )
    assert _error_line(runs["peft_some_layers"]) == (
        "Error: peft.target_modules=['*.layers.3.*'] adapts linear_fc1 in layer(s) [3] of 16 only: checkpoints store "
        "each weight stacked over all layers, so adapt a linear in every layer or in none (name it, e.g. linear_fc1)"
    )
    assert _error_line(runs["latent_shape"]).startswith(
        "Error: model.config.latent_shape is derived from the clip size and cannot be set on the command line: "
        "pass resolution=HEIGHTxWIDTH and num_frames=N to the factory instead"
    )
    assert "resolution 100x640 is not a multiple of 16 in both sides" in _error_line(runs["bad_resolution"])


def test_overrides_that_work(runs):
    out = _ok(runs["overrides"])
    assert out.count("latent_shape=(3, 30, 40)") == 2  # model and data: 17 frames at 480x640
    assert "path='/ckpt/4b-nemo'" in out and "CosmosAutoResume(" in out
    assert (
        "[cosmos_ar] trainer.max_steps=1000: the learning-rate schedule now warms up for 100 steps and decays "
        "until step 1000 (was 5000 of 50000)" in out
    )
    sched = out[out.index("lr_scheduler=CosineAnnealingScheduler(") :][:400]
    assert "max_steps=1000," in sched and "warmup_steps=100," in sched
    assert "[cosmos_ar] WARNING: no data_path: this run trains on MOCK clips" in out
    # without a base checkpoint the dry run warns (a real launch refuses: test_recipes checks that path)
    assert "[cosmos_ar] WARNING: finetune needs the base model" in _ok(runs["tp1_default"])


def _peft_block(out: str) -> str:
    """The ``peft`` row of the dry run's config table, flattened: ``CosmosLoRA( target_modules=[...], dim=..``."""
    block = out[out.index("│ peft ") :]
    block = block[: block.index("│ resume ")]
    return re.sub(r"\s+", " ", re.sub(r"[│]", " ", block)).strip()


def test_lora_dry_runs_show_the_adapters(runs):
    """peft=lora on the line or as the factory argument: the Cosmos LoRA with its settings (overrides applied),
    the run named <name>_lora, model TFLOP/s from the LoRA count."""
    out = _ok(runs["peft"])
    assert _peft_block(out) == (
        "peft CosmosLoRA( target_modules=['linear_qkv', 'linear_proj', 'linear_fc1', "
        "'linear_fc2'], dim=16, alpha=32, dropout=0.0)"
    )
    assert "name='base_4b_example_tealrobotsmall_tp1_lora'" in out and "CosmosLoRAMetrics(flops_per_token=0.0)" in out
    out = _ok(runs["peft_factory"])
    assert (
        _peft_block(out)
        == "peft CosmosLoRA( target_modules=['linear_qkv', 'linear_fc2'], dim=32, alpha=16, dropout=0.0)"
    )
    assert "name='cosmos_ar_4b_tealrobot_tp4_lora'" in out and "tensor_model_parallel_size=4" in out
    out = _ok(runs["peft_24gb"])
    assert "dim=32," in _peft_block(out) and "name='cosmos_ar_4b_tealrobotsmall_lora_24gb'" in out
    assert "recompute_num_layers=8" in out and "latent_shape=(5, 24, 40)" in out


def test_guide_experiment_names(runs):
    out = _ok(runs["guide_name"])
    assert "name='base_4b_example_tealrobot_tp4'" in out and "latent_shape=(5, 40, 53)" in out
    assert "tensor_model_parallel_size=4" in out
    out = _ok(runs["guide_name_small"])
    assert "name='base_4b_example_tealrobotsmall_tp1'" in out and "latent_shape=(5, 24, 40)" in out
    assert "[cosmos_ar] cosmos_ar_4b_tealrobotsmall_tp1: warm-up 100 steps (10% of max_steps=1000" in out


def test_recipe_dry_runs_print_complete_configs(runs):
    out = _ok(runs["tp1_default"])
    for needle in [
        "CosmosARConfig4B",
        "latent_shape=(5, 24, 40)",
        "tensor_model_parallel_size=1",
        "lr=0.001",
        "weight_decay=0.05",
        "clip_grad=1.0",
        "warmup_steps=5000",
        "CosmosPrecision(precision='bf16')",
        "grad_reduce_in_fp32=False",
        "check_for_nan_in_grad=False",
        "bias_activation_fusion=True",
        "apply_rope_fusion=True",
        "gradient_accumulation_fusion=True",
        "CosmosOptimizerModule",
        "CosmosStrategy",
        "posttraining/autoregressive_base",
    ]:
        assert needle in out, needle
    # the other memory mode, chosen by one argument; recompute of 2 layers
    out = _ok(runs["tp1_mixed"])
    for needle in [
        "CosmosPrecision(precision='bf16-mixed')",
        "grad_reduce_in_fp32=True",
        "check_for_nan_in_grad=True",
        "recompute_granularity='full'",
        "recompute_method='block'",
        "recompute_num_layers=2",
    ]:
        assert needle in out, needle
    assert "gradient_accumulation_fusion=True" not in out
    out = _ok(runs["tp4_sp"])
    assert "latent_shape=(5, 40, 53)" in out and "tensor_model_parallel_size=4" in out and "devices=4" in out
    assert "sequence_parallel=True" in out
    out = _ok(runs["12b"])
    assert "CosmosARConfig12B" in out and "tensor_model_parallel_size=8" in out and "devices=8" in out
    assert "latent_shape=(5, 40, 53)" in out


def test_no_terminal_no_question(runs):
    """Without -y and without a terminal: one error naming -y, not nemo-run's `Continue? [y/N]: Unexpected error:`;
    a piped "n" is an answer."""
    res = runs["no_terminal"]
    assert _error_line(res) == (
        "Error: stdin is not a terminal and gave no answer to 'Continue? [y/N]': add -y (--yes) to launch without "
        "asking"
    )
    assert res["out"].count("Continue?") == 1 and "Unexpected error" not in res["out"]  # only in the message
    out = _ok(runs["answered_no"])
    assert out.rstrip().endswith("Exiting...") and "Launching" not in out


def test_cosmos_ar_is_quiet_by_default():
    """A clean `cosmos-ar describe` prints its answer and nothing else (torch's pynvml FutureWarning and the like
    are filtered unless --verbose)."""
    cmd = [sys.executable, "-m", "nemo_cosmos_ar.cli", "describe", "--model", "tiny", "--resolution", "64x96"]
    cmd += ["--num-frames", "17"]
    env = child_env()
    env.pop("PYTHONWARNINGS")  # as a user's shell has it
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 14 and lines[0].split() == ["model", "tiny"]
    assert lines[8].split() == ["latent", "grid", "3x4x6"]


def test_quiet_filters_only_third_party_and_restores():
    import logging
    import os
    import warnings

    from nemo_cosmos_ar.cli import quiet_third_party, wants_verbose

    assert wants_verbose(["describe", "--verbose"]) and wants_verbose(["--verbose", "describe"])
    assert not wants_verbose(["generate", "--", "--verbose"]) and not wants_verbose(["describe"])
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    log = logging.getLogger("some_library")
    log.addHandler(handler)
    before = (logging.root.manager.disable, os.environ.get("PYTHONWARNINGS"))
    try:
        for verbose in (False, True):
            records.clear()
            with warnings.catch_warnings():
                warnings.simplefilter("default")  # a user's plain interpreter, whatever pytest configured
                with quiet_third_party(verbose), warnings.catch_warnings(record=True) as caught:
                    warnings.warn_explicit("from a library", FutureWarning, "lib.py", 1, module="some_library")
                    warnings.warn_explicit("from us", UserWarning, "x.py", 1, module="nemo_cosmos_ar.conversion.x")
                    log.warning("library chatter")
                    log.error("library error")
            seen = sorted(str(w.message) for w in caught)
            assert seen == (["from a library", "from us"] if verbose else ["from us"])
            assert [r.getMessage() for r in records] == (
                ["library chatter", "library error"] if verbose else ["library error"]
            )
    finally:
        log.removeHandler(handler)
    assert (logging.root.manager.disable, os.environ.get("PYTHONWARNINGS")) == before
