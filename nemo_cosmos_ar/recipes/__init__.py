"""NeMo-Run recipe and executor factories. Loaded by the ``nemo`` CLI through this package's ``nemo_run.cli``
entry point, which registers ``cosmos_ar_*`` factories for ``nemo llm finetune|pretrain --factory ...`` and
installs the CLI fixes of ``cli_hooks`` (executor arguments, sizes, dry-run scripts, checks)."""

from nemo_cosmos_ar.recipes import cli_hooks, cosmos_ar, executors  # noqa: F401  (registration side effects)

cli_hooks.install()
