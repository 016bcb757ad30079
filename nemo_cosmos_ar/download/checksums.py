"""Streaming MD5 of checkpoint files and what to do with a file whose MD5 is wrong.

Checkpoints are up to tens of GB, so the hash is computed over a fixed buffer (``CHUNK`` bytes, reused with
``readinto``): memory stays at one buffer whatever the file size.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CHUNK = 8 << 20  # 8 MiB: large enough that the per-call overhead is noise, small next to any checkpoint

# Where the table below lives, for messages that tell the user what may be out of date.
TABLE = "nemo_cosmos_ar/download/checksums.py PUBLISHED_MD5"

# The MD5s NVIDIA publishes for the released files (MD5_CHECKSUM_LOOKUP in cosmos-predict1's
# scripts/download_autoregressive_checkpoints.py), keyed by path under the checkpoints folder in its layout; the files
# this project reads (the Video2World models and T5 are left out). Used by `cosmos-ar download` (skip a file that
# matches, move aside one that does not) and `cosmos-ar convert import --verify`.
_SAFETY_FILTER_MD5 = "b46dc2ad821fc3b0d946549d7ade19cf"  # the same file in every model repo's guardrail/ folder
PUBLISHED_MD5: dict[str, str] = {
    "Cosmos-Predict1-4B/model.pt": "5fdc62fc87fbf470dbcc2288589b7942",
    "Cosmos-Predict1-4B/guardrail/video_content_safety_filter/safety_filter.pt": _SAFETY_FILTER_MD5,
    "Cosmos-Predict1-12B/model.pt": "ed748fabcb544d30d35385a8c28efb4d",
    "Cosmos-Predict1-12B/guardrail/video_content_safety_filter/safety_filter.pt": _SAFETY_FILTER_MD5,
    "Cosmos-Predict1-7B-Decoder-DV8x16x16ToCV8x8x8-720p/model.pt": "a30149cc3730f3142b01fd374b6076f8",
    "Cosmos-Predict1-7B-Decoder-DV8x16x16ToCV8x8x8-720p/aux_vars.pt": "29e450d81839e82bb4bdbf12e43a74f1",
    "Cosmos-Tokenize1-CV8x8x8-720p/autoencoder.jit": "7f658580d5cf617ee1a1da85b1f51f0d",
    "Cosmos-Tokenize1-CV8x8x8-720p/encoder.jit": "f5834d03645c379bc0f8ad14b9bc0299",
    "Cosmos-Tokenize1-CV8x8x8-720p/decoder.jit": "ff21a63ed817ffdbe4b6841111ec79a8",
    "Cosmos-Tokenize1-CV8x8x8-720p/mean_std.pt": "f07680ad7eefae57d698778e2a0c7c96",
    "Cosmos-Tokenize1-DV8x16x16-720p/autoencoder.jit": "606b8585b637f06057725cbb67036ae6",
    "Cosmos-Tokenize1-DV8x16x16-720p/encoder.jit": "95186b0410346a3f0cf250b76daec452",
    "Cosmos-Tokenize1-DV8x16x16-720p/decoder.jit": "f0c8a9d992614a43e7ce24ebfc901e26",
}


def md5_file(path: str | Path, chunk: int = CHUNK, on_bytes=None) -> str:
    """Hex MD5 of a file, read ``chunk`` bytes at a time into one reused buffer (constant memory for an 8 GB
    ``model.pt``); ``on_bytes(n)`` is called after each piece (a progress bar)."""
    digest = hashlib.md5(usedforsecurity=False)  # an integrity check against NVIDIA's published values, not security
    buf = bytearray(chunk)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            digest.update(view[:n])
            if on_bytes is not None:
                on_bytes(n)
    return digest.hexdigest()


def verify(path: Path, expected: str) -> tuple[bool, str]:
    """(matches, actual MD5) for an existing file."""
    actual = md5_file(path)
    return actual == expected.lower(), actual


def hub_metadata_path(local_dir: Path, filename: str) -> Path:
    """Where huggingface_hub records that ``filename`` was downloaded into ``local_dir`` (0.2x-1.x layout:
    ``<local_dir>/.cache/huggingface/download/<filename>.metadata``). With that record and the file present, a later
    ``snapshot_download`` of the same commit trusts the file without a request, so a bad file's record goes too."""
    return local_dir / ".cache" / "huggingface" / "download" / f"{filename}.metadata"


def move_aside(path: Path, actual_md5: str, local_dir: Path, filename: str) -> Path:
    """Rename a file with a wrong MD5 to ``<name>.bad-md5-<first 8 hex>`` and drop huggingface_hub's record of it, so
    that nothing takes it for a complete download and the next run fetches it again. Returns the new path."""
    target = path.with_name(f"{path.name}.bad-md5-{actual_md5[:8]}")
    os.replace(path, target)  # same folder: atomic; an older copy with the same bad content is replaced
    hub_metadata_path(local_dir, filename).unlink(missing_ok=True)
    return target
