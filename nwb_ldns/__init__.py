"""nwb-ldns: latent diffusion models of neural spiking data, with NWB as the single I/O format."""

from __future__ import annotations

import os as _os

# `import pynwb` writes a typemap cache; a read-only HOME makes that import fail, so fall back to a temp folder.
if "XDG_CACHE_HOME" not in _os.environ and not _os.access(_os.path.expanduser("~"), _os.W_OK):
    _os.environ["XDG_CACHE_HOME"] = _os.path.join(__import__("tempfile").gettempdir(), "nwb-ldns-cache")

__version__ = "0.1.0"

# The Python API mirrors the CLI. Imported lazily: torch and pynwb are heavy, and `import nwb_ldns` should be cheap.
_API = {
    "load_session": "nwb_ldns.data.session",
    "load_sessions": "nwb_ldns.data.multi",
    "make_session_dataset": "nwb_ldns.data.schema",
    "fit": "nwb_ldns.train",
    "LDNSModel": "nwb_ldns.model_dir",
    "write_synthetic": "nwb_ldns.export",
    "export_dandiset": "nwb_ldns.export",
    "evaluate": "nwb_ldns.metrics",
    "convert_lorenz": "nwb_ldns.convert",
    "convert_willett": "nwb_ldns.convert",
    "to_pynapple": "nwb_ldns.interop",
    "to_spikeinterface": "nwb_ldns.interop",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'nwb_ldns' has no attribute {name!r}")
