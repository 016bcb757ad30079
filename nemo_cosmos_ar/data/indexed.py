"""Writer of Megatron-Core's indexed dataset files (``.bin`` + ``.idx``) for fixed-length token rows.

Why not Megatron's own ``IndexedDatasetBuilder``: importing it imports all of ``megatron.core`` (5 s on a laptop
core, more on a GPU node, where it also tries to build a CUDA memory pool), and data preparation needs none of it.
The format is small; the files written here are byte-identical to the builder's (tests/test_data_prep.py checks
that against the installed Megatron-Core), and training reads them with Megatron's ``IndexedDataset``.

Layout (little-endian), for ``n`` sequences, each its own document:

* ``.bin``: the rows back to back, in ``dtype``.
* ``.idx``: the 9-byte magic ``MMIDIDX\\0\\0``; version ``u64 = 1``; dtype code ``u8``; sequence count ``u64 = n``;
  document count ``u64 = n + 1``; sequence lengths ``int32[n]``; byte offsets of the sequences ``int64[n]``;
  document boundaries ``int64[n + 1] = 0, 1, ..., n``.
"""

from __future__ import annotations

import struct

import numpy as np

MAGIC = b"MMIDIDX\x00\x00"
VERSION = 1
# Megatron-Core's numeric codes for the element type (its DType enum).
DTYPE_CODES = {
    np.dtype(t): c
    for t, c in [
        (np.uint8, 1),
        (np.int8, 2),
        (np.int16, 3),
        (np.int32, 4),
        (np.int64, 5),
        (np.float64, 6),
        (np.float32, 7),
        (np.uint16, 8),
    ]
}


class IndexedRowsWriter:
    """Appends rows of ``row_length`` elements to ``<prefix>.bin``; ``finalize()`` writes ``<prefix>.idx``.

    Args:
        prefix: path without the extension.
        dtype: element type (one of ``DTYPE_CODES``).
        row_length: elements per row (every row is one sequence and one document).
    """

    def __init__(self, prefix: str, dtype, row_length: int) -> None:
        self.dtype = np.dtype(dtype)
        if self.dtype not in DTYPE_CODES:
            raise ValueError(
                f"Megatron indexed datasets cannot hold {self.dtype}; use one of "
                f"{', '.join(sorted(d.name for d in DTYPE_CODES))}"
            )
        self.prefix, self.row_length, self.rows = prefix, int(row_length), 0
        self._bin = open(prefix + ".bin", "wb")

    def add(self, row) -> None:
        row = np.asarray(row)
        if row.size != self.row_length:
            raise ValueError(f"{self.prefix}.bin: row of {row.size} elements, expected {self.row_length}")
        self._bin.write(np.ascontiguousarray(row, dtype=self.dtype).tobytes())
        self.rows += 1

    def finalize(self) -> None:
        self._bin.close()
        n = self.rows
        with open(self.prefix + ".idx", "wb") as f:
            f.write(MAGIC + struct.pack("<Q", VERSION) + struct.pack("<B", DTYPE_CODES[self.dtype]))
            f.write(struct.pack("<Q", n) + struct.pack("<Q", n + 1))
            f.write(np.full(n, self.row_length, dtype="<i4").tobytes())
            f.write((np.arange(n, dtype="<i8") * (self.row_length * self.dtype.itemsize)).tobytes())
            f.write(np.arange(n + 1, dtype="<i8").tobytes())
