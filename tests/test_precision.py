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


def _train(out, precision, max_steps, tag, *extra):
    """Tiny recipe in ``precision``, a checkpoint after step 4; returns per-step losses and optimizer facts."""
    losses, optim = out.parent / f"{tag}.losses", out.parent / f"{tag}.optim"
    cmd = [
        sys.executable,
        str(REPO / "tests/scripts/train_tiny.py"),
        "--out",
        str(out),
        "--losses",
        str(losses),
        "--precision",
        precision,
        "--max-steps",
        str(max_steps),
        "--sched-steps",
        "10",
        "--save-every",
        "4",
        "--dump-optim",
        str(optim),
        *extra,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=child_env(), cwd=REPO)
    if proc.returncode != 0:
        pytest.fail(f"{precision} run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    rows = lambda p: {d["step"]: d for d in map(json.loads, p.read_text().splitlines())}  # noqa: E731
    return {s: d["loss"] for s, d in rows(losses).items()}, rows(optim), proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each mode from scratch for 6 steps (same seed and clips), then its step-4 checkpoint resumed in the other
    mode for steps 5-6: the cross-mode run must continue the uninterrupted run of the mode that saved it."""
    tmp = tmp_path_factory.mktemp("precision")
    r = {mode: _train(tmp / mode, mode, 6, mode) for mode in ("bf16", "bf16-mixed")}
    for saved, resumed in (("bf16", "bf16-mixed"), ("bf16-mixed", "bf16")):
        dst = tmp / f"{saved}->{resumed}"
        shutil.copytree(tmp / saved, dst)
        r[f"{saved}->{resumed}"] = _train(
            dst, resumed, 6, f"{saved}-{resumed}", "--resume-from", str(dst / CKPT / "step=3")
        )
    return r


def test_mode_builds_the_right_optimizer(runs):
    """Pure bf16: Megatron's FP32Optimizer stepping bf16 parameters with bf16 moments; bf16-mixed: fp32 masters."""
    pure, mixed = runs["bf16"][1][1], runs["bf16-mixed"][1][1]
    assert pure["param_dtype"] == "torch.bfloat16" and pure["leaf"] == "FP32Optimizer"
    assert pure["moment_dtype"] == "torch.bfloat16"
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
    whole, cross = runs[saved], runs[f"{saved}->{resumed}"]
    assert "Restored all states" in cross[2] and sorted(cross[0]) == [5, 6]
    # Step 5 runs on the restored bf16 weights, as in the uninterrupted run: identical. Step 6 has had one update
    # in the other mode.
    assert cross[0][5] == whole[0][5]
    assert abs(cross[0][6] - whole[0][6]) / whole[0][6] < 0.02
    # The Adam moments were restored, not restarted: after step 5 they match the uninterrupted run within bf16
    # rounding (a fresh optimizer would hold only one step of them).
    for key in ("exp_avg", "exp_avg_sq"):
        a, b = cross[1][5][key], whole[1][5][key]
        assert abs(a - b) / b < 0.01, (key, a, b)
    assert cross[1][5]["param_dtype"] == ("torch.bfloat16" if resumed == "bf16" else "torch.float32")


class _Leaf:
    """The three methods ``clip_bf16_grads`` uses of a Megatron optimizer, over real tensors."""

    def __init__(self, params, for_norm):
        self.params, self.for_norm = params, for_norm

    def get_parameters(self):
        return self.params

    def get_main_grads_for_grad_norm(self):
        return [p.grad for p in self.for_norm]

    def get_grad_stats_parallel_group(self):
        return None


def test_bf16_clipping_matches_the_global_norm_formula():
    """Norm = L2 over the non-duplicate gradients (in fp32); every gradient is scaled by max/(norm+1e-6) when the
    norm exceeds max; below it nothing changes; a NaN gradient stops with one line."""
    import torch

    from nemo_cosmos_ar.nemo_glue.precision import clip_bf16_grads

    g = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.zeros(s, dtype=torch.bfloat16)) for s in ((4, 3), (5,), (2, 2))]
    for p in params:
        p.grad = (torch.randn(p.shape, generator=g) * 3).to(torch.bfloat16)
    leaf = _Leaf(params, params[:2])  # the third is a TP duplicate: scaled, not counted
    before = [p.grad.clone() for p in params]
    want = torch.cat([b.float().flatten() for b in before[:2]]).norm().item()
    clip_bf16_grads(leaf, max_norm=1.0)
    norm = leaf.get_grad_norm()
    assert abs(norm - want) < 1e-5 * want and norm > 1.0
    for p, b in zip(params, before):  # the same factor for all (bf16 rounds the factor and each product: 2^-7)
        scaled = b.float() / (want + 1e-6)
        assert (p.grad.float() - scaled).abs().max().item() <= 2**-7 * scaled.abs().max().item()
    clipped = torch.cat([p.grad.float().flatten() for p in params[:2]]).norm().item()
    assert abs(clipped - 1.0) < 1e-2
    unchanged = [p.grad.clone() for p in params]
    clip_bf16_grads(leaf, max_norm=100.0)
    leaf.get_grad_norm()
    assert all(torch.equal(p.grad, u) for p, u in zip(params, unchanged))
    params[0].grad[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="^the gradient norm is nan: training diverged"):
        leaf.get_grad_norm()


def test_pure_bf16_trains_with_clipping_and_fused_wgrad(tmp_path):
    """The GPU recipe's pure-bf16 path with gradient clipping on (Megatron's own clip asserts fp32 gradients, which
    once stopped every 4B run at its first step) and the weight-gradient GEMM accumulating into the buffer
    (``model/fused_wgrad.py``; its numerics: tests/test_fused_kernels.py)."""
    losses, opt, _ = _train(tmp_path / "a", "bf16", 3, "a", "--clip", "0.05", "--grad-accum-fusion")
    assert all(opt[s]["grad_norm"] > 0.05 for s in (1, 2, 3))  # the clip acted at every step (random init)
    assert opt[1]["leaf"] == "FP32Optimizer" and opt[1]["moment_dtype"] == "torch.bfloat16"
    assert losses[3] < losses[1]
