"""On-disk cache of a session's binned counts, for sessions whose counts do not fit the memory budget.

Why: a Neuropixels session of 2,000 units x 2 h cut into 1 s trials of 10 ms bins has 1.4e9 counts (5.8 GB as
float32, more than a laptop can hold three times while binning and training). The reader then bins unit chunk by
unit chunk into a chunked Zarr array (one trial per chunk, compact integer dtype) kept under the user's cache
folder, keyed by the session file's sha256 and the reader options, and the Dataset's `counts` variable reads it
lazily: `ds.counts[trials].values` reads only those trials, as float32, so every consumer sees the same values as
from memory.

Layout: <cache root>/<key>/counts.zarr (the array) and <key>/manifest.json (key, options, shape, dtype and a
sha256 over every stored chunk). A cache is written in a temporary folder and renamed into place when complete
(fileio.atomic_output); on reuse the manifest and the digest are checked first, and a cache that fails the check
is deleted and rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import xarray as xr
from xarray.backends.common import BackendArray
from xarray.core import indexing

from nwb_ldns.errors import OptionError
from nwb_ldns import limits

FORMAT_VERSION = 1
BUDGET_ENV = "NWB_LDNS_COUNTS_BUDGET"  # bytes the in-memory counts may take (x3 while binning), else on disk
CACHE_ENV = "NWB_LDNS_CACHE_DIR"  # where the counts caches live (default $XDG_CACHE_HOME/nwb-ldns/counts)
CHUNK_ENV = "NWB_LDNS_BINNING_CHUNK"  # bytes of spike times (and of binned float32 counts) handled at once
DEFAULT_CHUNK_BYTES = 128 << 20
MANIFEST = "manifest.json"
ARRAY = "counts.zarr"


def counts_budget() -> int:
    """Bytes the counts of a session may take in memory (times SESSION_BYTES_PER_COUNT / 4 while binning).

    NWB_LDNS_COUNTS_BUDGET (bytes) when set, else half the memory available now.
    """
    text = os.environ.get(BUDGET_ENV, "").strip()
    if text:
        try:
            value = int(float(text))
        except ValueError:
            raise OptionError(f"{BUDGET_ENV}={text!r} is not a number of bytes; set it to e.g. 2000000000 or "
                              "unset it") from None
        if value < 0:
            raise OptionError(f"{BUDGET_ENV}={text!r} is negative; set a number of bytes >= 0 or unset it")
        return value
    available = limits.available_memory()  # looked up at call time (tests pin it)
    return (available // 2) if available is not None else 1 << 62


def counts_in_memory(n_trials: float, n_bins: float, n_units: float) -> bool:
    """Whether a (trials x bins x units) session's counts are binned in memory (else into the on-disk cache)."""
    return float(n_trials) * float(n_bins) * float(n_units) * limits.SESSION_BYTES_PER_COUNT <= counts_budget()


def chunk_bytes() -> int:
    """Bytes of spike times read, and of float32 counts binned, at once (NWB_LDNS_BINNING_CHUNK, default 128 MiB)."""
    text = os.environ.get(CHUNK_ENV, "").strip()
    try:
        return max(1, int(float(text))) if text else DEFAULT_CHUNK_BYTES
    except ValueError:
        raise OptionError(f"{CHUNK_ENV}={text!r} is not a number of bytes; set it to e.g. 134217728 or unset "
                          "it") from None


def cache_root() -> Path:
    """NWB_LDNS_CACHE_DIR, else $XDG_CACHE_HOME/nwb-ldns/counts, else ~/.cache/nwb-ldns/counts."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nwb-ldns" / "counts"


def cache_key(source_sha256: str, options: Mapping[str, Any]) -> str:
    """The cache folder name: sha256 of the session file's sha256, the reader options and the format version."""
    text = json.dumps({"version": FORMAT_VERSION, "source_sha256": source_sha256, "options": dict(options)},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def count_dtype(max_count: float) -> np.dtype:
    """The smallest dtype that holds every count exactly: uint8, uint16, else float32."""
    if max_count <= np.iinfo(np.uint8).max:
        return np.dtype(np.uint8)
    if max_count <= np.iinfo(np.uint16).max:
        return np.dtype(np.uint16)
    return np.dtype(np.float32)


def _digest(store: Path) -> tuple[str, int, int]:
    """(sha256 over every file of the array, in sorted order with its name; number of files; bytes)."""
    digest, n_files, n_bytes = hashlib.sha256(), 0, 0
    for path in sorted(p for p in store.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(store)).encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
                n_bytes += len(block)
        digest.update(b"\0")
        n_files += 1
    return digest.hexdigest(), n_files, n_bytes


class CountsWriter:
    """The zarr array a cache is built in: (trials, bins, units) in `dtype`, one trial and `unit_block` units
    per chunk (the binning writes whole unit blocks, so no chunk is ever read back while writing)."""

    def __init__(self, folder: Path, shape: tuple[int, int, int], dtype: np.dtype, unit_block: int) -> None:
        import numcodecs
        import zarr

        self.folder = folder
        self.shape, self.dtype, self.unit_block = shape, np.dtype(dtype), max(1, int(unit_block))
        self.array = zarr.open(str(folder / ARRAY), mode="w", shape=shape, dtype=self.dtype,
                               chunks=(1, max(shape[1], 1), self.unit_block), compressor=numcodecs.Zstd(level=1),
                               fill_value=0)

    def write_units(self, first: int, block: np.ndarray) -> None:
        """Counts (trials, bins, k) of units first..first+k (first a multiple of unit_block)."""
        self.array[:, :, first:first + block.shape[2]] = block.astype(self.dtype, copy=False)

    def finish(self, key: str, options: Mapping[str, Any], max_count: float) -> None:
        digest, n_files, n_bytes = _digest(self.folder / ARRAY)
        manifest = {"format": FORMAT_VERSION, "key": key, "options": dict(options), "shape": list(self.shape),
                    "dtype": self.dtype.str, "unit_block": self.unit_block, "max_count": float(max_count),
                    "files": n_files, "bytes": n_bytes, "sha256": digest}
        (self.folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str))


