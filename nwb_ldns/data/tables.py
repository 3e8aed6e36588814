"""Find things inside an opened NWBFile by path or name: Units tables, trial-like tables, TimeSeries.

Real files put trial tables under names of their own (`intervals/recognition_table`), counts in processing modules
and behaviour in `processing/behavior`; this module catalogues every object by its path so that users can name it
either by path or, when unique, by its bare name.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from nwb_ldns.errors import OptionError, SessionContentError


def _children(container) -> Iterator[object]:
    """Data interfaces held by a ProcessingModule or MultiContainerInterface (empty for anything else)."""
    from hdmf.common import DynamicTable
    from pynwb.core import MultiContainerInterface
    from pynwb.base import ProcessingModule

    if isinstance(container, DynamicTable):
        return iter(())
    if isinstance(container, (ProcessingModule, MultiContainerInterface)):
        return iter(container.children)
    return iter(())


def catalog(nwbfile) -> dict[str, object]:
    """Path -> container for every table and series a session can hold (acquisition, processing, intervals...)."""
    found: dict[str, object] = {}

    def visit(prefix: str, container) -> None:
        path = f"{prefix}/{container.name}" if prefix else container.name
        found[path] = container
        for child in _children(container):
            visit(path, child)

    if nwbfile.units is not None:
        visit("", nwbfile.units)
    for group in ("acquisition", "analysis", "scratch", "intervals", "processing"):
        for container in (getattr(nwbfile, group, None) or {}).values():
            visit(group, container)
    for group, name in (("stimulus", "presentation"), ("stimulus_template", "templates")):
        for container in (getattr(nwbfile, group, None) or {}).values():
            visit(f"stimulus/{name}", container)
    for container in (nwbfile.lab_meta_data or {}).values():
        visit("general", container)
    return found


def resolve(objects: dict[str, object], name: str, what: str, candidates: list[str], option: str) -> tuple[str, object]:
    """Look an object up by full path or by unique bare name; OptionError listing the candidates otherwise."""
    key = name.strip("/")
    if key in objects:
        return key, objects[key]
    matches = [path for path in objects if path.rsplit("/", 1)[-1] == key]
    if len(matches) == 1:
        return matches[0], objects[matches[0]]
    listing = ", ".join(candidates) if candidates else "none"
    if len(matches) > 1:
        raise OptionError(f"{what} name {name!r} is ambiguous ({', '.join(matches)}); pass the full path to {option}")
    raise OptionError(f"no {what} {name!r} in this file; {option} must name one of: {listing}")


def is_units_table(container) -> bool:
    from hdmf.common import DynamicTable

    return isinstance(container, DynamicTable) and "spike_times" in _colnames(container)


def is_trial_table(container) -> bool:
    from hdmf.common import DynamicTable

    names = _colnames(container)
    return isinstance(container, DynamicTable) and "start_time" in names and "stop_time" in names


def is_time_series(container) -> bool:
    from pynwb.base import TimeSeries

    return isinstance(container, TimeSeries) and getattr(container, "data", None) is not None


def is_count_series(container) -> bool:
    """An integer-valued TimeSeries with a time axis (threshold crossings, binned spikes)."""
    if not is_time_series(container):
        return False
    data = container.data
    dtype = getattr(data, "dtype", None)
    shape = getattr(data, "shape", None)
    if dtype is None or shape is None or len(shape) not in (1, 2):
        return False
    unit = str(getattr(container, "unit", "") or "").lower()
    if "count" in unit or "spike" in unit:
        return True
    # 1-D integer series are usually TTL/event codes, not counts; binned counts come as (time, channel).
    return len(shape) == 2 and np.issubdtype(np.dtype(dtype), np.integer)


def _colnames(table) -> list[str]:
    names = getattr(table, "colnames", None)
    if names is None:
        return []
    return [name.decode() if isinstance(name, bytes) else str(name) for name in names]


def colnames(table) -> list[str]:
    """Column names as str (NWB 2.1-era files store them as bytes)."""
    return _colnames(table)


def column(table, name: str):
    """The column object (VectorData, VectorIndex for ragged, DynamicTableRegion) of a table, by str name."""
    for candidate in (name, name.encode()):
        try:
            return table[candidate]
        except (KeyError, TypeError, ValueError):
            continue
    for col in table.columns:
        if col.name == name:
            return col
    raise KeyError(name)


def flat_data(col) -> np.ndarray:
    """All values of a VectorData/VectorIndex as a numpy array (h5py/zarr arrays read in one call)."""
    data = col.data
    return np.asarray(data[:] if hasattr(data, "shape") else data)


def is_scalar_column(col) -> bool:
    """A 1-D, non-ragged, non-reference column (the ones that become trial_<col>/unit_<col> variables)."""
    from hdmf.common import DynamicTableRegion, VectorIndex

    if isinstance(col, (VectorIndex, DynamicTableRegion)):
        return False
    data = col.data
    shape = getattr(data, "shape", None)
    if shape is None:
        shape = np.shape(data)
    if len(shape) != 1:
        return False
    dtype = getattr(data, "dtype", None)
    if dtype is not None and (np.dtype(dtype).names is not None or np.dtype(dtype).kind == "O" and _is_reference(data)):
        return False
    return True


def _is_reference(data) -> bool:
    """Whether an object column holds references; a column whose first value cannot be read is not one (the read
    error surfaces, with its own message, where the column is actually read)."""
    import h5py

    try:
        first = data[0] if len(data) else None
    except (IndexError, TypeError, ValueError, KeyError, OSError):
        return False
    return isinstance(first, (h5py.Reference, h5py.RegionReference)) or hasattr(first, "object_id")


def scalar_values(col) -> np.ndarray:
    """Values of a scalar column, with bytes decoded to str and mixed objects turned into str."""
    values = flat_data(col)
    if values.dtype.kind in ("S", "O", "U"):
        values = np.array(
            [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values.tolist()], dtype=str
        )
    return values


def scalar_columns(table, skip: tuple[str, ...] = ()) -> list[str]:
    """Names of the table's scalar columns, in table order."""
    names = []
    for name in colnames(table):
        if name in skip:
            continue
        try:
            if is_scalar_column(column(table, name)):
                names.append(name)
        except KeyError:
            continue
    return names


