"""Streaming, atomic checkpoint writers (torch only): ``torch.save``-compatible files and safetensors written one
tensor at a time from a declared layout, and outputs that appear under their final names only when complete.

Split out of ``native_io`` so that module holds the formats; this one holds the byte-level writing.
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import math
import os
import pickle
import shutil
import struct
import sys
import warnings
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import torch


class ConversionError(ValueError):
    """A checkpoint cannot be read or written; the message names the file and says how to fix it."""


# ---------------------------------------------------------------------------------------------------------------
# Streaming writers
# ---------------------------------------------------------------------------------------------------------------
Layout = Sequence[tuple[str, tuple[int, ...], torch.dtype]]
_ST_DTYPES = {
    torch.bfloat16: "BF16",
    torch.float16: "F16",
    torch.float32: "F32",
    torch.float64: "F64",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


class _StorageStub:
    def __init__(self, key: str, dtype: torch.dtype, numel: int) -> None:
        self.key, self.dtype, self.numel = key, dtype, numel


class _TensorStub:
    """Pickles exactly like a contiguous CPU tensor of ``shape`` whose storage is record ``data/<key>``."""

    def __init__(self, storage: _StorageStub, shape: tuple[int, ...]) -> None:
        self.storage, self.shape = storage, tuple(shape)

    def __reduce_ex__(self, protocol):
        stride = tuple(math.prod(self.shape[i + 1 :]) for i in range(len(self.shape)))
        return torch._utils._rebuild_tensor_v2, (self.storage, 0, self.shape, stride, False, collections.OrderedDict())


# Storage classes torch.save names in its pickles (``TypedStorage._pickle_storage_type``).
_STORAGE_TYPES = {
    torch.bfloat16: "BFloat16Storage",
    torch.float16: "HalfStorage",
    torch.float32: "FloatStorage",
    torch.float64: "DoubleStorage",
    torch.int64: "LongStorage",
    torch.int32: "IntStorage",
    torch.int16: "ShortStorage",
    torch.int8: "CharStorage",
    torch.uint8: "ByteStorage",
    torch.bool: "BoolStorage",
}


def _storage_type(dtype: torch.dtype):
    return getattr(torch, _STORAGE_TYPES[dtype])


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _StorageStub):
            return ("storage", _storage_type(obj.dtype), obj.key, "cpu", obj.numel)
        return None


class TorchStreamWriter:
    """Writes a file that ``torch.load`` reads as ``{key: tensor}`` (the zip format of ``torch.save``), one tensor at
    a time: the pickled layout goes first, then each tensor's bytes as record ``data/<i>``."""

    def __init__(self, path: Path, layout: Layout, label: str | Path | None = None) -> None:
        self.path, self.layout, self._next, self.label = path, list(layout), 0, label or path
        try:
            self._zip = torch._C.PyTorchFileWriter(str(path), True, 64)
        except TypeError:  # older torch
            self._zip = torch._C.PyTorchFileWriter(str(path))
        stubs = {
            k: _TensorStub(_StorageStub(str(i), dt, math.prod(shape)), shape)
            for i, (k, shape, dt) in enumerate(self.layout)
        }
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TypedStorage deprecation
            _Pickler(buf, protocol=2).dump(stubs)
        data = buf.getvalue()
        self._zip.write_record("data.pkl", data, len(data))
        self._zip.write_record(".format_version", "1", 1)
        self._zip.write_record(".storage_alignment", "64", 2)
        self._zip.write_record("byteorder", sys.byteorder, len(sys.byteorder))

    def write(self, key: str, tensor: torch.Tensor) -> None:
        _check_next(self.label, self.layout, self._next, key, tensor)
        t = tensor.detach().to("cpu", self.layout[self._next][2]).contiguous()
        nbytes = t.numel() * t.element_size()
        if t.storage_offset() or t.untyped_storage().nbytes() != nbytes:
            t = t.clone()  # a record is a whole storage; a view into a larger one is copied (one tensor at most)
        self._zip.write_record(f"data/{self._next}", t.untyped_storage(), nbytes)
        self._next += 1

    def close(self) -> None:
        if self._next != len(self.layout):
            raise ConversionError(f"{self.label}: only {self._next} of {len(self.layout)} tensors were written")
        self._zip.write_end_of_file()


