"""The one place the training-sample layout is defined (torch only).

A clip is the DV8x16x16 token grid [T', H', W'] flattened row-major (W fastest) to L = T'·H'·W' ids in
[0, vocabulary) (``tokenizer.grid.tokens_per_clip``). One clip is one sample -- never concatenated with the next clip -- and becomes::

    tokens       = clip[:-1]            int64 [L-1]
    labels       = clip[1:]             int64 [L-1]
    loss_mask    = 0 for the first H'·W'-1 targets (rest of latent frame 0), 1 after   float [L-1]
    position_ids = 0 .. L-2             int64 [L-1]   (row p of the 3D RoPE table = grid cell p)
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from nemo_cosmos_ar.model.config import VIDEO_VOCAB_SIZE
from nemo_cosmos_ar.model.loss import first_frame_loss_mask
from nemo_cosmos_ar.tokenizer import grid


def flatten_grid(grid: torch.Tensor) -> torch.Tensor:
    """``[..., T, H, W]`` -> ``[..., T·H·W]`` (W fastest)."""
    return grid.reshape(*grid.shape[:-3], -1)


def unflatten_grid(seq: torch.Tensor, latent_shape: tuple[int, int, int]) -> torch.Tensor:
    return seq.reshape(*seq.shape[:-1], *latent_shape)


def sample_length(latent_shape: tuple[int, int, int]) -> int:
    """Tokens (and labels) per training sample: the clip less one, the input/label shift."""
    return grid.tokens_per_clip(latent_shape) - 1


def clip_to_sample(clip: torch.Tensor, latent_shape: tuple[int, int, int]) -> dict[str, torch.Tensor]:
    clip = torch.as_tensor(clip).long().reshape(-1)
    n = grid.tokens_per_clip(latent_shape)
    if clip.numel() != n:
        t, h, w = latent_shape
        raise ValueError(f"clip has {clip.numel()} tokens, the {t}x{h}x{w} grid needs {n}")
    return {
        "tokens": clip[:-1],
        "labels": clip[1:],
        "loss_mask": first_frame_loss_mask(latent_shape),
        "position_ids": torch.arange(clip.numel() - 1),
    }


class ClipSamples(Dataset):
    """Training samples over a dataset of clips (each item a flat int token tensor), expanded to ``num_samples``
    by walking a fresh seeded permutation of the clips each epoch. Index i is a pure function of (i, seed), so
    resuming at ``consumed_samples`` continues exactly where a run stopped."""

    def __init__(
        self,
        clips,
        latent_shape: tuple[int, int, int],
        num_samples: int | None = None,
        seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        if len(clips) == 0:
            raise ValueError("the clip dataset is empty")
        self.clips, self.latent_shape, self.seed, self.shuffle = clips, tuple(latent_shape), seed, shuffle
        self.num_samples = len(clips) if num_samples is None else int(num_samples)
        self._perms: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.num_samples

    def clip_index(self, i: int) -> int:
        n = len(self.clips)
        epoch, j = divmod(i, n)
        if not self.shuffle:
            return j
        if epoch not in self._perms:
            self._perms = {epoch: np.random.default_rng([self.seed, epoch]).permutation(n)}
        return int(self._perms[epoch][j])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return clip_to_sample(self.clips[self.clip_index(i)], self.latent_shape)


class RandomClips(Dataset):
    """``n`` random clips of the right layout, the same for a given seed (mock data for smoke runs and tests)."""

    def __init__(
        self, n: int, latent_shape: tuple[int, int, int], vocab_size: int = VIDEO_VOCAB_SIZE, seed: int = 0
    ) -> None:
        self.n, self.latent_shape, self.vocab_size, self.seed = n, tuple(latent_shape), vocab_size, seed

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        if not 0 <= i < self.n:
            raise IndexError(i)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        return torch.randint(0, self.vocab_size, (grid.tokens_per_clip(self.latent_shape),), generator=g)
