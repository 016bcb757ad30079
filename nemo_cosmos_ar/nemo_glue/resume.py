"""``AutoResume`` for the Cosmos recipes: the restore config is always there, and a finetune refuses random weights.

NeMo's ``AutoResume`` takes ``restore_config=None`` when there is no base checkpoint, which makes the natural CLI
override ``resume.restore_config.path=ckpts/4b-nemo`` fail (there is no object to set ``path`` on). Here the recipes
always carry a ``RestoreConfig``; its ``path`` left empty means "no base checkpoint".
"""

from dataclasses import dataclass
from typing import Optional

from nemo.lightning import AutoResume

NO_BASE_CHECKPOINT = (
    "finetune needs the base model: pass base_checkpoint=<NeMo checkpoint from `cosmos-ar convert import`> to the "
    "factory (or resume.restore_config.path=...), or allow_random_init=True to train from random weights"
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
        return super().setup(trainer, model)