def ragged(table, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(flat data, end offsets) of a ragged column such as spike_times or obs_intervals."""
    data, ends = ragged_lazy(table, name)
    return np.asarray(data[:] if hasattr(data, "shape") else data), ends


def ragged_lazy(table, name: str) -> tuple[object, np.ndarray]:
    """(flat data as stored -- an h5py/zarr array read only when sliced --, checked end offsets) of a ragged column.

    Why: a Units table of a long Neuropixels session holds 1e8 spike times; the reader slices them unit by unit
    (`read_range`) instead of loading the whole column.
    """
    from hdmf.common import VectorIndex

    col = column(table, name)
    if isinstance(col, VectorIndex):
        data, ends = col.target.data, flat_data(col).astype(np.int64)
    else:
        data, ends = col.data, flat_data(column(table, f"{name}_index")).astype(np.int64)
    if not hasattr(data, "shape"):
        data = np.asarray(data)
    _check_ragged_index(table, name, int(data.shape[0]) if len(data.shape) else 0, ends)
    return data, ends


def read_range(data, begin: int, end: int) -> np.ndarray:
    """Values begin:end of a stored 1-D array (one read from the HDF5/Zarr dataset)."""
    return np.asarray(data[begin:end]) if end > begin else np.asarray(data[:0])


def _check_ragged_index(table, name: str, n_values: int, ends: np.ndarray) -> None:
    """SessionContentError for a damaged ragged index.

    Why: an index that is decreasing, negative, does not end at the data's end or lacks an end per row (a damaged
    or hand-edited file) would otherwise slice the wrong values or fail deep inside numpy with a traceback.
    """
    rows = len(flat_data(table.id))
    if len(ends) != rows:
        problem = f"has {len(ends)} entries for the table's {rows} rows"
    elif len(ends) and (ends[0] < 0 or bool((np.diff(ends) < 0).any())):
        problem = "is not a non-decreasing list of non-negative end offsets"
    elif (int(ends[-1]) if len(ends) else 0) != n_values:
        problem = f"ends at offset {int(ends[-1]) if len(ends) else 0} but {name} holds {n_values} values"
    else:
        return
    raise SessionContentError(f"table {getattr(table, 'name', '?')!r}: {name}_index {problem}; the file is damaged "
                              f"or was written incorrectly, rewrite the table's {name} column (e.g. with pynwb)")


def has_column(table, name: str) -> bool:
    return name in colnames(table)
