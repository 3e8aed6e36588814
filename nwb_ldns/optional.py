"""Imports of optional extras, with one-line errors that name the extra to install.

The default install stays small: DANDI tooling (dandi, nwbinspector) and the analysis bridges (pynapple,
spikeinterface) live in extras, and only the commands that need them import them.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from nwb_ldns.errors import MissingExtraError

# Which extra of nwb-ldns provides each optional top-level module.
EXTRA_OF_MODULE: dict[str, str] = {
    "dandi": "dandi",
    "nwbinspector": "dandi",
    "pynapple": "interop",
    "spikeinterface": "interop",
    "s3fs": "remote",
}


def require(module: str, purpose: str) -> ModuleType:
    """Import `module`, or raise MissingExtraError naming the pip command that installs it.

    `purpose` completes the sentence "<purpose> needs <module>", e.g. "export --validate".
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        top = module.split(".")[0]
        if error.name is not None and error.name.split(".")[0] != top:
            raise  # the package is there but broken: a real bug, keep the traceback
        extra = EXTRA_OF_MODULE.get(top)
        fix = f"pip install 'nwb-ldns[{extra}]'" if extra else f"pip install {top}"
        raise MissingExtraError(f"{purpose} needs the optional package {top}, which is not installed: {fix}") from error


def available(module: str) -> bool:
    """Whether an optional module can be imported (for skipping features, not for erroring)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
