"""NeMo-Run recipe and executor factories. Loaded by the ``nemo`` CLI through this package's ``nemo_run.cli``
entry point, which registers ``cosmos_ar_*`` factories for ``nemo llm finetune|pretrain --factory ...`` and
installs the CLI fixes of ``cli_hooks`` (executor arguments, sizes, dry-run scripts, checks).

As the entry point of ``nemo llm ...`` (and of scripts that build a recipe), it applies the process-wide fixes
first: ``runtime.prepare_process()`` (NumPy 2 compatibility; the CUDA stand-ins on a CPU-only machine)."""

from nemo_cosmos_ar.runtime import prepare_process

prepare_process()

from nemo_cosmos_ar.recipes import cli_hooks, cosmos_ar, executors  # noqa: E402,F401  (registration side effects)

cli_hooks.install()
