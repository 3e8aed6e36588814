"""Open an NWB source (local HDF5 or Zarr, or a remote http(s)/s3/DANDI file) read-only, after checking it is NWB 2.

The checks run with h5py/zarr *before* pynwb, so that a missing file, a truncated file, a plain HDF5 file, or an
NWB 1.x / MatNWB 2.0-beta file gives one clear line instead of a deep pynwb traceback.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from nwb_ldns.data.remote import is_remote, open_remote
from nwb_ldns.errors import InputFileError
from nwb_ldns.fileio import sha256_file, unsafe_zarr_codecs

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
SUPPORTED_NWB_MAJOR = 2  # the NWB major version pynwb reads; 1.x and 3.x+ are refused by check_nwb_version


@dataclass
class OpenedSource:
    """An open NWBFile plus where it came from."""

    nwbfile: object
    source_path: str
    backend: str  # "hdf5" | "zarr" | "remote-hdf5"
    nwb_version: str
    local_path: Path | None

    def sha256(self) -> str:
        """sha256 of the local file or Zarr directory; "" for remote sources (hashing would download them)."""
        return sha256_file(self.local_path) if self.local_path is not None else ""


def _as_text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "shape") and getattr(value, "shape", None) == ():
        return _as_text(value[()])
    if hasattr(value, "__len__") and not isinstance(value, str) and len(value) == 1:  # 1-element array
        return _as_text(value[0])
    return str(value)


def check_nwb_version(version: str | None, where: str) -> str:
    """Accept NWB 2.x; reject missing, 1.x, future (3.x and later) and MatNWB 2.0-beta versions, naming the version."""
    if version is None:
        raise InputFileError(
            f"{where} is an HDF5/Zarr file but not NWB (no 'nwb_version' attribute); pass an NWB 2.x file"
        )
    text = version.strip()
    match = re.match(r"^(?:NWB-)?(\d+)\.(\d+)(.*)$", text)
    if match is None:
        raise InputFileError(f"{where} has an unrecognised NWB schema version {text!r}; pass an NWB 2.x file")
    major, minor, rest = int(match.group(1)), int(match.group(2)), match.group(3)
    if major < 2 or text.startswith("NWB-"):
        raise InputFileError(
            f"{where} uses NWB schema version {text} (NWB 1.x), which pynwb cannot read; "
            "convert it to NWB 2.x first (e.g. with the NWB 1->2 conversion tools) and pass the converted file"
        )
    if major > SUPPORTED_NWB_MAJOR:
        raise InputFileError(
            f"{where} claims NWB schema version {text} (NWB {major}.x), a future major version that this nwb-ldns "
            f"and pynwb (NWB {SUPPORTED_NWB_MAJOR}.x) cannot read correctly; upgrade nwb-ldns and pynwb, or ask the "
            f"file's author for an NWB {SUPPORTED_NWB_MAJOR}.x export"
        )
    if major == 2 and minor == 0 and "b" in rest.lower():
        raise InputFileError(
            f"{where} uses NWB schema version {text} (a MatNWB 2.0 beta schema), which pynwb cannot read; "
            "re-export it with a current MatNWB (NWB >= 2.1) and pass the new file"
        )
    return text


def _hdf5_version(file, where: str) -> str:
    import h5py

    version = file.attrs.get("nwb_version")
    if version is None and isinstance(file.get("nwb_version", getlink=True), h5py.HardLink):
        version = file["nwb_version"][()]  # NWB 1.x kept the version in a root dataset
    return check_nwb_version(None if version is None else _as_text(version), where)


def _zarr_version(path: Path) -> str:
    import zarr

    try:
        group = zarr.open_group(str(path), mode="r")
        version = group.attrs.get("nwb_version")
    except MemoryError:  # not a damaged file: keep it (and its traceback)
        raise
    except Exception as error:  # zarr raises several unrelated types for broken stores
        raise InputFileError(
            f"{path} is not a readable Zarr store ({error}); pass an NWB file (.nwb or .nwb.zarr)"
        ) from None
    return check_nwb_version(None if version is None else _as_text(version), str(path))


def _open_h5(target, where: str):
    import h5py

    try:
        return h5py.File(target, "r")
    except InputFileError:
        raise
    except OSError as error:
        raise InputFileError(
            f"{where} cannot be opened as HDF5 ({str(error).splitlines()[0]}); the file is probably truncated or "
            "corrupt: download or copy it again"
        ) from None


def local_kind(path: Path) -> str:
    """'hdf5' or 'zarr' for an existing local path, else raise InputFileError."""
    if not path.exists():
        raise InputFileError(f"{path} does not exist; check the path (NWB files end in .nwb or .nwb.zarr)")
    if path.is_dir():
        if (path / ".zgroup").exists() or (path / "zarr.json").exists():
            return "zarr"
        raise InputFileError(f"{path} is a directory but not a Zarr store; pass an .nwb file or an .nwb.zarr directory")
    with open(path, "rb") as handle:
        head = handle.read(len(HDF5_SIGNATURE))
    if head != HDF5_SIGNATURE:
        raise InputFileError(
            f"{path} is not an HDF5 or Zarr file (no HDF5 signature); pass an NWB file (.nwb or .nwb.zarr)"
        )
    return "hdf5"


@contextlib.contextmanager
def open_nwb(source: str | os.PathLike) -> Iterator[OpenedSource]:
    """Yield an `OpenedSource` for a local .nwb, a local .nwb.zarr, or an http(s)/s3/dandi URL, opened read-only."""
    from pynwb import NWBHDF5IO

    with contextlib.ExitStack() as stack:
        if is_remote(source):
            url = str(source)
            if url.split("?")[0].rstrip("/").lower().endswith(".zarr"):
                raise InputFileError(
                    f"{url} looks like a remote Zarr store, which nwb-ldns reads only from a local copy; "
                    "download the .nwb.zarr directory and pass its path"
                )
            raw = stack.enter_context(open_remote(url))
            h5 = stack.enter_context(_open_h5(raw, url))
            version = _hdf5_version(h5, url)
            io = stack.enter_context(_pynwb_errors(url, version, lambda: NWBHDF5IO(file=h5, mode="r")))
            with _read_errors(url):
                yield OpenedSource(_read(io, url, version), url, "remote-hdf5", version, None)
            return
        text = str(source)
        scheme = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://", text)
        if scheme is not None:
            raise InputFileError(
                f"{text}: {scheme.group(1)}:// sources are not supported; pass a local path, an http(s):// URL, "
                "s3://BUCKET/KEY or dandi://DANDISET/PATH"
            )
        path = Path(source).expanduser()
        kind = local_kind(path)
        if kind == "zarr":
            from hdmf_zarr.nwb import NWBZarrIO

            refuse_unsafe_codecs(path)
            version = _zarr_version(path)
            io = stack.enter_context(_pynwb_errors(str(path), version, lambda: NWBZarrIO(str(path), mode="r")))
            yield OpenedSource(_read(io, str(path), version), str(path), "zarr", version, path)
            return
        h5 = stack.enter_context(_open_h5(str(path), str(path)))
        version = _hdf5_version(h5, str(path))
        io = stack.enter_context(_pynwb_errors(str(path), version, lambda: NWBHDF5IO(file=h5, mode="r")))
        with _read_errors(str(path)):
            yield OpenedSource(_read(io, str(path), version), str(path), "hdf5", version, path)


@contextlib.contextmanager
def _pynwb_errors(where: str, version: str, make_io):
    try:
        io = make_io()
    except MemoryError:  # not a damaged file: keep it (and its traceback)
        raise
    except Exception as error:  # pynwb/hdmf raise many types for files they cannot map
        raise InputFileError(
            f"pynwb cannot open {where} (NWB {version}): {type(error).__name__}: "
            f"{(str(error).splitlines() or [''])[0][:200]}; "
            "check the file with `pynwb-validate` or re-export it with a current NWB writer"
        ) from error
    try:
        yield io
    finally:
        io.close()


def _read(io, where: str, version: str):
    try:
        with warnings.catch_warnings():
            # MatNWB files trip pynwb's consistency warnings (e.g. OpticalSeries with external files); they do not
            # concern the tables we read.
            warnings.simplefilter("ignore", UserWarning)
            return io.read()
    except MemoryError:  # not a damaged file: keep it (and its traceback)
        raise
    except Exception as error:
        first_line = (str(error).splitlines() or [""])[0][:200]
        fix = "check the file with `pynwb-validate` or re-export it with a current NWB writer"
        message = f"pynwb cannot read {where} (NWB {version}): {type(error).__name__}: {first_line}; {fix}"
        raise InputFileError(message) from error


def refuse_unsafe_codecs(store: Path) -> None:
    """InputFileError, before anything is decoded, when a dataset of a Zarr store uses a codec that can run code.

    Why: a Zarr store names its own codecs, and decoding `pickle` executes whatever the store's author put in it
    (numcodecs refuses by default, but one environment variable turns that off). The check is the one the
    output rule uses (`nwb_ldns.fileio.unsafe_zarr_codecs`).
    """
    unsafe = unsafe_zarr_codecs(store)
    if unsafe:
        name, codec = unsafe[0]
        kind = "a pickle codec" if codec.startswith("pickle") else "a codec nwb-ldns does not know"
        raise InputFileError(
            f"{store}: dataset {name} uses {kind} ({codec!r}); nwb-ldns refuses it because decoding it can run "
            "arbitrary code, and read nothing: if you trust the store, re-export it with safe codecs "
            "(hdmf-zarr's JSON object codec) or as HDF5 (.nwb)"
        )


@contextlib.contextmanager
def _read_errors(where: str) -> Iterator[None]:
    """Turn an HDF5 read failure inside the block (a damaged chunk, a truncated file) into one InputFileError.

    Only HDF5's own errors are mapped (an OSError without errno raised inside h5py); the dataset is named while
    the file is still open, from the h5py Dataset being read in the failing call.
    """
    try:
        yield
    except OSError as error:
        if error.errno is not None or not _raised_in_h5py(error.__traceback__):
            raise
        dataset = _dataset_being_read(error.__traceback__)
        what = f"the dataset {dataset}" if dataset else "its data"
        raise InputFileError(
            f"{where} is damaged: HDF5 cannot read {what} ({(str(error).splitlines() or [''])[0][:160]}); the file "
            "was probably corrupted or truncated on disk or in transfer: download or copy it again "
            "(`h5dump` shows which parts are readable)"
        ) from None


def _frames(tb) -> Iterator[object]:
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next


def _raised_in_h5py(tb) -> bool:
    return any("h5py" in frame.f_code.co_filename for frame in _frames(tb))


def _dataset_being_read(tb) -> str | None:
    """The HDF5 path of the innermost h5py Dataset in the traceback (None when there is none)."""
    import h5py

    name = None
    for frame in _frames(tb):
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, h5py.Dataset):
            try:
                name = candidate.name
            except (ValueError, RuntimeError, OSError):  # a closed or invalid identifier: keep the last name
                continue
    return name
