"""NeMo data module over prepared clip-token datasets (or mock clips).

One clip = one sample; batches carry tokens/labels/loss_mask/position_ids as defined in ``data.token_layout``.
Data-parallel sharding, micro/global batch sizes and the consumed-samples position for exact resume are handled
by NeMo's ``MegatronDataSampler``; the sample order is a seeded per-epoch permutation (``ClipSamples``).
"""

from __future__ import annotations

from typing import Optional, Sequence

import lightning.pytorch as pl
from nemo.lightning.data import WrappedDataLoader
from nemo.lightning.pytorch.plugins import MegatronDataSampler
from torch.utils.data import default_collate

from nemo_cosmos_ar.data.token_layout import ClipSamples, RandomClips


class CosmosVideoDataModule(pl.LightningDataModule):
    """Args:
    path: folder written by ``cosmos-ar prepare-data``; None for mock clips (random ids, right layout).
    latent_shape: token grid (T', H', W'); must match the dataset's metadata when ``path`` is given.
    micro_batch_size / global_batch_size: per-GPU and global batch in clips.
    num_mock_clips: size of the mock dataset (a small fixed set is learnable: loss falls).
    """

    def __init__(self, path: Optional[str] = None, latent_shape: Sequence[int] = (5, 24, 40),
                 micro_batch_size: int = 1, global_batch_size: int = 1, num_workers: int = 2, seed: int = 0,
                 num_mock_clips: int = 64, vocab_size: int = 64000, pin_memory: bool = True,
                 num_val_samples: Optional[int] = None) -> None:  # fmt: skip
        super().__init__()
        self.path = path
        self.latent_shape = tuple(int(x) for x in latent_shape)
        self.micro_batch_size, self.global_batch_size = micro_batch_size, global_batch_size
        self.num_workers, self.seed, self.pin_memory = num_workers, seed, pin_memory
        self.num_mock_clips, self.vocab_size, self.num_val_samples = num_mock_clips, vocab_size, num_val_samples
        t, h, w = self.latent_shape
        self.seq_length = t * h * w - 1
        self.tokenizer = None  # no text tokenizer; `nemo llm finetune` sets model.tokenizer from here
        self.init_global_step = 0
        self.data_sampler = MegatronDataSampler(
            seq_len=self.seq_length, micro_batch_size=micro_batch_size, global_batch_size=global_batch_size,
            dataloader_type="single",
        )  # fmt: skip

    def _clips(self, split: str):
        if self.path is None:
            n = self.num_mock_clips if split == "train" else max(1, self.num_mock_clips // 8)
            return RandomClips(n, self.latent_shape, self.vocab_size, seed=self.seed + (0 if split == "train" else 1))
        from nemo_cosmos_ar.data.dataset import ClipTokenDataset

        ds = ClipTokenDataset(self.path, split)
        if ds.latent_shape != self.latent_shape:
            raise ValueError(
                f"{self.path}: dataset latent grid {ds.latent_shape} != model grid {self.latent_shape}; prepare the "
                "data at the recipe's resolution/frames or set the model's latent_shape to match"
            )
        return ds

    def setup(self, stage: str = "") -> None:
        max_steps = max(int(self.trainer.max_steps), 1) if getattr(self, "trainer", None) else 1
        train = self._clips("train")
        self._train_ds = ClipSamples(train, self.latent_shape, num_samples=max_steps * self.global_batch_size, seed=self.seed)
        try:
            val = self._clips("val")
        except FileNotFoundError:
            val = []
        self._val_ds = ClipSamples(val, self.latent_shape, num_samples=self.num_val_samples or len(val), shuffle=False) if len(val) else None

    def _loader(self, ds, mode: str):
        self.init_global_step = self.trainer.global_step
        self.data_sampler.init_global_step = self.init_global_step
        return WrappedDataLoader(
            mode=mode, dataset=ds, num_workers=self.num_workers, pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0, collate_fn=default_collate,
        )  # fmt: skip

    def train_dataloader(self):
        return self._loader(self._train_ds, "train")

    def val_dataloader(self):
        return self._loader(self._val_ds, "validation") if self._val_ds is not None else []

    # -- exact resume: the sampler continues at the consumed-samples position saved in the checkpoint --
    def state_dict(self) -> dict:
        consumed = self.data_sampler.compute_consumed_samples(self.trainer.global_step - self.init_global_step)
        return {"consumed_samples": consumed}

    def load_state_dict(self, state_dict: dict) -> None:
        from megatron.core.num_microbatches_calculator import update_num_microbatches

        consumed = state_dict["consumed_samples"]
        self.data_sampler.init_consumed_samples = consumed
        self.data_sampler.prev_consumed_samples = consumed
        update_num_microbatches(consumed_samples=consumed, consistency_check=False)
        self.data_sampler.if_first_step = 1
