"""CF-style attributes (units, long_name) on the session Dataset's variables, and Conventions/source on the Dataset.

Why: a Dataset handed to a notebook, saved with `to_zarr`/`to_netcdf` or plotted by xarray should say what its
numbers are: `time` in seconds from the alignment point, `counts` spikes per bin (CF units "1" with
cell_methods "time: sum"), and so on. Attributes already present (e.g. the MC_Maze recipe's `trial_reach_angle`
in rad) are kept; units are only given where they are known (a behaviour series keeps whatever its reader set).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

CONVENTIONS = "CF-1.10"

# variable or coordinate -> attributes; "1" is the CF (UDUNITS) unit of a dimensionless number such as a count
VARIABLE_ATTRS: dict[str, dict[str, str]] = {
    "time": {"units": "s", "long_name": "start of the bin relative to the trial's alignment point"},
    "trial": {"long_name": "trial id (row id of the source trials table, or window index)"},
    "unit": {"long_name": "unit id (row id of the source Units table, or channel index)"},
    "counts": {"units": "1", "long_name": "spike count per bin", "cell_methods": "time: sum"},
    "mask": {"long_name": "bin lies inside the trial (False: padding of a shorter trial)"},
    "split": {"long_name": "data split of the trial: train, val, test or generated"},
    "align_time": {"units": "s", "long_name": "session time of the trial's alignment point (time = 0)"},
    "rates": {"units": "1", "long_name": "Poisson rate: expected spike count per bin", "cell_methods": "time: sum"},
    "latents": {"units": "1", "long_name": "latent state of the autoencoder (arbitrary units)"},
    "behavior": {"long_name": "behaviour read on the bins of each trial"},
    "behavior_dim": {"long_name": "behaviour dimension"},
    "latent": {"long_name": "latent dimension"},
}


def _prefixed(name: str, values: np.ndarray) -> dict[str, str]:
    """trial_<column> / unit_<column>: the table column's name; seconds for numeric NWB *_time columns."""
    table, _, column = name.partition("_")
    attrs = {"long_name": f"{'trials' if table == 'trial' else 'Units'} table column '{column}'"}
    if column.endswith("_time") and np.asarray(values).dtype.kind in "fiu":
        attrs["units"] = "s"
    return attrs


def describe_variables(ds: xr.Dataset, source: str | None = None) -> xr.Dataset:
    """Add CF-style attributes in place (keeping any already set) and return `ds`.

    `source` (CF: how the data were produced) is set when given, else left as is or a generic description.
    """
    for name in list(ds.variables):
        name = str(name)
        known = VARIABLE_ATTRS.get(name)
        if known is None and (name.startswith("trial_") and ds[name].dims == ("trial",)
                              or name.startswith("unit_") and ds[name].dims == ("unit",)):
            known = _prefixed(name, ds[name].values)
        for key, value in (known or {}).items():
            ds[name].attrs.setdefault(key, value)
    ds.attrs.setdefault("Conventions", CONVENTIONS)
    if source is not None:
        ds.attrs["source"] = source
    else:
        from nwb_ldns import __version__

        ds.attrs.setdefault("source", f"spike counts per bin (trial, time, unit) made by nwb-ldns {__version__}")
    return ds
