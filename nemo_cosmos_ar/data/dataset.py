"""Reading a prepared token dataset (``cosmos-ar prepare-data`` output) -- Megatron-Core only, no NeMo.

Layout of a dataset folder::

    metadata.json        latent_shape, resolution, num_frames, tokenizer identity, per-sample provenance
    train.bin/.idx       Megatron indexed dataset, one document per clip (T'·H'·W' uint16 token ids)
    val.bin/.idx         the held-out clips (may be empty)
"""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import torch
from torch.utils.data import Dataset

from nemo_cosmos_ar.tokenizer import grid

METADATA = "metadata.json"


class DatasetError(ValueError):
    """A dataset folder that training cannot read; the message names the file and how to fix it."""


REDO = "prepare it again with `cosmos-ar prepare-data ... --overwrite`"


def read_metadata(folder: str) -> dict:
    path = os.path.join(folder, METADATA)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: is {folder!r} a dataset written by `cosmos-ar prepare-data`?")
    try:
        with open(path) as f:
            meta = json.load(f)
    except (ValueError, OSError) as e:
        raise DatasetError(f"{path} is not readable JSON ({str(e).splitlines()[0][:120]}); {REDO}") from None
    shape = meta.get("latent_shape") if isinstance(meta, dict) else None
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(x, int) and x > 0 for x in shape)):
        raise DatasetError(f"{path}: latent_shape must be three positive integers, got {shape!r}; {REDO}")
    return meta


def check_split(prefix: str, tokens_per_clip: int) -> int:
    """Check a split's ``.idx`` header and sizes against its ``.bin`` without Megatron; returns its clip count.

    Megatron's reader trusts the index: a truncated or foreign ``.idx`` fails deep inside training (or reads
    garbage), after the run folder exists. Every field is checked here instead, each error naming the file.
    """
    from nemo_cosmos_ar.data.indexed import DTYPE_CODES, MAGIC, VERSION

    idx, bin_ = prefix + ".idx", prefix + ".bin"
    for f in (idx, bin_):
        if not os.path.isfile(f):
            raise FileNotFoundError(f"{f} not found; {REDO}")
    size = os.path.getsize(idx)
    head_len = len(MAGIC) + 8 + 1 + 8 + 8
    with open(idx, "rb") as f:
        head = f.read(head_len)
    if len(head) < head_len or head[: len(MAGIC)] != MAGIC:
        raise DatasetError(f"{idx} is not a Megatron indexed-dataset index (bad header, {size} bytes); {REDO}")
    version, code, n, docs = struct.unpack_from("<QBQQ", head, len(MAGIC))
    codes = {c: dt for dt, c in DTYPE_CODES.items()}
    if version != VERSION or code not in codes:
        raise DatasetError(f"{idx}: unsupported index version {version} or dtype code {code}; {REDO}")
    want = head_len + 4 * n + 8 * n + 8 * docs
    if size != want or docs != n + 1:
        raise DatasetError(f"{idx} is truncated or damaged: {size:,} bytes for {n:,} clips (expected {want:,}); {REDO}")
    lengths = np.fromfile(idx, dtype="<i4", count=n, offset=head_len)
    if n and (int(lengths.min()) != tokens_per_clip or int(lengths.max()) != tokens_per_clip):
        raise DatasetError(f"{idx}: clips are not all {tokens_per_clip} tokens long (the metadata's grid); {REDO}")
    have, need = os.path.getsize(bin_), n * tokens_per_clip * codes[code].itemsize
    if have != need:
        raise DatasetError(f"{bin_} has {have:,} bytes, its index describes {need:,}; {REDO}")
    return int(n)


def check_dataset(folder: str) -> dict:
    """Everything training will read, checked up front (metadata, each split's index and data); returns the
    metadata. The train split must hold at least one clip; a val split may be absent or empty."""
    meta = read_metadata(folder)
    n = grid.tokens_per_clip(meta["latent_shape"])
    if check_split(os.path.join(folder, "train"), n) == 0:
        raise DatasetError(
            f"{folder}: the train split holds no clips; prepare it from videos with at least one full clip each"
        )
    if os.path.exists(os.path.join(folder, "val.idx")):
        check_split(os.path.join(folder, "val"), n)
    return meta


class ClipTokenDataset(Dataset):
    """Clips of one split; item i is a flat int64 tensor of T'·H'·W' token ids."""

    def __init__(self, folder: str, split: str = "train") -> None:
        from megatron.core.datasets.indexed_dataset import IndexedDataset

        self.meta = read_metadata(folder)
        self.latent_shape = tuple(self.meta["latent_shape"])
        prefix = os.path.join(folder, split)
        if not os.path.isfile(prefix + ".idx"):
            raise FileNotFoundError(f"{prefix}.idx not found (split {split!r} of {folder})")
        n = grid.tokens_per_clip(self.latent_shape)
        check_split(prefix, n)
        self.split = split
        # Megatron cannot memory-map an empty .bin: an empty split (e.g. no validation videos) has no reader.
        self._ds = IndexedDataset(prefix, mmap=True) if os.path.getsize(prefix + ".bin") else None
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
