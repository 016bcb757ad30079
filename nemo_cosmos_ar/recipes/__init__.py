"""NeMo-Run recipe and executor factories. Loaded by the ``nemo`` CLI through this package's ``nemo_run.cli``
entry point, which registers ``cosmos_ar_*`` factories for ``nemo llm finetune|pretrain --factory ...``."""

from nemo_cosmos_ar.recipes import cosmos_ar, executors  # noqa: F401  (registration side effects)