@contextlib.contextmanager
def build_cache(key: str, shape: tuple[int, int, int], dtype: np.dtype, unit_block: int) -> Iterator[CountsWriter]:
    """A CountsWriter in a temporary folder that becomes <cache root>/<key> when the block ends without error
    (a concurrent builder's finished cache wins; a failed build leaves nothing)."""
    from nwb_ldns.fileio import atomic_output

    target = cache_root() / key
    with atomic_output(target, overwrite=False, is_dir=True) if not target.exists() else _discard() as folder:
        yield CountsWriter(Path(folder), shape, dtype, unit_block)


@contextlib.contextmanager
def _discard() -> Iterator[Path]:
    """A throw-away folder: another process finished the same cache while we were deciding to build it."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="nwb-ldns-counts-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def open_cache(key: str, shape: tuple[int, int, int]) -> "LazyCounts | None":
    """The cached counts of `key` when present, complete and intact (manifest, shape and digest agree); None
    otherwise. A cache that fails the check is deleted, so the caller rebuilds it."""
    folder = cache_root() / key
    if not folder.exists():
        return None
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        ok = (manifest.get("format") == FORMAT_VERSION and manifest.get("key") == key
              and tuple(manifest.get("shape", ())) == tuple(shape)
              and _digest(folder / ARRAY) == (manifest.get("sha256"), manifest.get("files"), manifest.get("bytes")))
        lazy = LazyCounts(folder / ARRAY) if ok else None
        if lazy is not None and (lazy.shape != tuple(shape) or lazy.stored_dtype != np.dtype(manifest["dtype"])):
            lazy = None
    except (OSError, ValueError, KeyError, TypeError):
        lazy = None
    if lazy is None:
        shutil.rmtree(folder, ignore_errors=True)  # damaged or foreign: never trusted, rebuilt by the caller
    return lazy


class LazyCounts(BackendArray):
    """A cached counts array as xarray sees it: float32 (trial, time, unit), read only where indexed."""

    def __init__(self, store: str | os.PathLike) -> None:
        self.store = str(store)
        array = self._array()
        self.shape = tuple(int(n) for n in array.shape)
        self.stored_dtype = np.dtype(array.dtype)
        self.dtype = np.dtype(np.float32)

    def _array(self):
        import zarr

        return zarr.open(self.store, mode="r")

    def __getstate__(self) -> dict[str, Any]:
        return {"store": self.store, "shape": self.shape, "stored_dtype": self.stored_dtype, "dtype": self.dtype}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __getitem__(self, key):
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER, self._read)

    def _read(self, key) -> np.ndarray:
        return np.asarray(self._array().oindex[key], dtype=np.float32)


def lazy_variable(lazy: LazyCounts) -> xr.Variable:
    return xr.Variable(("trial", "time", "unit"), indexing.LazilyIndexedArray(lazy))


def is_lazy(counts: Any) -> bool:
    """Whether a counts DataArray/Variable (or a raw array) is backed by an on-disk cache, not held in memory."""
    variable = getattr(counts, "variable", counts)
    data = getattr(variable, "_data", variable)
    return isinstance(data, (indexing.LazilyIndexedArray, LazyCounts))


def trial_blocks(counts: xr.DataArray, max_bytes: int | None = None) -> Iterator[tuple[slice, np.ndarray]]:
    """(trial slice, float32 values) blocks of a (trial, ...) counts DataArray, each at most `max_bytes` (default:
    the binning chunk size); one block, without a copy, when the counts are in memory."""
    n = int(counts.shape[0]) if counts.ndim else 0
    if not is_lazy(counts):
        yield slice(0, n), counts.values
        return
    per_trial = max(1, int(np.prod(counts.shape[1:])) * 4)
    step = max(1, (max_bytes or chunk_bytes()) // per_trial)
    for first in range(0, n, step):
        yield slice(first, min(n, first + step)), counts[first:first + step].values


def stored_dtype(counts: Any) -> np.dtype | None:
    """The dtype a cached counts DataArray is stored in (uint8/uint16/float32); None for counts in memory."""
    variable = getattr(counts, "variable", counts)
    data = getattr(variable, "_data", variable)
    inner = getattr(data, "array", data)
    return inner.stored_dtype if isinstance(inner, LazyCounts) else None
