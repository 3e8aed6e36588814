"""What the synthetic writer reads: generated trials held in memory (an xarray Dataset) or spilled to disk.

Why one interface: `build_synthetic_nwbfile` must write the same file whether the samples fit in memory (the
Python API, the baselines) or were generated in batches and spilled to disk (`nwb-ldns sample`). The writer
only asks a source for small per-trial and per-unit metadata (a Dataset without the big arrays: coords, mask,
trial_*/unit_* columns, attrs) and for blocks of the big arrays: counts of some units over some trials, and the
valid-bin rows of the rates/latents/behaviour of some trials.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from nwb_ldns.errors import SessionContentError
from nwb_ldns.export.provenance import check_provenance_attrs

SERIES_VARIABLES = ("rates", "latents", "behavior")  # (trial, time, channel) arrays written as TimeSeries
CHECK_CELLS = 1 << 22  # counts checked for whole numbers this many at a time


class GeneratedSource:
    """Generated trials for the writer: `meta` holds everything small, subclasses serve the big arrays."""

    def __init__(self, meta: xr.Dataset, unit_totals: np.ndarray, series: dict[str, int]) -> None:
        self.meta = meta
        self.attrs: dict[str, Any] = dict(meta.attrs)
        self.bin_width = float(self.attrs["bin_width"])
        self.mask = meta["mask"].values.astype(bool) if "mask" in meta else None
        if self.mask is None:
            self.mask = np.ones((meta.sizes["trial"], meta.sizes["time"]), dtype=bool)
        self.unit_totals = np.asarray(unit_totals, dtype=np.int64)
        self.series = series  # variable name -> channels

    @property
    def shape(self) -> tuple[int, int, int]:
        """(trials, bins, units)."""
        return self.meta.sizes["trial"], self.meta.sizes["time"], self.meta.sizes["unit"]

    def counts(self, units: slice, trials: slice) -> np.ndarray:
        """(trials, time, units) whole counts of `units` over `trials`, zero outside each trial's valid bins."""
        raise NotImplementedError

    def series_rows(self, name: str, trials: slice) -> np.ndarray:
        """The valid-bin rows (bins of those trials in order, channel) of a SERIES_VARIABLES array, float32."""
        raise NotImplementedError

    def close(self) -> None:
        """Release open files (a spilled source); nothing for one in memory."""


def check_generated(generated: xr.Dataset) -> None:
    """Refuse a Dataset the writer cannot turn into NWB, naming what is missing."""
    if "counts" not in generated:
        raise SessionContentError("generated dataset lacks 'counts'; produce it with LDNSModel.sample")
    if generated["counts"].dims != ("trial", "time", "unit"):
        raise SessionContentError(f"counts must have dims (trial, time, unit), got {generated['counts'].dims}")
    if generated.sizes["trial"] == 0 or generated.sizes["unit"] == 0:
        raise SessionContentError("generated dataset has no trials or no units; sample at least one trial")
    check_provenance_attrs(generated.attrs)


def _whole_count_totals(counts: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Spikes per unit inside the mask, refusing negative or fractional counts (checked block by block)."""
    n_trials, n_bins, n_units = counts.shape
    totals = np.zeros(n_units, dtype=np.int64)
    step = max(1, CHECK_CELLS // max(n_bins * n_units, 1))
    for t0 in range(0, n_trials, step):
        block = np.where(mask[t0:t0 + step, :, None], counts[t0:t0 + step], 0)
        as_int = block.astype(np.int64)
        if (as_int != block).any() or (as_int < 0).any():
            raise SessionContentError("counts must be non-negative whole numbers to become spike times; sample "
                                      "Poisson counts from the rates")
        totals += as_int.sum(axis=(0, 1))
    return totals


class DatasetSource(GeneratedSource):
    """A generated Dataset in memory (LDNSModel.sample, the baselines, nwb_ldns.export.testing)."""

    def __init__(self, generated: xr.Dataset) -> None:
        check_generated(generated)
        self._data = generated
        series = {name: int(generated[name].shape[-1]) for name in SERIES_VARIABLES if name in generated}
        meta = generated.drop_vars(["counts", *series])
        super().__init__(meta, np.zeros(generated.sizes["unit"], dtype=np.int64), series)
        self._counts = generated["counts"].values
        self.unit_totals = _whole_count_totals(self._counts, self.mask)

    def counts(self, units: slice, trials: slice) -> np.ndarray:
        block = self._counts[trials, :, units]
        return np.where(self.mask[trials, :, None], block, 0)

    def series_rows(self, name: str, trials: slice) -> np.ndarray:
        values = self._data[name].values[trials]
        return values.reshape(-1, values.shape[-1])[self.mask[trials].ravel()].astype(np.float32, copy=False)
