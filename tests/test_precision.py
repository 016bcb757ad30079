"""Precision modes (issue 11): pure bf16 (cosmos-predict1's: no fp32 master copy) and bf16-mixed, on the tiny recipe
on CPU. Mode selection builds the right Megatron optimizer; both modes train alike; a checkpoint of either mode
resumes in the other with its Adam moments."""

import json
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, child_env

CKPT = "posttraining/autoregressive_base/cosmos_ar_tiny_cpu/checkpoints"


def _train(out, precision, max_steps, tag):
    """Tiny recipe in ``precision``; checkpoints after steps 2 and 4; returns per-step losses and optimizer facts."""
    losses, optim = out.parent / f"{tag}.losses", out.parent / f"{tag}.optim"
    cmd = [sys.executable, str(REPO / "tests/scripts/train_tiny.py"), "--out", str(out), "--losses", str(losses),
           "--precision", precision, "--max-steps", str(max_steps), "--sched-steps", "10", "--save-every", "2",
           "--dump-optim", str(optim)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=child_env(), cwd=REPO)
    if proc.returncode != 0:
        pytest.fail(f"{precision} run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    rows = lambda p: {d["step"]: d for d in map(json.loads, p.read_text().splitlines())}  # noqa: E731
    return {s: d["loss"] for s, d in rows(losses).items()}, rows(optim), proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("precision")
    r = {}
    for mode in ("bf16", "bf16-mixed"):
        r[mode] = _train(tmp / mode, mode, 4, mode)  # from scratch, same seed and clips
        other = "bf16-mixed" if mode == "bf16" else "bf16"
        for target in (mode, other):  # resume the step-4 checkpoint in the same and in the other mode
            dst = tmp / f"{mode}->{target}"
            shutil.copytree(tmp / mode, dst)
            r[f"{mode}->{target}"] = _train(dst, target, 6, f"{mode}-{target}")
    return r


def test_mode_builds_the_right_optimizer(runs):
    """Pure bf16: Megatron's FP32Optimizer stepping bf16 parameters with bf16 moments; bf16-mixed: fp32 masters."""
    pure, mixed = runs["bf16"][1][1], runs["bf16-mixed"][1][1]
    assert pure["param_dtype"] == "torch.bfloat16" and pure["leaf"] == "FP32Optimizer" and pure["moment_dtype"] == "torch.bfloat16"
    assert mixed["param_dtype"] == "torch.float32" and mixed["leaf"] == "Float16OptimizerWithFloat16Params"
    assert mixed["moment_dtype"] == "torch.float32"
    assert pure["grad_dtype"] == "torch.bfloat16" and mixed["grad_dtype"] == "torch.float32"  # gradient reduction


def test_modes_train_alike(runs):
    """Same init and clips: step 1 (no update yet) is identical; the next steps agree within bf16 noise. 2% of the
    loss: the tiny model's updates at lr 3e-3 move bf16 weights by a few ulps, which is what the modes round
    differently; the loss itself falls by 5% over these steps, so the tolerance still catches a wrong update."""
    pure, mixed = runs["bf16"][0], runs["bf16-mixed"][0]
    assert pure[1] == mixed[1]
    for step in (2, 3, 4):
        assert abs(pure[step] - mixed[step]) / mixed[step] < 0.02, (step, pure, mixed)
    assert pure[4] < pure[1] - 0.3 and mixed[4] < mixed[1] - 0.3


@pytest.mark.parametrize("saved,resumed", [("bf16", "bf16-mixed"), ("bf16-mixed", "bf16")])
def test_checkpoint_resumes_in_the_other_mode(runs, saved, resumed):
    same, cross = runs[f"{saved}->{saved}"], runs[f"{saved}->{resumed}"]
    assert "Restored all states" in cross[2]
    # Step 5 runs on the restored bf16 weights in both: identical. Step 6 has had one update in different modes.
    assert cross[0][5] == same[0][5]
    assert abs(cross[0][6] - same[0][6]) / same[0][6] < 0.02
    # The Adam moments were restored, not restarted: after step 5 they match the same-mode continuation within
    # bf16 rounding (a fresh optimizer would hold about a third of their size after one step).
    for key in ("exp_avg", "exp_avg_sq"):
        a, b = cross[1][5][key], same[1][5][key]
        assert abs(a - b) / b < 0.01, (key, a, b)
    assert cross[1][5]["param_dtype"] == ("torch.bfloat16" if resumed == "bf16" else "torch.float32")
