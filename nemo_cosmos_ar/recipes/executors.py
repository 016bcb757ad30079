"""NeMo-Run executor factories for the CLI: ``run.executor=cosmos_local`` (torchrun on this machine) and
``run.executor=cosmos_slurm`` (sbatch + srun through nemo-run's ``SlurmExecutor``, optionally in a container, from
a login node (``LocalTunnel``) or over SSH (``SSHTunnel``)).

Examples (add ``--dryrun`` to print the config and the torchrun command / sbatch script instead of launching)::

    nemo llm finetune --factory cosmos_ar_4b_tealrobot_tp4 run.executor=cosmos_local -y
    nemo llm finetune --factory "cosmos_ar_4b_tealrobot_tp4(num_nodes=2)" \\
        run.executor="cosmos_slurm(account=my_acct,partition=batch,nodes=2,gpus_per_node=4,time=04:00:00)" \\
        run.executor.container_image=nvcr.io/nvidia/nemo:25.09 run.executor.container_mounts='["/lustre:/lustre"]' -y

Sizes: one process per GPU. Left out, they come from the recipe (``trainer.num_nodes`` nodes of
``trainer.devices`` processes); given (as factory arguments, positionally ``cosmos_slurm(ACCT,batch,2,4)``, or as
``run.executor.nodes=2 run.executor.gpus_per_node=4``) they must agree with the recipe, and torchrun's processes per
node follow ``gpus_per_node``. ``fit_to_recipe`` applies these rules; the ``nemo`` CLI calls it (``cli_hooks``), Python
callers call it themselves before ``run.run``.
"""

import os
from typing import Optional

import nemo_run as run

from nemo_cosmos_ar.recipes.cosmos_ar import RecipeError


@run.cli.factory(name="cosmos_local")
def cosmos_local(ntasks_per_node: Optional[int] = None) -> run.Config[run.LocalExecutor]:
    """``torchrun --nproc-per-node=ntasks_per_node`` on this machine (default: the recipe's ``trainer.devices``)."""
    return run.Config(run.LocalExecutor, ntasks_per_node=ntasks_per_node, launcher="torchrun")


@run.cli.factory(name="cosmos_slurm")
def cosmos_slurm(
    account: str = "",
    partition: Optional[str] = None,
    nodes: Optional[int] = None,
    gpus_per_node: Optional[int] = None,
    time: str = "04:00:00",
    container_image: Optional[str] = None,
    job_dir: str = "nemo_runs",
    ssh_host: Optional[str] = None,
    ssh_user: Optional[str] = None,
    ship_code: bool = True,
) -> run.Config[run.SlurmExecutor]:
    """sbatch with ``nodes`` x ``gpus_per_node`` GPUs; srun starts one ``torchrun --nproc-per-node=gpus_per_node``
    per node (c10d rendezvous on the first node), so ranks come from torchrun exactly as on one machine.

    Submits over SSH when ``ssh_host`` is set, otherwise from the current (login) node. ``job_dir`` is where
    nemo-run keeps scripts and logs: a folder on the cluster's shared filesystem (absolute for SSH; a relative one
    is made absolute here for the login node). Mounts: ``run.executor.container_mounts='["/lustre:/lustre"]'``.
    ``ship_code``: nemo-run's ``GitArchivePackager`` copies the committed HEAD of the git checkout you launch from
    into the job (uncommitted changes are not shipped); False runs the package installed in the container image
    (the ``Dockerfile``'s), and then the launch directory need not be a git checkout.
    """
    if ssh_host:
        if not os.path.isabs(job_dir):
            raise RecipeError(f"cosmos_slurm: job_dir={job_dir!r} must be an absolute path on {ssh_host}")
        tunnel = run.Config(run.SSHTunnel, host=ssh_host, user=ssh_user or "", job_dir=job_dir)
    else:
        # srun mounts job_dir into the container, and container mounts need absolute paths.
        tunnel = run.Config(run.LocalTunnel, job_dir=os.path.abspath(job_dir))
    packager = run.Config(run.GitArchivePackager) if ship_code else run.Config(run.Packager)
    return run.Config(
        run.SlurmExecutor,
        packager=packager,
        account=account,
        partition=partition,
        nodes=nodes,
        ntasks_per_node=1,
        gpus_per_node=gpus_per_node,
        torchrun_nproc_per_node=gpus_per_node,
        launcher="torchrun",
        time=time,
        container_image=container_image,
        container_mounts=[],
        tunnel=tunnel,
        exclusive=True,
        mem="0",
        env_vars={"TORCH_NCCL_AVOID_RECORD_STREAMS": "1", "NVTE_FUSED_ATTN": "1"},
    )


def _recipe_size(task) -> tuple[int, int]:
    trainer = task.trainer
    return int(getattr(trainer, "num_nodes", 1) or 1), int(getattr(trainer, "devices", 1) or 1)


def fit_to_recipe(executor, task):
    """Fill the executor's unset sizes from the recipe and check that both describe the same job: ``nodes`` x
    processes per node must equal ``trainer.num_nodes`` x ``trainer.devices`` (Lightning and torchrun disagreeing
    means a hang or N processes fighting over fewer GPUs). Returns the executor (changed in place)."""
    nodes, devices = _recipe_size(task)
    if isinstance(executor, run.SlurmExecutor):
        executor.nodes = executor.nodes or nodes
        executor.gpus_per_node = executor.gpus_per_node or devices
        # One torchrun per node with one process per GPU, unless the user chose another count explicitly.
        executor.torchrun_nproc_per_node = executor.torchrun_nproc_per_node or executor.gpus_per_node
        have = (executor.nnodes(), executor.nproc_per_node())
        knobs = "run.executor.nodes / run.executor.gpus_per_node"
    elif isinstance(executor, run.LocalExecutor):
        executor.ntasks_per_node = executor.ntasks_per_node or devices
        have = (1, executor.nproc_per_node())
        knobs = "run.executor.ntasks_per_node"
    else:
        return executor
    if have != (nodes, devices):
        raise RecipeError(
            f"the executor starts {have[0]} node(s) x {have[1]} process(es) but the recipe trains on "
            f"trainer.num_nodes={nodes} x trainer.devices={devices}: make {knobs} match the recipe (or set "
            "trainer.num_nodes / trainer.devices), or leave the executor's sizes out to take the recipe's"
        )
    return executor
