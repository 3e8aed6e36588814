"""Generated samples (xarray) -> one NWB file: Units, trials, rates/latents and ndx-ldns provenance.

Trials are laid out one after another on a single timeline with a gap between them; spike times come from the
counts by the shared even-spacing rule, so binning them back at `bin_width` gives the generated counts exactly.
The output is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Sequence
from uuid import uuid4

import numpy as np
import xarray as xr

from nwb_ldns.errors import OptionError, SessionContentError
from nwb_ldns.export.provenance import (
    check_provenance_attrs,
    make_provenance,
    make_subject,
    parse_time,
    session_description,
)
from nwb_ldns.export.spikes import counts_to_spike_arrays
from nwb_ldns.fileio import atomic_output, check_output, hdf5_writer

COMPRESSIONS = {"hdf5": (None, "gzip", "lzf"), "zarr": (None, "gzip", "blosc")}
RESERVED_TRIAL_COLUMNS = {"start_time", "stop_time", "tags", "timeseries", "id", "align_time", "split"}
RESERVED_UNIT_COLUMNS = {
    "spike_times", "obs_intervals", "electrodes", "electrode_group", "waveform_mean", "waveform_sd", "waveforms",
    "id", "source_unit_id",
}  # fmt: skip
SPIKE_TIME_RESOLUTION = 1e-6  # spike times are rounded to 1 us by the counts -> spike-times rule


def trial_layout(n_trials: int, n_bins: int, bin_width: float, trial_gap: float | None) -> np.ndarray:
    """Start time of each generated trial on one timeline: trial length + gap apart, rounded to 1 us."""
    trial_length = n_bins * bin_width
    gap = max(0.1 * trial_length, 10 * bin_width) if trial_gap is None else float(trial_gap)
    if gap < 0:
        raise OptionError(f"trial_gap must be >= 0 seconds, got {gap}; pass a non-negative gap")
    return np.round(np.arange(n_trials) * (trial_length + gap), 6)


def _wrap(data: np.ndarray, backend: str, compression: str | None) -> Any:
    """Wrap a dataset for the requested compression (H5DataIO / ZarrDataIO); plain data when none."""
    if compression is None:
        return data
    if backend == "hdf5":
        from hdmf.backends.hdf5 import H5DataIO

        opts = {"compression_opts": 4} if compression == "gzip" else {}
        return H5DataIO(data, compression=compression, **opts)
    import numcodecs
    from hdmf_zarr import ZarrDataIO

    compressor = numcodecs.GZip(4) if compression == "gzip" else numcodecs.Blosc("zstd", 5, numcodecs.Blosc.SHUFFLE)
    return ZarrDataIO(data, compressor=compressor)


def _check_generated(generated: xr.Dataset) -> None:
    if "counts" not in generated:
        raise SessionContentError("generated dataset lacks 'counts'; produce it with LDNSModel.sample")
    if generated["counts"].dims != ("trial", "time", "unit"):
        raise SessionContentError(f"counts must have dims (trial, time, unit), got {generated['counts'].dims}")
    if generated.sizes["trial"] == 0 or generated.sizes["unit"] == 0:
        raise SessionContentError("generated dataset has no trials or no units; sample at least one trial")
    check_provenance_attrs(generated.attrs)


def _prefixed_vars(generated: xr.Dataset, dim: str, reserved: set[str]) -> list[tuple[str, Any]]:
    """(column name, data) for each `<dim>_<column>` variable along `dim`; strings become a list of str."""
    found = []
    for name in generated.data_vars:
        column = str(name)[len(dim) + 1 :]
        if str(name).startswith(f"{dim}_") and generated[name].dims == (dim,) and column not in reserved:
            values = generated[name].values
            found.append((column, values.astype(str).tolist() if values.dtype.kind in "OUS" else values))
    return found


def _units_table(generated, counts, starts, bin_width, stop, backend, compression):
    from hdmf.common import VectorData, VectorIndex
    from pynwb.misc import Units

    spike_times, index = counts_to_spike_arrays(counts, bin_width, starts)
    unit_ids = generated["unit"].values.astype(np.int64)
    if len(np.unique(unit_ids)) != len(unit_ids):
        raise SessionContentError("unit coordinate has duplicate ids; give every unit a unique source id")
    times = VectorData(
        name="spike_times", description="Generated spike times (s).", data=_wrap(spike_times, backend, compression)
    )
    columns = [
        times,
        VectorIndex(name="spike_times_index", data=index, target=times),
    ]
    obs = VectorData(
        name="obs_intervals",
        description="The whole generated timeline, one interval per unit.",
        data=np.tile([0.0, stop], (len(unit_ids), 1)),
    )
    columns += [obs, VectorIndex(name="obs_intervals_index", data=np.arange(1, len(unit_ids) + 1), target=obs)]
    columns.append(
        VectorData(name="source_unit_id", description="id of the unit in the source Units table.", data=unit_ids)
    )
    for column, values in _prefixed_vars(generated, "unit", RESERVED_UNIT_COLUMNS):
        columns.append(VectorData(name=column, description=f"Source unit column '{column}'.", data=values))
    return Units(
        name="units",
        id=unit_ids,
        columns=columns,
        resolution=SPIKE_TIME_RESOLUTION,
        description=(
            "GENERATED spike trains (LDNS samples), one row per unit of the source session (ids = source unit ids). "
            f"Spike times are placed evenly inside {bin_width} s bins; their real precision is the bin width."
        ),
    )


def _trials_table(generated: xr.Dataset, starts: np.ndarray, stops: np.ndarray):
    """One row per generated trial, built from arrays (add_trial costs ~0.15 ms a row), with its conditions."""
    from hdmf.common import VectorData
    from pynwb.epoch import TimeIntervals

    time0 = float(generated["time"].values[0])
    columns = [
        VectorData(name="start_time", description="Start of the generated trial (s).", data=starts),
        VectorData(name="stop_time", description="End of the generated trial's valid bins (s).", data=stops),
        VectorData(
            name="align_time",
            description="Absolute time (s) of the generated time coordinate 0.",
            data=np.round(starts - time0, 6),
        ),
    ]
    for column, values in _prefixed_vars(generated, "trial", RESERVED_TRIAL_COLUMNS):
        description = f"Condition '{column}' the trial was generated for."
        columns.append(VectorData(name=column, description=description, data=values))
    return TimeIntervals(
        name="trials",
        description="Generated trials, laid out one after another on one timeline with a gap between them.",
        id=generated["trial"].values.astype(np.int64),
        columns=columns,
    )


def _series(name, values, mask, bin_starts, bin_width, unit, description, backend, compression, **fields):
    """A TimeSeries of the valid bins of every trial, flattened on the shared timeline."""
    from pynwb import TimeSeries

    data = values.reshape(-1, values.shape[-1])[mask.ravel()]
    stamps = bin_starts.ravel()[mask.ravel()]
    timing: dict[str, Any]
    steps = np.diff(stamps)
    if len(stamps) > 1 and np.allclose(steps, bin_width, rtol=0, atol=1e-9):
        timing = {"starting_time": float(stamps[0]), "rate": 1.0 / bin_width}
    else:
        timing = {"timestamps": stamps}
    return TimeSeries(name=name, data=_wrap(data, backend, compression), unit=unit, description=description, **timing,
                      **fields)


def build_synthetic_nwbfile(
    generated: xr.Dataset,
    *,
    backend: str = "hdf5",
    compression: str | None = None,
    trial_gap: float | None = None,
):
    """The in-memory NWBFile for a generated Dataset (see write_synthetic)."""
    import ndx_ldns  # noqa: F401  (registers the provenance types before building them)
    from pynwb import NWBFile

    _check_generated(generated)
    attrs = generated.attrs
    bin_width = float(attrs["bin_width"])
    counts = generated["counts"].values
    mask = generated["mask"].values.astype(bool) if "mask" in generated else np.ones(counts.shape[:2], dtype=bool)
    if not mask.all():  # bins outside a trial hold no spikes
        counts = np.where(mask[:, :, None], counts, 0)
    n_trials, n_bins, _ = counts.shape
    starts = trial_layout(n_trials, n_bins, bin_width, trial_gap)
    valid_stop = (mask * np.arange(1, n_bins + 1)[None, :]).max(axis=1)  # 1 + last valid bin of each trial
    stops = np.round(starts + valid_stop * bin_width, 6)
    created = parse_time(attrs["created"])
    start_time = parse_time(attrs.get("source_session_start_time")) or created
    seed = int(attrs["seed"])

    nwb = NWBFile(
        session_description=session_description(attrs),
        identifier=str(uuid4()),
        session_start_time=start_time,
        file_create_date=created,
        session_id=f"ldns-seed{seed}",
        experiment_description=(
            "Synthetic spike trains sampled from a latent diffusion model (LDNS, Kapoor, Schulz et al., NeurIPS 2024) "
            "trained on a recorded session; provenance in general/ldns_provenance."
        ),
        keywords=["synthetic", "generated", "LDNS", "latent diffusion", "spiking data"],
        source_script=f"nwb-ldns {attrs['model_version']} (nwb_ldns.export.write_synthetic)",
        source_script_file_name="nwb_ldns/export/synthetic.py",
    )
    nwb.subject = make_subject(attrs)
    nwb.add_lab_meta_data(make_provenance(attrs))
    stop = float(stops.max()) if n_trials else 0.0
    nwb.units = _units_table(generated, counts, starts, bin_width, stop, backend, compression)

    nwb.trials = _trials_table(generated, starts, stops)
    bin_starts = starts[:, None] + np.arange(n_bins)[None, :] * bin_width
    if "rates" in generated or "latents" in generated:
        module = nwb.create_processing_module(name="ecephys", description="LDNS-generated firing rates and latents.")
    if "rates" in generated:
        module.add(
            _series(
                "generated_rates", generated["rates"].values.astype(np.float32), mask, bin_starts, bin_width,
                "spikes per bin",
                f"Poisson rates (expected spikes per {bin_width} s bin) the generated counts were sampled from; "
                "columns follow the rows of the units table.",
                backend, compression,
            )
        )  # fmt: skip
    if "latents" in generated:
        module.add(
            _series(
                "generated_latents", generated["latents"].values.astype(np.float32), mask, bin_starts, bin_width,
                "a.u.", "Autoencoder latents produced by the diffusion model for each generated trial.",
                backend, compression,
            )
        )  # fmt: skip
    if "behavior" in generated:
        dims = [str(d) for d in generated["behavior_dim"].values] if "behavior_dim" in generated.coords else []
        lag = float(attrs.get("behavior_lag") or 0.0)
        source_series = attrs.get("behavior_series") or "the source session"
        behaviour = nwb.create_processing_module(name="behavior", description="Behaviour the generation was "
                                                 "conditioned on.")
        behaviour.add(_series(
            "conditioning_behavior", generated["behavior"].values.astype(np.float32), mask, bin_starts, bin_width,
            "as in the source session",
            f"The behaviour trace each generated trial was conditioned on (from {source_series}), one sample per bin "
            "of the trial's spikes; in the source session bin k's value was "
            f"read {lag * 1e3:g} ms after the bin (the behaviour lag), so decode it from the same bins.",
            backend, compression, comments=f"columns=[{','.join(dims)}]" if dims else "no comments"))
    return nwb


def write_synthetic(
    generated: xr.Dataset,
    out_path: str | Path,
    *,
    backend: Literal["hdf5", "zarr"] = "hdf5",
    compression: str | None = None,
    overwrite: bool = False,
    trial_gap: float | None = None,
    inputs: Sequence[str | Path] = (),
) -> Path:
    """Write generated samples to an NWB file (HDF5, or a Zarr store) and return its path.

    compression: None (HDF5 uncompressed; Zarr uses hdmf-zarr's default Blosc-lz4), "gzip", "lzf" (HDF5) or
    "blosc" (Zarr, zstd). trial_gap: seconds between consecutive trials (default max(10 bins, 10% of a trial)).
    inputs: files the calling command reads (the output may not be one of them); overwrite replaces only an NWB
    file written by nwb-ldns.
    """
    if backend not in COMPRESSIONS:
        raise OptionError(f"backend {backend!r} is not supported; use 'hdf5' or 'zarr'")
    if compression not in COMPRESSIONS[backend]:
        raise OptionError(
            f"compression {compression!r} is not available for {backend}; "
            f"use one of {COMPRESSIONS[backend][1:]} or none"
        )
    out_path = Path(out_path)
    check_output(out_path, kind="nwb", overwrite=overwrite, inputs=inputs)  # before the (possibly long) build
    nwb = build_synthetic_nwbfile(generated, backend=backend, compression=compression, trial_gap=trial_gap)
    with atomic_output(out_path, overwrite=overwrite, is_dir=backend == "zarr", kind="nwb", inputs=inputs) as tmp:
        if backend == "hdf5":
            from pynwb import NWBHDF5IO

            with hdf5_writer(tmp) as h5, NWBHDF5IO(file=h5, mode="w") as io:
                io.write(nwb)
        else:
            import numcodecs
            import pynwb
            from hdmf_zarr import ZarrIO

            # NWBZarrIO(mode="w") drops object_codec_class and pickles references; ZarrIO + JSON stays readable
            with ZarrIO(str(tmp), mode="w", manager=pynwb.get_manager(), object_codec_class=numcodecs.JSON) as io:
                io.write(nwb)
    return out_path