class SafetensorsStreamWriter:
    """Writes a ``.safetensors`` file one tensor at a time (the header holds all offsets, so it goes first)."""

    def __init__(
        self, path: Path, layout: Layout, metadata: dict[str, str] | None = None, label: str | Path | None = None
    ) -> None:
        self.path, self.layout, self._next, self.label = path, list(layout), 0, label or path
        header: dict = {}
        off = 0
        for k, shape, dt in self.layout:
            n = math.prod(shape) * dt.itemsize
            header[k] = {"dtype": _ST_DTYPES[dt], "shape": list(shape), "data_offsets": [off, off + n]}
            off += n
        header["__metadata__"] = dict(metadata or {"format": "pt"})
        hb = json.dumps(header, separators=(",", ":")).encode()
        hb += b" " * (-len(hb) % 8)
        self._f = open(path, "wb")  # noqa: SIM115  (closed in close())
        self._f.write(struct.pack("<Q", len(hb)) + hb)

    def write(self, key: str, tensor: torch.Tensor) -> None:
        _check_next(self.label, self.layout, self._next, key, tensor)
        t = tensor.detach().to("cpu", self.layout[self._next][2]).contiguous()
        self._f.write(t.view(torch.uint8).reshape(-1).numpy().data)
        self._next += 1

    def close(self, check: bool = True) -> None:
        self._f.close()
        if check and self._next != len(self.layout):
            raise ConversionError(f"{self.label}: only {self._next} of {len(self.layout)} tensors were written")


def write_safetensors(
    path: Path,
    layout: Layout,
    tensors: Iterable[tuple[str, torch.Tensor]],
    metadata: dict[str, str] | None = None,
    label: str | Path | None = None,
) -> None:
    """Stream ``(key, tensor)`` pairs, in ``layout`` order, into a new ``.safetensors`` file. On any failure the file
    is closed unchecked and the error propagates (the caller's ``atomic_outputs`` then removes it)."""
    w = SafetensorsStreamWriter(path, layout, metadata, label)
    try:
        for k, t in tensors:
            w.write(k, t)
    except BaseException:
        w.close(check=False)
        raise
    w.close()


def _check_next(path: str | Path, layout: list, i: int, key: str, tensor: torch.Tensor) -> None:
    if i >= len(layout) or layout[i][0] != key or tuple(tensor.shape) != tuple(layout[i][1]):
        want = f"{layout[i][0]} {list(layout[i][1])}" if i < len(layout) else "nothing"
        raise ConversionError(f"{path}: got tensor {key} {list(tensor.shape)} at position {i}, expected {want}")


# ---------------------------------------------------------------------------------------------------------------
# Atomic outputs
# ---------------------------------------------------------------------------------------------------------------
def check_free(paths: Iterable[Path], overwrite: bool) -> None:
    for p in paths:
        if (p.exists() or p.is_symlink()) and not overwrite:
            raise FileExistsError(
                f"{p} already exists; pass overwrite=True (--overwrite) to replace it, or choose another output path"
            )


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        p.unlink()


@contextlib.contextmanager
def atomic_outputs(finals: Sequence[Path], overwrite: bool = False, directory: bool = False) -> Iterator[list[Path]]:
    """Yield temporary paths next to ``finals``; on success rename them into place, on any error remove them.

    ``directory=True`` creates the temporaries as empty folders. Existing finals are refused unless ``overwrite``;
    with it they are replaced only after everything new has been written.
    """
    from nemo_cosmos_ar.checks import check_writable, topmost_missing

    finals = [Path(p).absolute() for p in finals]
    check_free(finals, overwrite)
    for p in finals:
        check_writable(p)
    # every folder this creates (not just the last level) goes again if the write fails
    created = sorted({top for p in finals if (top := topmost_missing(p.parent)) is not None})
    for p in finals:
        p.parent.mkdir(parents=True, exist_ok=True)
    tag = f"partial-{os.getpid()}"
    temps = [p.parent / f".{p.name}.{tag}" for p in finals]
    try:
        for t in temps:
            _remove(t)
            if directory:
                t.mkdir()
        yield temps
        for t, p in zip(temps, finals):
            if p.exists() or p.is_symlink():
                old = p.parent / f".{p.name}.replaced-{os.getpid()}"
                os.replace(p, old)
                os.replace(t, p)
                _remove(old)
            else:
                os.replace(t, p)
    except BaseException:
        for t in temps:
            _remove(t)
        for d in created:
            shutil.rmtree(d, ignore_errors=True)
        raise
