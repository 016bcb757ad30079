import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("PYTHONWARNINGS", "ignore")

# The tests' entry point: the process-wide fixes every CPU test of Megatron-Core / NeMo needs (the CUDA stand-ins
# on a machine without CUDA; NumPy 2 compatibility), applied once here instead of as a side effect of an import.
from nemo_cosmos_ar.runtime import prepare_process  # noqa: E402

prepare_process()


@pytest.fixture(scope="session")
def megatron_tp1():
    """Megatron parallel state at TP=1 in this process (gloo on CPU), set up once per session."""
    from nemo_cosmos_ar.runtime import init_megatron

    return init_megatron(tp=1)


# The in-process Megatron fixture sets these (and keeps MASTER_PORT bound): child processes must not inherit them.
DIST_ENV = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK")


def child_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in DIST_ENV}
    env.update(OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", **extra)
    return env


def run_in_triton_interpreter(path: str) -> str:
    """Run the test file ``path`` in a child pytest with ``TRITON_INTERPRET=1`` set before anything imports Triton
    (the Triton kernel tests on CPU); fail with its output unless it passes. Returns pytest's summary line."""
    cmd = [sys.executable, "-m", "pytest", path, "-q", "-p", "no:cacheprovider"]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, env=child_env(TRITON_INTERPRET="1"), cwd=REPO
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


def run_torchrun(script: str, *args: str, nproc: int = 2, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``tests/scripts/<script>`` under torchrun on CPU and fail the test with its output if it fails."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--standalone",
        str(REPO / "tests" / "scripts" / script),
        *args,
    ]
    env = child_env()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc
