"""``AutoResume`` for the Cosmos recipes: the restore config is always there, and a finetune refuses random weights.

NeMo's ``AutoResume`` takes ``restore_config=None`` when there is no base checkpoint, which makes the natural CLI
override ``resume.restore_config.path=ckpts/4b-nemo`` fail (there is no object to set ``path`` on). Here the recipes
always carry a ``RestoreConfig``; its ``path`` left empty means "no base checkpoint".
"""

import os
from dataclasses import dataclass
from typing import Optional

from nemo.lightning import AutoResume
from nemo.lightning.resume import AdapterPath

NO_BASE_CHECKPOINT = (
    "finetune needs the base model: pass base_checkpoint=<NeMo checkpoint from `cosmos-ar convert import`> to the "
    "factory (or resume.restore_config.path=...), or allow_random_init=True to train from random weights"
)
NO_LORA_BASE = (
    "{path} holds LoRA adapters of a run that started from random weights (allow_random_init, no base checkpoint): "
    "without the base they adapt, they cannot be resumed; start a new run from a base_checkpoint"
)


@dataclass(kw_only=True)
class CosmosAutoResume(AutoResume):
    """Resume the run's own last checkpoint if there is one, else restore ``restore_config.path`` (weights only).

    allow_random_init: start from random weights when there is neither (pretraining, smoke tests). False makes a
        finetune without a base checkpoint fail before the first step instead of silently training from scratch.
    """

    allow_random_init: bool = False

    def base_checkpoint(self) -> Optional[str]:
        cfg = self.restore_config
        return str(cfg.path) if cfg is not None and cfg.path else None

    def setup(self, trainer, model=None):
        if self.base_checkpoint() is None:
            self.restore_config = None  # NeMo would try to load the path None
            if not self.allow_random_init and not self.get_trainer_ckpt_path(model):
                raise ValueError(NO_BASE_CHECKPOINT)
        elif "://" not in self.restore_config.path:
            # A LoRA run records this path in its checkpoints as the base it adapts (adapter_metadata.json): make it
            # absolute, so resuming or exporting from another directory finds it.
            self.restore_config.path = os.path.abspath(self.restore_config.path)
        ckpt = self.get_trainer_ckpt_path(model)
        if isinstance(ckpt, AdapterPath) and str(ckpt.base_model_path) in ("None", "", "."):
            raise ValueError(NO_LORA_BASE.format(path=ckpt))
        return super().setup(trainer, model)
