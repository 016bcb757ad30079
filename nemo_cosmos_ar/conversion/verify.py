"""Checks on weight files before they are imported (torch only, no NeMo): dtype and finiteness of every tensor,
and the MD5 checksums NVIDIA publishes for the released files (``cosmos-ar convert import --verify``).

Why both: a checkpoint that loads and has the right shapes can still be garbage. An integer or quantised tensor
would be cast to float silently, and one NaN spreads to every logit at the first step. The MD5 check catches a
download or copy that is complete in size but has wrong bytes, which no shape check can see.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from nemo_cosmos_ar.conversion.writers import ConversionError
from nemo_cosmos_ar.download.checksums import PUBLISHED_MD5, md5_file

if TYPE_CHECKING:
    from nemo_cosmos_ar.conversion.native_io import NativeCheckpoint

# ---------------------------------------------------------------------------------------------------------------
# dtype and finiteness
# ---------------------------------------------------------------------------------------------------------------
# Weights of these dtypes are imported; anything else (integers, bool, fp64, fp8) is not a Cosmos AR checkpoint as
# released or trained (bf16, or fp32/fp16 from a custom run).
WEIGHT_DTYPES = (torch.bfloat16, torch.float16, torch.float32)


def check_weights(ckpt: NativeCheckpoint, chunk: int = 1 << 26) -> None:
    """Refuse weights that would import as garbage: a dtype outside ``WEIGHT_DTYPES`` (named by key), or NaN/Inf
    values (every affected key with its counts). Streams each tensor in chunks of ``chunk`` elements, so checking a
    4B file costs one read of it and no more than a chunk of extra memory."""
    bad_dtype = [(k, t.dtype) for k, t in ckpt.tensors.items() if t.dtype not in WEIGHT_DTYPES]
    if bad_dtype:
        k, dt = bad_dtype[0]
        more = f" (and {len(bad_dtype) - 1} more tensors)" if len(bad_dtype) > 1 else ""
        raise ConversionError(
            f"{ckpt.name}: tensor {k} is {str(dt).removeprefix('torch.')}{more}; model weights must "
            "be bfloat16, float16 or float32 (integer or quantised tensors are not a Cosmos AR "
            "checkpoint): pass the released model.pt or a float export of it"
        )
    bad = []
    for k, t in ckpt.tensors.items():
        flat = t.reshape(-1)
        nan = inf = 0
        for a in range(0, flat.numel(), chunk):
            part = flat[a : a + chunk]
            if not bool(torch.isfinite(part).all()):
                n = int(torch.isnan(part).sum())
                nan, inf = nan + n, inf + int((~torch.isfinite(part)).sum()) - n
        if nan or inf:
            bad.append(f"{k} ({', '.join(f'{c} {w}' for c, w in ((nan, 'NaN'), (inf, 'Inf')) if c)})")
    if bad:
        shown = ", ".join(bad[:6]) + (f" and {len(bad) - 6} more" if len(bad) > 6 else "")
        raise ConversionError(
            f"{ckpt.name}: non-finite values in {len(bad)} tensor(s): {shown}; the file is corrupt "
            "or comes from a diverged run: use another checkpoint"
        )


# ---------------------------------------------------------------------------------------------------------------
# Published MD5 checksums
# ---------------------------------------------------------------------------------------------------------------
# The published MD5s and the streaming reader are the download command's (one table: download/checksums.py).


class ChecksumError(ConversionError):
    """A file's MD5 differs from the expected one, or no expected value is known."""


def published_md5(path: str | Path) -> tuple[str, str]:
    """``(key, md5)`` for a file in the released layout; ``KeyError`` if the table has no such file."""
    p = Path(path)
    key = f"{p.parent.name}/{p.name}"
    return key, PUBLISHED_MD5[key]


def verify_md5(path: str | Path, expected: str | None = None) -> str:
    """Check ``path`` against ``expected`` (32 hex digits) or, when None, against ``PUBLISHED_MD5``; returns the MD5.

    Raises ``ChecksumError`` on a mismatch, or when no expected value is known (before reading the file).
    """
    p = Path(path)
    if expected is None:
        try:
            key, expected = published_md5(p)
        except KeyError:
            raise ChecksumError(
                f"--verify: no published MD5 for {p} (the table knows "
                f"{', '.join(sorted(PUBLISHED_MD5))}, in the released folder layout); pass the "
                "expected value as --verify <md5>"
            ) from None
    expected = expected.strip().lower()
    if len(expected) != 32 or any(c not in "0123456789abcdef" for c in expected):
        raise ChecksumError(f"--verify {expected!r}: an MD5 is 32 hex digits")
    got = md5_file(p)
    if got != expected:
        raise ChecksumError(
            f"{p}: MD5 {got} does not match the expected {expected}; the file is damaged or not the "
            "released one: download it again"
        )
    return got
