"""A dataset written piece by piece: hdmf's iterative write fed by a generator of row blocks.

Why: the synthetic writer must not hold a whole dataset (every spike time, every rate) in memory. hdmf writes an
`AbstractDataChunkIterator` chunk by chunk into a dataset created with its final shape, in HDF5 and in Zarr; this
one turns any generator of consecutive row blocks (spike times unit by unit, rates trial batch by trial batch)
into such chunks, merging small blocks so each write is at least `rows_per_write` rows.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
from hdmf.data_utils import AbstractDataChunkIterator, DataChunk

TARGET_CHUNK_BYTES = 1 << 20  # HDF5/Zarr chunk of about 1 MiB: cheap partial reads, few chunks
TARGET_WRITE_BYTES = 8 << 20  # rows gathered before one write


class RowBlocks(AbstractDataChunkIterator):
    """The rows of a (rows, ...) dataset of known shape, produced in order by `blocks()`.

    `blocks` is called once, when hdmf starts writing; its blocks must add up to exactly `shape[0]` rows (a
    mismatch raises, so a wrong size is never written silently).
    """

    def __init__(self, blocks: Callable[[], Iterator[np.ndarray]], shape: tuple[int, ...], dtype: np.dtype | type,
                 name: str = "dataset") -> None:
        if shape[0] == 0:
            raise ValueError("RowBlocks needs at least one row; write an empty array directly")
        self._blocks, self._shape, self._dtype, self.name = blocks, tuple(int(s) for s in shape), np.dtype(dtype), name
        row_bytes = self._dtype.itemsize * int(np.prod(self._shape[1:], dtype=np.int64))
        self._chunk_rows = int(min(self._shape[0], max(1, TARGET_CHUNK_BYTES // row_bytes)))
        self._write_rows = max(self._chunk_rows, TARGET_WRITE_BYTES // row_bytes)
        self._iterator: Iterator[np.ndarray] | None = None
        self._row = 0
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0

    def __iter__(self) -> "RowBlocks":
        return self

    def __len__(self) -> int:  # hdmf sizes a VectorIndex's target and checks shapes with len()/shape
        return self._shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    def _take(self) -> np.ndarray | None:
        """Rows gathered up to the write size, or None when the generator is done and nothing is left."""
        if self._iterator is None:
            self._iterator = iter(self._blocks())
        while self._pending_rows < self._write_rows:
            block = next(self._iterator, None)
            if block is None:
                break
            block = np.asarray(block, dtype=self._dtype)
            if block.shape[1:] != self._shape[1:]:
                raise ValueError(f"{self.name}: a block of shape {block.shape} does not fit rows of {self._shape[1:]}")
            if len(block):
                self._pending.append(block)
                self._pending_rows += len(block)
        if not self._pending:
            return None
        rows = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        self._pending, self._pending_rows = [], 0
        return rows

    def __next__(self) -> DataChunk:
        rows = self._take()
        if rows is None:
            if self._row != self._shape[0]:
                raise ValueError(f"{self.name}: {self._row} rows were produced for a dataset of {self._shape[0]}")
            raise StopIteration
        start, self._row = self._row, self._row + len(rows)
        if self._row > self._shape[0]:
            raise ValueError(f"{self.name}: more than the {self._shape[0]} rows it was declared with were produced")
        # one full slice per further axis: hdmf sizes the dataset from the selection's stops
        rest = tuple(slice(0, size) for size in self._shape[1:])
        return DataChunk(data=rows, selection=(slice(start, self._row), *rest))

    next = __next__

    def recommended_chunk_shape(self) -> tuple[int, ...]:
        return (self._chunk_rows, *self._shape[1:])

    def recommended_data_shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def maxshape(self) -> tuple[int, ...]:
        return self._shape
