"""Reading a prepared token dataset (``cosmos-ar prepare-data`` output) -- Megatron-Core only, no NeMo.

Layout of a dataset folder::

    metadata.json        latent_shape, resolution, num_frames, tokenizer identity, per-sample provenance
    train.bin/.idx       Megatron indexed dataset, one document per clip (T'·H'·W' uint16 token ids)
    val.bin/.idx         the held-out clips (may be empty)
"""

from __future__ import annotations

import json
import os

import torch
from torch.utils.data import Dataset

METADATA = "metadata.json"


def read_metadata(folder: str) -> dict:
    path = os.path.join(folder, METADATA)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: is {folder!r} a dataset written by `cosmos-ar prepare-data`?")
    with open(path) as f:
        return json.load(f)


class ClipTokenDataset(Dataset):
    """Clips of one split; item i is a flat int64 tensor of T'·H'·W' token ids."""

    def __init__(self, folder: str, split: str = "train") -> None:
        from megatron.core.datasets.indexed_dataset import IndexedDataset

        self.meta = read_metadata(folder)
        self.latent_shape = tuple(self.meta["latent_shape"])
        prefix = os.path.join(folder, split)
        if not os.path.isfile(prefix + ".idx"):
            raise FileNotFoundError(f"{prefix}.idx not found (split {split!r} of {folder})")
        self.split = split
        # Megatron cannot memory-map an empty .bin: an empty split (e.g. no validation videos) has no reader.
        self._ds = IndexedDataset(prefix, mmap=True) if os.path.getsize(prefix + ".bin") else None
        n = self.latent_shape[0] * self.latent_shape[1] * self.latent_shape[2]
        lengths = self._ds.sequence_lengths if self._ds is not None else []
        if len(lengths) and (int(lengths.min()) != n or int(lengths.max()) != n):
            raise ValueError(f"{prefix}: documents are not all {n} tokens long (the {self.latent_shape} grid)")

    def __len__(self) -> int:
        return 0 if self._ds is None else len(self._ds)

    def __getitem__(self, i: int) -> torch.Tensor:
        if not 0 <= i < len(self):
            raise IndexError(f"clip {i} of a {len(self)}-clip split")
        return torch.from_numpy(self._ds[i].astype("int64"))

    def source(self, i: int) -> dict:
        """Provenance of clip ``i``: ``{"video": path under the source folder, "first_frame", "frame_stride"}``."""
        return self.meta["samples"][self.split][i]
