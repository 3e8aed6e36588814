"""Reading a generated NWB file back (what `evaluate`, `compare` and the benchmarks read): the session, the
behaviour its trials were conditioned on (or decoded), and the ndx-ldns provenance fields as attrs."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

CONDITIONING_SERIES = "processing/behavior/conditioning_behavior"  # written by the synthetic writer
PROVENANCE_FIELDS = ("model_name", "model_config", "sampler", "sampler_steps", "seed")


def load_generated(path: str | Path) -> xr.Dataset:
    """A generated file as a session; with its behaviour series, when it has one."""
    from nwb_ldns.data import load_session
    from nwb_ldns.data.describe import describe_session

    series = {s["path"] for s in describe_session(str(path))["behavior_series"]}
    return load_session(str(path), behavior=CONDITIONING_SERIES if CONDITIONING_SERIES in series else None)


def with_provenance(ds: xr.Dataset, path: str | Path) -> xr.Dataset:
    """The file's ndx-ldns provenance fields as attrs (load_session keeps only source_* attrs), for set labels."""
    from nwb_ldns.data.opening import open_nwb

    with open_nwb(path) as opened:
        meta = (opened.nwbfile.lab_meta_data or {}).get("ldns_provenance")
        for field in PROVENANCE_FIELDS if meta is not None else ():
            value = getattr(meta, field, None)
            if value is not None and field not in ds.attrs:
                ds.attrs[field] = value if isinstance(value, str) else int(value)
    return ds


def read_generated(path: str | Path) -> xr.Dataset:
    """A generated file read exactly as `nwb-ldns evaluate` reads SYNTH.nwb: session + behaviour + provenance."""
    return with_provenance(load_generated(path), path)
