"""NeMo data module over prepared clip-token datasets (or mock clips).

One clip = one sample, never concatenated with the next; batches carry ``tokens``/``labels`` (the clip shifted by
one), ``loss_mask`` (0 on the targets inside the first latent frame) and ``position_ids`` (0..L-2 = rows of the 3D
RoPE table, i.e. grid cells in (t, h, w) order) -- all defined in ``data.token_layout``.

Where the clips come from, in order of precedence:
  ``path``     a folder written by ``cosmos-ar prepare-data`` (``train``/``val`` splits + ``metadata.json``);
  ``dataset``  a name in ``data.registry`` (e.g. ``tealrobot_video_small``), resolved to its folder;
  neither      mock clips: random ids of the right layout (smoke runs, tests).

Data-parallel sharding, micro/global batch sizes and the consumed-samples position for exact resume are handled
by NeMo's ``MegatronDataSampler``; the train order is a seeded per-epoch permutation (``ClipSamples``), so sample i
is a pure function of (i, seed) and a resumed run continues with exactly the clips it would have seen.
"""

# No `from __future__ import annotations`: nemo-run parses `a.b=c` CLI overrides from the real annotations.

from typing import Optional, Sequence

import lightning.pytorch as pl
from nemo.lightning.data import WrappedDataLoader
from nemo.lightning.pytorch.plugins import MegatronDataSampler
from torch.utils.data import default_collate

from nemo_cosmos_ar.data.token_layout import ClipSamples, RandomClips, sample_length
from nemo_cosmos_ar.model.config import VIDEO_VOCAB_SIZE

MOCK_LATENT_SHAPE = (5, 24, 40)  # 33 frames at 384x640, cosmos-predict1's "tealrobot_video_small" grid


class CosmosVideoDataModule(pl.LightningDataModule):
    """Args:
    path: folder written by ``cosmos-ar prepare-data``; None with ``dataset=None`` for mock clips.
    latent_shape: token grid (T', H', W'); must match the data. None takes it from the dataset (mock: 5x24x40).
    micro_batch_size / global_batch_size: per-GPU and global batch in clips.
    num_workers / pin_memory: DataLoader settings.
    seed: seed of the train order (and of the mock clips).
    num_mock_clips: size of the mock train set (a small fixed set is learnable: loss falls).
    vocab_size: id range of the mock clips.
    num_val_samples: validation samples per evaluation; None = the whole val split, rounded up to whole global
        batches (at least one).
    dataset: registered dataset name, used when ``path`` is None.
    """

    def __init__(
        self,
        path: Optional[str] = None,
        latent_shape: Optional[Sequence[int]] = None,
        micro_batch_size: int = 1,
        global_batch_size: int = 1,
        num_workers: int = 2,
        seed: int = 0,
        num_mock_clips: int = 64,
        vocab_size: int = VIDEO_VOCAB_SIZE,
        pin_memory: bool = True,
        num_val_samples: Optional[int] = None,
        dataset: Optional[str] = None,
    ) -> None:
        super().__init__()
        self.dataset = dataset
        if path is None and dataset is not None:
            from nemo_cosmos_ar.data.registry import get_dataset

            path = get_dataset(dataset).folder_path
        self.path = path
        data_shape = self._data_latent_shape()
        if latent_shape is None:
            latent_shape = data_shape or MOCK_LATENT_SHAPE
        self.latent_shape = tuple(int(x) for x in latent_shape)
        if data_shape is not None and data_shape != self.latent_shape:
            raise ValueError(
                f"{self.path}: dataset latent grid {data_shape} != model grid {self.latent_shape}; prepare the data "
                "at the recipe's resolution/frames or set the model's latent_shape to match"
            )
        self.micro_batch_size, self.global_batch_size = micro_batch_size, global_batch_size
        self.num_workers, self.seed, self.pin_memory = num_workers, seed, pin_memory
        self.num_mock_clips, self.vocab_size, self.num_val_samples = num_mock_clips, vocab_size, num_val_samples
        self.seq_length = sample_length(self.latent_shape)
        self.tokenizer = None  # no text tokenizer; `nemo llm finetune` sets model.tokenizer from here
        self.init_global_step = 0
        self._train_ds = self._val_ds = None
        self.data_sampler = MegatronDataSampler(
            seq_len=self.seq_length,
            micro_batch_size=micro_batch_size,
            global_batch_size=global_batch_size,
            dataloader_type="single",
        )

    def _data_latent_shape(self) -> Optional[tuple[int, int, int]]:
        """The grid recorded in the dataset's metadata (None for mock data)."""
        if self.path is None:
            return None
        from nemo_cosmos_ar.data.dataset import check_dataset

        # Checked in full here, while the recipe is built: a bad dataset fails before NeMo creates the run folder.
        return tuple(int(x) for x in check_dataset(self.path)["latent_shape"])

    def _clips(self, split: str):
        if self.path is None:
            n = self.num_mock_clips if split == "train" else max(1, self.num_mock_clips // 8)
            return RandomClips(n, self.latent_shape, self.vocab_size, seed=self.seed + (0 if split == "train" else 1))
        from nemo_cosmos_ar.data.dataset import ClipTokenDataset

        try:
            return ClipTokenDataset(self.path, split)
        except FileNotFoundError:
            if split == "train":
                raise
            return []

    def setup(self, stage: str = "") -> None:
        trainer = getattr(self, "trainer", None)
        max_steps = max(int(trainer.max_steps), 1) if trainer is not None else 1
        train = self._clips("train")
        n_train = max_steps * self.global_batch_size
        self._train_ds = ClipSamples(train, self.latent_shape, num_samples=n_train, seed=self.seed)
        val = self._clips("val")
        self._val_ds = None
        if len(val):
            # The Megatron sampler drops incomplete global batches: evaluate whole batches, wrapping around.
            n = self.num_val_samples or -(-len(val) // self.global_batch_size) * self.global_batch_size
            self._val_ds = ClipSamples(val, self.latent_shape, num_samples=n, shuffle=False)

    def _loader(self, ds, mode: str):
        self.init_global_step = self.trainer.global_step
        self.data_sampler.init_global_step = self.init_global_step
        return WrappedDataLoader(
            mode=mode,
            dataset=ds,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            collate_fn=default_collate,
        )

    def train_dataloader(self):
        return self._loader(self._train_ds, "train")

    def val_dataloader(self):
        return self._loader(self._val_ds, "validation") if self._val_ds is not None else []

    def reconfigure_limit_batches(self) -> None:
        """Count ``limit_train/val_batches`` in micro-batches like NeMo's GPT data modules (the strategy calls it)."""
        from megatron.core.num_microbatches_calculator import get_num_microbatches
        from nemo.collections.llm.gpt.data.utils import _reconfigure_limit_batches

        self.trainer.limit_train_batches = _reconfigure_limit_batches(self.trainer.limit_train_batches, self._train_ds)
        self.trainer.limit_val_batches = _reconfigure_limit_batches(self.trainer.limit_val_batches, self._val_ds)
        self.trainer.num_sanity_val_steps *= get_num_microbatches()

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
