"""Generated samples (xarray) -> one NWB file: Units, trials, rates/latents and ndx-ldns provenance.

Trials are laid out one after another on a single timeline with a gap between them; spike times come from the
counts by the shared even-spacing rule, so binning them back at `bin_width` gives the generated counts exactly.
The output is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence
from uuid import uuid4

import numpy as np
import xarray as xr

from nwb_ldns.data.windows import SPLIT_COLUMN
from nwb_ldns.errors import OptionError, SessionContentError
from nwb_ldns.export.provenance import (
    make_provenance,
    make_subject,
    parse_time,
    session_description,
)
from nwb_ldns.export.chunks import RowBlocks
from nwb_ldns.export.source import DatasetSource, GeneratedSource
from nwb_ldns.export.spikes import check_placement, spike_time_blocks
from nwb_ldns.fileio import atomic_output, check_output, hdf5_writer

COMPRESSIONS = {"hdf5": (None, "gzip", "lzf"), "zarr": (None, "gzip", "blosc")}
RESERVED_TRIAL_COLUMNS = {"start_time", "stop_time", "tags", "timeseries", "id", "align_time", "split", "data_split"}
RESERVED_UNIT_COLUMNS = {
    "spike_times", "obs_intervals", "electrodes", "electrode_group", "waveform_mean", "waveform_sd", "waveforms",
    "id", "source_unit_id",
}  # fmt: skip
SPIKE_TIME_RESOLUTION = 1e-6  # spike times are rounded to 1 us by the counts -> spike-times rule
SERIES_BLOCK_CELLS = 1 << 22  # rates/latents/timestamps values produced per block while writing
SPIKE_BLOCK_CELLS = 1 << 22  # counts turned into spike times per block while writing


def trial_layout(n_trials: int, n_bins: int, bin_width: float, trial_gap: float | None) -> np.ndarray:
    """Start time of each generated trial on one timeline: trial length + gap apart, rounded to 1 us."""
    trial_length = n_bins * bin_width
    gap = max(0.1 * trial_length, 10 * bin_width) if trial_gap is None else float(trial_gap)
    if gap < 0:
        raise OptionError(f"trial_gap must be >= 0 seconds, got {gap}; pass a non-negative gap")
    return np.round(np.arange(n_trials) * (trial_length + gap), 6)


def _wrap(data: Any, backend: str, compression: str | None) -> Any:
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


def _rows(blocks: Callable[[], Iterator[np.ndarray]], shape: tuple[int, ...], dtype: Any, name: str) -> Any:
    """The data of a dataset written block by block (an empty array when it has no rows: HDF5 has no 0-chunks)."""
    if shape[0] == 0:
        return np.zeros(shape, dtype=dtype)
    return RowBlocks(blocks, shape, dtype, name)


def _prefixed_vars(generated: xr.Dataset, dim: str, reserved: set[str]) -> list[tuple[str, Any]]:
    """(column name, data) for each `<dim>_<column>` variable along `dim`; strings become a list of str."""
    found = []
    for name in generated.data_vars:
        column = str(name)[len(dim) + 1 :]
        if str(name).startswith(f"{dim}_") and generated[name].dims == (dim,) and column not in reserved:
            values = generated[name].values
            found.append((column, values.astype(str).tolist() if values.dtype.kind in "OUS" else values))
    return found


def placement_text(placement: str, bin_width: float, seed: int) -> str:
    """The sentence of the Units description that says how spike times sit inside their bins."""
    if placement == "uniform":
        return (f"Spike times are placed uniformly at random inside {bin_width} s bins (spike placement 'uniform', "
                f"seeded with the sample seed {seed}); their real precision is the bin width.")
    return (f"Spike times are placed evenly inside {bin_width} s bins (spike placement 'even': k spikes at "
            "t0 + dt*j/(k+1)); their real precision is the bin width.")


def _units_table(source: GeneratedSource, starts, stop, backend, compression, progress: bool,
                 placement: str = "even"):
    from hdmf.common import VectorData, VectorIndex
    from pynwb.misc import Units

    meta, bin_width = source.meta, source.bin_width
    unit_ids = meta["unit"].values.astype(np.int64)
    if len(np.unique(unit_ids)) != len(unit_ids):
        raise SessionContentError("unit coordinate has duplicate ids; give every unit a unique source id")
    index = np.cumsum(source.unit_totals)

    def blocks() -> Iterator[np.ndarray]:
        bar = _bar(progress, len(unit_ids), "writing spike times", "unit")
        try:
            yield from spike_time_blocks(source.counts, source.shape, bin_width, starts, source.unit_totals,
                                         budget_cells=SPIKE_BLOCK_CELLS,
                                         on_units=bar.update if bar is not None else None,
                                         placement=placement, seed=int(source.attrs["seed"]))
        finally:
            if bar is not None:
                bar.close()

    spike_times = _rows(blocks, (int(index[-1]),), np.float64, "spike_times")
    times = VectorData(
        name="spike_times", description="Generated spike times (s).", data=_wrap(spike_times, backend, compression)
    )
    # the index before its target: hdmf's table check drops an iterator column before it looks for its index
    columns = [
        VectorIndex(name="spike_times_index", data=index, target=times),
        times,
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
    for column, values in _prefixed_vars(meta, "unit", RESERVED_UNIT_COLUMNS):
        columns.append(VectorData(name=column, description=f"Source unit column '{column}'.", data=values))
    return Units(
        name="units",
        id=unit_ids,
        columns=columns,
        resolution=SPIKE_TIME_RESOLUTION,
        description=(
            "GENERATED spike trains (LDNS samples), one row per unit of the source session (ids = source unit ids). "
            + placement_text(placement, bin_width, int(source.attrs["seed"]))
        ),
    )


def _bar(progress: bool, total: int, desc: str, unit: str):
    """A tqdm bar (None when progress is off)."""
    if not progress:
        return None
    from nwb_ldns.progress import bar

    return bar(total=total, desc=desc, unit=unit)


def _trials_table(meta: xr.Dataset, starts: np.ndarray, stops: np.ndarray):
    """One row per generated trial, built from arrays (add_trial costs ~0.15 ms a row), with its conditions."""
    from hdmf.common import VectorData
    from pynwb.epoch import TimeIntervals

    time0 = float(meta["time"].values[0])
    columns = [
        VectorData(name="start_time", description="Start of the generated trial (s).", data=starts),
        VectorData(name="stop_time", description="End of the generated trial's valid bins (s).", data=stops),
        VectorData(
            name="align_time",
            description="Absolute time (s) of the generated time coordinate 0.",
            data=np.round(starts - time0, 6),
        ),
        VectorData(name=SPLIT_COLUMN, description="'generated': every trial of this file is synthetic (load_session "
                   "keeps the label, so a generated file is never mistaken for real train/val/test trials).",
                   data=np.full(len(starts), "generated")),
    ]
    for column, values in _prefixed_vars(meta, "trial", RESERVED_TRIAL_COLUMNS):
        description = f"Condition '{column}' the trial was generated for."
        columns.append(VectorData(name=column, description=description, data=values))
    return TimeIntervals(
        name="trials",
        description="Generated trials, laid out one after another on one timeline with a gap between them.",
        id=meta["trial"].values.astype(np.int64),
        columns=columns,
    )


class _Timeline:
    """The start time of every valid bin, trial block by trial block, and whether they are evenly spaced."""

    def __init__(self, mask: np.ndarray, starts: np.ndarray, bin_width: float, trials_per_block: int) -> None:
        self.mask, self.starts, self.bin_width = mask, starts, bin_width
        self.trials_per_block = max(1, int(trials_per_block))
        self.n_valid = int(mask.sum())
        self.first = None
        regular, last = True, None
        for stamps in self.blocks():  # consecutive valid bins one bin width apart, across block edges too
            if self.first is None:
                self.first = float(stamps[0])
            steps = np.diff(stamps if last is None else np.concatenate([[last], stamps]))
            if steps.size and not np.allclose(steps, bin_width, rtol=0, atol=1e-9):
                regular = False
                break
            last = stamps[-1]
        self.regular = regular and self.n_valid > 1

    def trial_blocks(self) -> Iterator[slice]:
        for t0 in range(0, len(self.starts), self.trials_per_block):
            yield slice(t0, t0 + self.trials_per_block)

    def blocks(self) -> Iterator[np.ndarray]:
        n_bins = self.mask.shape[1]
        for trials in self.trial_blocks():
            stamps = self.starts[trials, None] + np.arange(n_bins)[None, :] * self.bin_width
            valid = stamps[self.mask[trials]]
            if valid.size:
                yield valid


def _series(name, variable, source, timeline, unit, description, backend, compression, **fields):
    """A TimeSeries of the valid bins of every trial, flattened on the shared timeline, written block by block."""
    from pynwb import TimeSeries

    def rows() -> Iterator[np.ndarray]:
        for trials in timeline.trial_blocks():
            yield source.series_rows(variable, trials)

    data = _rows(rows, (timeline.n_valid, source.series[variable]), np.float32, name)
    timing: dict[str, Any]
    if timeline.regular:
        timing = {"starting_time": timeline.first, "rate": 1.0 / timeline.bin_width}
    else:
        timing = {"timestamps": _rows(timeline.blocks, (timeline.n_valid,), np.float64, f"{name} timestamps")}
    return TimeSeries(name=name, data=_wrap(data, backend, compression), unit=unit, description=description, **timing,
                      **fields)


def build_synthetic_nwbfile(
    generated: xr.Dataset | GeneratedSource,
    *,
    backend: str = "hdf5",
    compression: str | None = None,
    trial_gap: float | None = None,
    progress: bool = False,
    spike_placement: str = "even",
):
    """The NWBFile for generated samples (see write_synthetic); its big datasets are written block by block.

    `generated` is a Dataset in memory or a GeneratedSource (e.g. trials spilled to disk by `nwb-ldns sample`);
    the file is the same either way. Spike times and series data are hdmf iterators over the source, so the
    NWBFile can be written once, while the source is open.
    """
    import ndx_ldns  # noqa: F401  (registers the provenance types before building them)
    from pynwb import NWBFile

    source = generated if isinstance(generated, GeneratedSource) else DatasetSource(generated)
    meta, attrs, bin_width, mask = source.meta, source.attrs, source.bin_width, source.mask
    n_trials, n_bins, n_units = source.shape
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
    nwb.units = _units_table(source, starts, stop, backend, compression, progress, check_placement(spike_placement))

    nwb.trials = _trials_table(meta, starts, stops)
    widest = max([n_units, *source.series.values()])
    timeline = _Timeline(mask, starts, bin_width, SERIES_BLOCK_CELLS // max(n_bins * widest, 1))
    if "rates" in source.series or "latents" in source.series:
        module = nwb.create_processing_module(name="ecephys", description="LDNS-generated firing rates and latents.")
    if "rates" in source.series:
        module.add(
            _series(
                "generated_rates", "rates", source, timeline, "spikes per bin",
                f"Poisson rates (expected spikes per {bin_width} s bin) the generated counts were sampled from; "
                "columns follow the rows of the units table.",
                backend, compression,
            )
        )  # fmt: skip
    if "latents" in source.series:
        module.add(
            _series(
                "generated_latents", "latents", source, timeline, "a.u.",
                "Autoencoder latents produced by the diffusion model for each generated trial.",
                backend, compression,
            )
        )  # fmt: skip
    if "behavior" in source.series:
        dims = [str(d) for d in meta["behavior_dim"].values] if "behavior_dim" in meta.coords else []
        lag = float(attrs.get("behavior_lag") or 0.0)
        source_series = attrs.get("behavior_series") or "the source session"
        decoded = attrs.get("behavior_source") == "decoded"  # TNDM: read out of its own factors, not given
        what = (f"The behaviour the model decoded for each generated trial (in the units of {source_series})"
                if decoded else f"The behaviour trace each generated trial was conditioned on (from {source_series})")
        behaviour = nwb.create_processing_module(
            name="behavior", description="Behaviour the model decoded from its generated activity." if decoded
            else "Behaviour the generation was conditioned on.")
        behaviour.add(_series(
            "conditioning_behavior", "behavior", source, timeline, "as in the source session",
            f"{what}, one sample per bin of the trial's spikes; in the source session bin k's value was "
            f"read {lag * 1e3:g} ms after the bin (the behaviour lag), so decode it from the same bins.",
            backend, compression, comments=f"columns=[{','.join(dims)}]" if dims else "no comments"))
    return nwb


SourceFactory = Callable[[Path], GeneratedSource]  # staging folder -> samples spilled there (nwb_ldns.sample)


def write_synthetic(
    generated: xr.Dataset | GeneratedSource | SourceFactory,
    out_path: str | Path,
    *,
    backend: Literal["hdf5", "zarr"] = "hdf5",
    compression: str | None = None,
    overwrite: bool = False,
    trial_gap: float | None = None,
    inputs: Sequence[str | Path] = (),
    progress: bool = False,
    spike_placement: str = "even",
) -> Path:
    """Write generated samples to an NWB file (HDF5, or a Zarr store) and return its path.

    generated: a Dataset in memory, a GeneratedSource, or a function that is given a staging folder beside the
    output (inside its `.partial` folder, deleted with it whatever happens) and returns the source it spilled
    there: `nwb-ldns sample` generates 100,000 trials that way without holding them in memory.
    compression: None (HDF5 uncompressed; Zarr uses hdmf-zarr's default Blosc-lz4), "gzip", "lzf" (HDF5) or
    "blosc" (Zarr, zstd). trial_gap: seconds between consecutive trials (default max(10 bins, 10% of a trial)).
    inputs: files the calling command reads (the output may not be one of them); overwrite replaces only an NWB
    file written by nwb-ldns. progress: a bar over the units whose spike times are written.
    spike_placement: "even" (k spikes evenly inside their bin, the default) or "uniform" (at random inside the bin,
    from the samples' seed attr: reproducible); either re-bins to the generated counts, and the Units
    description says which was used.
    """
    check_placement(spike_placement)
    if backend not in COMPRESSIONS:
        raise OptionError(f"backend {backend!r} is not supported; use 'hdf5' or 'zarr'")
    if compression not in COMPRESSIONS[backend]:
        raise OptionError(
            f"compression {compression!r} is not available for {backend}; "
            f"use one of {COMPRESSIONS[backend][1:]} or none"
        )
    out_path = Path(out_path)
    check_output(out_path, kind="nwb", overwrite=overwrite, inputs=inputs)  # before the (possibly long) build
    in_memory = not callable(generated)
    if in_memory:  # checked before anything is created beside the output
        source = generated if isinstance(generated, GeneratedSource) else DatasetSource(generated)
        nwb = build_synthetic_nwbfile(source, backend=backend, compression=compression, trial_gap=trial_gap,
                                      progress=progress, spike_placement=spike_placement)
    with atomic_output(out_path, overwrite=overwrite, is_dir=backend == "zarr", kind="nwb", inputs=inputs) as tmp:
        if not in_memory:
            staging = tmp.parent / "spill"
            staging.mkdir()
            source = generated(staging)
            nwb = build_synthetic_nwbfile(source, backend=backend, compression=compression, trial_gap=trial_gap,
                                          progress=progress, spike_placement=spike_placement)
        try:
            _write(nwb, tmp, backend)
        finally:
            if not in_memory:
                source.close()
    return out_path


def _write(nwb, tmp: Path, backend: str) -> None:
    """Write the NWBFile at the partial path `tmp` (HDF5 through hdf5_writer; a Zarr store with JSON references)."""
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
