"""Streaming MD5 of checkpoint files and what to do with a file whose MD5 is wrong.

Checkpoints are up to tens of GB, so the hash is computed over a fixed buffer (``CHUNK`` bytes, reused with
``readinto``): memory stays at one buffer whatever the file size.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CHUNK = 8 << 20  # 8 MiB: large enough that the per-call overhead is noise, small next to any checkpoint


def md5_file(path: str | Path, chunk: int = CHUNK) -> str:
    """Hex MD5 of a file, read ``chunk`` bytes at a time into one reused buffer."""
    digest = hashlib.md5(usedforsecurity=False)  # an integrity check against NVIDIA's published values, not security
    buf = bytearray(chunk)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            digest.update(view[:n])
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
