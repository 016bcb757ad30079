"""NeMo-Run executor factories for the CLI: ``executor=cosmos_local`` (torchrun on this machine) and
``executor=cosmos_slurm`` (sbatch + srun, optionally in a container, over SSH or on a login node).

Examples::

    nemo llm finetune --factory cosmos_ar_4b_tealrobot_tp4 executor=cosmos_local executor.ntasks_per_node=4
    nemo llm finetune --factory "cosmos_ar_4b_tealrobot_tp4(num_nodes=2)" executor=cosmos_slurm \\
        executor.account=my_acct executor.partition=batch executor.nodes=2 executor.time=04:00:00 \\
        executor.container_image=nvcr.io/nvidia/nemo:25.09 'executor.container_mounts=["/lustre:/lustre"]'
"""

from __future__ import annotations

from typing import Optional

import nemo_run as run


@run.cli.factory(name="cosmos_local")
def cosmos_local(ntasks_per_node: int = 1) -> run.LocalExecutor:
    """``torchrun --nproc-per-node=ntasks_per_node`` on this machine."""
    return run.LocalExecutor(ntasks_per_node=ntasks_per_node, launcher="torchrun")


@run.cli.factory(name="cosmos_slurm")
def cosmos_slurm(
    account: str = "",
    partition: Optional[str] = None,
    nodes: int = 1,
    gpus_per_node: int = 8,
    time: str = "04:00:00",
    container_image: Optional[str] = None,
    container_mounts: Optional[list[str]] = None,
    job_dir: str = "nemo_runs",
    ssh_host: Optional[str] = None,
    ssh_user: Optional[str] = None,
) -> run.SlurmExecutor:
    """One task per GPU (srun launches them; NeMo reads SLURM_* for the ranks). Submits over SSH when ``ssh_host``
    is set, otherwise from the current (login) node. ``job_dir`` is where nemo-run keeps scripts and logs (on the
    cluster's shared filesystem)."""
    tunnel = (
        run.SSHTunnel(host=ssh_host, user=ssh_user or "", job_dir=job_dir) if ssh_host else run.LocalTunnel(job_dir=job_dir)
    )
    return run.SlurmExecutor(
        account=account, partition=partition, nodes=nodes, ntasks_per_node=gpus_per_node,
        gpus_per_node=gpus_per_node, time=time, container_image=container_image,
        container_mounts=list(container_mounts or []), tunnel=tunnel, exclusive=True, mem="0",
        env_vars={"TORCH_NCCL_AVOID_RECORD_STREAMS": "1", "NVTE_FUSED_ATTN": "1"},
    )  # fmt: skip
