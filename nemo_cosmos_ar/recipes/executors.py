"""NeMo-Run executor factories for the CLI: ``run.executor=cosmos_local`` (torchrun on this machine) and
``run.executor=cosmos_slurm`` (sbatch + srun, optionally in a container, over SSH or on a login node).

Examples::

    nemo llm finetune --factory cosmos_ar_4b_tealrobot_tp4 run.executor=cosmos_local run.executor.ntasks_per_node=4
    nemo llm finetune --factory "cosmos_ar_4b_tealrobot_tp4(num_nodes=2)" \\
        run.executor="cosmos_slurm(account=my_acct,partition=batch,nodes=2,gpus_per_node=4,time=04:00:00)" \\
        run.executor.container_image=nvcr.io/nvidia/nemo:25.09

Pass sizes as factory arguments (``cosmos_slurm(nodes=2,gpus_per_node=4)``): they set the sbatch node/GPU counts
and torchrun's processes per node together.
"""


from typing import Optional

import nemo_run as run


@run.cli.factory(name="cosmos_local")
def cosmos_local(ntasks_per_node: int = 1) -> run.Config[run.LocalExecutor]:
    """``torchrun --nproc-per-node=ntasks_per_node`` on this machine."""
    return run.Config(run.LocalExecutor, ntasks_per_node=ntasks_per_node, launcher="torchrun")


@run.cli.factory(name="cosmos_slurm")
def cosmos_slurm(
    account: str = "",
    partition: Optional[str] = None,
    nodes: int = 1,
    gpus_per_node: int = 8,
    time: str = "04:00:00",
    container_image: Optional[str] = None,
    job_dir: str = "nemo_runs",
    ssh_host: Optional[str] = None,
    ssh_user: Optional[str] = None,
) -> run.Config[run.SlurmExecutor]:
    """srun starts one ``torchrun --nproc-per-node=gpus_per_node`` per node (c10d rendezvous on the first node), so
    ranks come from torchrun exactly as on one machine. Submits over SSH when ``ssh_host``
    is set, otherwise from the current (login) node. ``job_dir`` is where nemo-run keeps scripts and logs (on the
    cluster's shared filesystem). Mounts: ``run.executor.container_mounts='["/lustre:/lustre"]'``."""
    if ssh_host:
        tunnel = run.Config(run.SSHTunnel, host=ssh_host, user=ssh_user or "", job_dir=job_dir)
    else:
        tunnel = run.Config(run.LocalTunnel, job_dir=job_dir)
    return run.Config(
        run.SlurmExecutor, account=account, partition=partition, nodes=nodes, ntasks_per_node=1,
        gpus_per_node=gpus_per_node, torchrun_nproc_per_node=gpus_per_node, launcher="torchrun", time=time, container_image=container_image, container_mounts=[],
        tunnel=tunnel, exclusive=True, mem="0",
        env_vars={"TORCH_NCCL_AVOID_RECORD_STREAMS": "1", "NVTE_FUSED_ATTN": "1"},
    )  # fmt: skip
