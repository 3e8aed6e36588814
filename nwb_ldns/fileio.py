"""File helpers shared by every writer: the output rule, atomic outputs, directory locks and checksums.

Why one module: every command's outputs go through `check_output` (called by `atomic_output` when the caller
says what kind of output it writes), so one rule decides, in one place, what may be written:

- an output may never be an input of the same command, lie inside one (a file in the model directory being
  sampled) or contain one;
- `--overwrite` is a promise to replace *our previous output* of the same kind (a model directory, an NWB file
  written by nwb-ldns, a report directory, an `evaluate --json` result), never an unrelated file or folder.

Outputs are written under a temporary `.partial` name beside the target and renamed when complete, so a crash
never leaves a half-written file under the final name; a replaced directory is swapped in atomically where the
kernel allows it, and the old one is deleted only after the new one is in place.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Literal

from nwb_ldns.errors import OptionError, OutputExistsError

OutputKind = Literal["model", "nwb", "report", "json"]

KIND_NAMES = {
    "model": "an nwb-ldns model directory",
    "nwb": "an NWB file written by nwb-ldns",
    "report": "an nwb-ldns report directory",
    "json": "a JSON result written by nwb-ldns",
}


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes (or of every file of a directory, in sorted relative-path order)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(chunk_size), b""):
                digest.update(block)
    return digest.hexdigest()


# --- the output rule ---------------------------------------------------------------------------------------------

def _resolved(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.abspath(path)))


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _exists(path: Path) -> bool:
    return os.path.lexists(path)


def refuse_input_as_output(target: str | os.PathLike, inputs: Iterable[str | os.PathLike | None],
                           option: str = "--out") -> None:
    """Raise OptionError when `target` is an input, lies inside an input directory, or contains an input."""
    out = _resolved(target)
    for given in inputs:
        if given is None or str(given) == "" or "://" in str(given):
            continue  # nothing given, or a URL: nothing on this disk to protect
        source = _resolved(given)
        if out == source:
            problem = "is also an input of this command"
        elif _inside(out, source):
            problem = f"lies inside the input {given}"
        elif _inside(source, out):
            problem = f"contains the input {given}"
        else:
            continue
        raise OptionError(f"{option} {target} {problem}; writing it would destroy the input, choose another "
                          f"{option} path")


def refuse_overlapping_outputs(first: tuple[str, str | os.PathLike], second: tuple[str, str | os.PathLike]) -> None:
    """Raise OptionError when two outputs of one command are the same path or one lies inside the other."""
    (name_a, path_a), (name_b, path_b) = first, second
    a, b = _resolved(path_a), _resolved(path_b)
    if _inside(a, b) or _inside(b, a):
        raise OptionError(f"{name_a} {path_a} and {name_b} {path_b} overlap (writing one would replace the other); "
                          "give them separate paths")


def _json_object(path: Path) -> dict | None:
    try:
        with open(path, "rb") as handle:
            value = json.loads(handle.read(1 << 26))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def is_model_dir(path: str | os.PathLike) -> bool:
    """A directory whose config.json carries the nwb-ldns model format tag."""
    from nwb_ldns.model_dir import FORMAT  # model_dir imports this module

    path = Path(path)
    described = _json_object(path / "config.json") if path.is_dir() else None
    return bool(described) and described.get("format") == FORMAT


def is_our_result_json(path: str | os.PathLike) -> bool:
    """An `evaluate --json` result: its real, generated and settings sections (a model's config.json has none)."""
    path = Path(path)
    value = _json_object(path) if path.is_file() else None
    return bool(value) and {"real", "generated", "settings"} <= set(value)


def is_our_report(path: str | os.PathLike) -> bool:
    """A report directory: index.html beside our results.json."""
    path = Path(path)
    return path.is_dir() and (path / "index.html").is_file() and is_our_result_json(path / "results.json")


SAFE_ZARR_CODECS = {None, "vlen-utf8", "vlen-bytes", "json", "json2", "blosc", "zlib", "gzip", "zstd", "lz4", "bz2",
                    "lzma"}


def _zarr_scalar(store: Path, name: str) -> object:
    """A small Zarr dataset's value, read only when its codecs cannot run code (no pickle, no custom codec)."""
    import zarr

    meta = _json_object(store / name / ".zarray") or {}
    codecs = [meta.get("compressor")] + list(meta.get("filters") or [])
    if any((codec or {}).get("id") not in SAFE_ZARR_CODECS for codec in codecs):
        raise ValueError(f"{name} uses a codec outside {sorted(c for c in SAFE_ZARR_CODECS if c)}")
    return zarr.open(str(store), mode="r")[name][...]


def _source_script(path: Path) -> str:
    """The NWB file's general/source_script ("" when there is none or the file cannot be read as NWB)."""
    try:
        if path.is_dir():  # an NWB Zarr store
            value = _zarr_scalar(path, "general/source_script")
        else:
            import h5py

            with h5py.File(path, "r") as handle:
                value = handle["general/source_script"][()]
    except (OSError, KeyError, ValueError, TypeError):  # unreadable, not NWB, no source_script: not ours
        return ""
    value = value.item() if hasattr(value, "item") and getattr(value, "size", 1) == 1 else value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def is_our_nwb(path: str | os.PathLike) -> bool:
    """An NWB file (HDF5 or Zarr) whose source_script says nwb-ldns wrote it (converted or generated)."""
    return _source_script(Path(path)).startswith("nwb-ldns")


RECOGNISERS = {"model": is_model_dir, "nwb": is_our_nwb, "report": is_our_report, "json": is_our_result_json}


def check_output(target: str | os.PathLike, *, kind: OutputKind, overwrite: bool,
                 inputs: Iterable[str | os.PathLike | None] = (), option: str = "--out") -> None:
    """Refuse `target` if it is an input, or exists and may not be replaced (no --overwrite, or not ours)."""
    target = Path(target)
    refuse_input_as_output(target, inputs, option)
    if not _exists(target):
        return
    if not overwrite:
        raise OutputExistsError(f"{target} already exists; pass --overwrite to replace it or choose another path")
    if target.is_symlink():
        raise OutputExistsError(f"{target} is a symbolic link; --overwrite does not replace links, remove it "
                                "yourself or choose another path")
    if kind == "model" and target.is_dir() and not any(target.iterdir()):
        return  # an empty directory made for the model
    if not RECOGNISERS[kind](target):
        raise OutputExistsError(f"{target} exists and is not {KIND_NAMES[kind]}; --overwrite only replaces "
                                "what the same command wrote: remove it yourself or choose another path")


# --- atomic renames --------------------------------------------------------------------------------------------------

_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2
_AT_FDCWD = -100


def _renameat2(source: Path, target: Path, flags: int) -> bool:
    """Linux renameat2(2) with `flags`; False where the C library or the file system lacks it (callers fall back).

    Why: it gives the two atomic steps plain rename lacks, create-if-absent (two `sample` runs to one output
    cannot both succeed) and exchange (a replaced directory is never missing, not even for a moment).
    """
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(target))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif _exists(path):
        path.unlink()


def rename_no_replace(source: Path, target: Path) -> None:
    """Move source to target unless target exists by now (another process wrote it while we worked)."""
    taken = OutputExistsError(f"{target} was created by another process while this one was writing it; "
                              "nothing was replaced, choose another path or pass --overwrite")
    try:
        if _renameat2(source, target, _RENAME_NOREPLACE):
            return
        if source.is_dir():
            os.mkdir(target)  # claim the name atomically, then rename onto the empty directory
            os.rename(source, target)
        else:
            os.link(source, target)  # atomic create-if-absent
            source.unlink()
    except FileExistsError:
        raise taken from None


def replace_path(source: Path, target: Path) -> None:
    """Put source at target; an existing target is replaced atomically where possible and deleted last."""
    if not _exists(target) or (source.is_file() and not target.is_dir()):
        os.replace(source, target)  # a file (atomic), or a directory onto nothing
        return
    if _renameat2(source, target, _RENAME_EXCHANGE):
        _remove(source)  # source now holds the old target
        return
    retired = source.with_name(source.name + ".retired.partial")
    os.rename(target, retired)
    os.rename(source, target)
    _remove(retired)


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike, overwrite: bool = False, is_dir: bool = False, *,
                  kind: OutputKind | None = None, inputs: Iterable[str | os.PathLike | None] = (),
                  option: str = "--out") -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success rename it to `target`, on failure delete it.

    Works for single files (HDF5) and directories (Zarr stores, model directories). With `kind` the output rule
    applies (`check_output`, checked again before replacing); kind=None is for files inside a directory we own
    (checkpoints, logs). Without overwrite, a target that appears while we write is an error, not replaced.
    """
    target = Path(target)
    inputs = list(inputs)
    if kind is not None:
        check_output(target, kind=kind, overwrite=overwrite, inputs=inputs, option=option)
    elif _exists(target) and not overwrite:
        raise OutputExistsError(f"{target} already exists; pass --overwrite to replace it or choose another path")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    tmp_path = tmp_dir / target.name
    if is_dir:
        tmp_path.mkdir()
    try:
        yield tmp_path
        if not overwrite:
            rename_no_replace(tmp_path, target)
            return
        if kind is not None:  # whatever appeared there while we wrote must still be ours to replace
            check_output(target, kind=kind, overwrite=True, inputs=inputs, option=option)
        replace_path(tmp_path, target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


@contextlib.contextmanager
def lock_directory(directory: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive advisory lock on a directory (a model being trained) for the duration of the block.

    Why: two `fit` runs into one model directory would interleave checkpoints and logs; the second one is
    refused at once instead. The lock is flock(2) on the directory itself, so it leaves no file behind and is
    released by the kernel when the process dies.
    """
    import fcntl

    descriptor = os.open(directory, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OptionError(f"{directory} is in use by another nwb-ldns process (a fit is running there); wait "
                              "for it to finish or choose another --out") from None
        yield
    finally:
        os.close(descriptor)
