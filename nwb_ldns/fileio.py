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
import io
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterable, Iterator, Literal

from nwb_ldns.errors import OptionError, OutputExistsError, OutputWriteError

OutputKind = Literal["model", "nwb", "report", "json", "compare"]

KIND_NAMES = {
    "model": "an nwb-ldns model directory",
    "nwb": "an NWB file written by nwb-ldns",
    "report": "an nwb-ldns report directory",
    "json": "a JSON result written by nwb-ldns",
    "compare": "an nwb-ldns compare directory",
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


def is_our_compare_dir(path: str | os.PathLike) -> bool:
    """A `compare --out` directory: its compare_plan.json carries the compare format tag."""
    path = Path(path)
    described = _json_object(path / "compare_plan.json") if path.is_dir() else None
    return bool(described) and described.get("format") == "nwb-ldns-compare"


def is_our_report(path: str | os.PathLike) -> bool:
    """A report directory: index.html beside our results.json."""
    path = Path(path)
    return path.is_dir() and (path / "index.html").is_file() and is_our_result_json(path / "results.json")


SAFE_ZARR_CODECS = {None, "vlen-utf8", "vlen-bytes", "json", "json2", "blosc", "zlib", "gzip", "zstd", "lz4", "bz2",
                    "lzma"}


def _codec_ids(meta: object) -> list[object]:
    """The codec ids of one array's .zarray metadata (compressor first, then filters)."""
    if not isinstance(meta, dict):
        return []
    filters = meta.get("filters") or []
    codecs = [meta.get("compressor")] + (list(filters) if isinstance(filters, list) else [filters])
    return [codec.get("id") if isinstance(codec, dict) else codec for codec in codecs]


def unsafe_zarr_codecs(store: str | os.PathLike) -> list[tuple[str, str]]:
    """(dataset, codec id) for every array of a Zarr store whose codecs could run code when decoded.

    Why: a codec is named by the store itself, and `pickle` (or a codec we do not know) can execute arbitrary
    code on decode, so a store from elsewhere is untrusted until this returns []. Both places that describe an
    array are checked: each `.zarray` file and the consolidated `.zmetadata` that hdmf-zarr reads instead.
    """
    store = Path(store)
    arrays: dict[str, list[object]] = {}
    consolidated = _json_object(store / ".zmetadata") or {}
    for key, meta in (consolidated.get("metadata") or {}).items():
        if isinstance(key, str) and key.endswith(".zarray"):
            arrays.setdefault(key[: -len(".zarray")].rstrip("/") or ".", []).extend(_codec_ids(meta))
    for folder, subfolders, files in os.walk(store):
        if ".zarray" in files:
            subfolders[:] = []  # chunks below an array, no more metadata
            name = Path(folder).relative_to(store).as_posix()
            arrays.setdefault(name, []).extend(_codec_ids(_json_object(Path(folder) / ".zarray")))
    return sorted((name, str(codec)) for name, codecs in arrays.items() for codec in codecs
                  if codec not in SAFE_ZARR_CODECS)


def _zarr_scalar(store: Path, name: str) -> object:
    """A small Zarr dataset's value, read only when no codec in the store can run code (no pickle, no custom codec)."""
    import zarr

    unsafe = unsafe_zarr_codecs(store)
    if unsafe:
        raise ValueError(f"{unsafe[0][0]} uses the codec {unsafe[0][1]!r}, outside "
                         f"{sorted(c for c in SAFE_ZARR_CODECS if c)}")
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


RECOGNISERS = {"model": is_model_dir, "nwb": is_our_nwb, "report": is_our_report, "json": is_our_result_json,
               "compare": is_our_compare_dir}


def check_output(target: str | os.PathLike, *, kind: OutputKind, overwrite: bool,
                 inputs: Iterable[str | os.PathLike | None] = (), option: str = "--out") -> None:
    """Refuse `target` if it is an input, exists and may not be replaced (no --overwrite, or not ours), or cannot
    be written (its folder is on a read-only file system or not writable)."""
    _check_output_rule(Path(target), kind=kind, overwrite=overwrite, inputs=inputs, option=option)
    refuse_unwritable(target)


def refuse_unwritable(target: str | os.PathLike) -> None:
    """OutputWriteError when the folder `target` would be written in is read-only or not writable by us.

    Why here: commands check their outputs before the long work (training, sampling), so a read-only disk is
    reported at once rather than after it. A full disk cannot be predicted; `atomic_output` reports it.
    """
    folder = _resolved(target).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the nearest existing folder: the missing ones would be created there
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return  # cannot tell: the write itself will say
    if read_only:
        raise output_write_error(OSError(errno.EROFS, os.strerror(errno.EROFS), str(folder)), target)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise output_write_error(OSError(errno.EACCES, os.strerror(errno.EACCES), str(folder)), target)


def _check_output_rule(target: Path, *, kind: OutputKind, overwrite: bool,
                       inputs: Iterable[str | os.PathLike | None], option: str) -> None:
    """The output rule of `check_output` (input, existing and ours), without the writability check."""
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


# --- OS errors on output -------------------------------------------------------------------------------------------

# errno -> (what happened, what to do); ENOSPC, EDQUOT and EROFS only ever come from writing
OUTPUT_ERRNOS = {
    errno.ENOSPC: ("no space left on the device", "free some space there or choose an output on another disk"),
    errno.EDQUOT: ("the disk quota is exceeded", "free some space there or choose an output on another disk"),
    errno.EROFS: ("the file system is read-only", "choose an output on a writable disk"),
    errno.EACCES: ("permission denied", "choose an output you may write to or change the folder's permissions"),
    errno.EPERM: ("operation not permitted", "choose an output you may write to or change the folder's permissions"),
}
WRITE_ONLY_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def output_write_error(error: OSError, target: str | os.PathLike | None = None) -> OutputWriteError:
    """The one-line error for an OS error while writing `target` (default: the file the error names)."""
    reason, fix = OUTPUT_ERRNOS[error.errno]
    where = target if target is not None else (error.filename or "the output")
    return OutputWriteError(f"cannot write {where}: {reason}; {fix}, then run the command again "
                            "(nothing was written under the final name)")


def _os_error_of(error: BaseException) -> OSError | None:
    """The OSError behind `error`: itself, or the one safetensors' Rust writer reports as "... (os error N)"."""
    if isinstance(error, OSError):
        return error
    found = re.search(r"\(os error (\d+)\)", str(error)) if type(error).__name__ == "SafetensorError" else None
    if found is None:
        return None
    code = int(found.group(1))
    return OSError(code, os.strerror(code))


def as_output_write_error(error: BaseException, target: str | os.PathLike | None = None) -> OutputWriteError | None:
    """`error` as an OutputWriteError when it is a full disk, an exceeded quota or a read-only file system, else None.

    For writers outside `atomic_output` (a log appended in place) and for callers that clean up before re-raising.
    """
    if isinstance(error, OutputWriteError):
        return error
    os_error = _os_error_of(error)
    if os_error is None or os_error.errno not in WRITE_ONLY_ERRNOS:
        return None
    return output_write_error(os_error, target)


def _on_output_side(error: OSError, target: Path, tmp_dir: Path | None) -> bool:
    """Whether an OS error came from writing `target`: a write-only errno, or a path of the output itself.

    Why: a permission error while reading an input inside the write must not be blamed on the output.
    """
    if error.errno in WRITE_ONLY_ERRNOS:
        return True
    if error.errno not in OUTPUT_ERRNOS or not error.filename:
        return False
    path, out = _resolved(error.filename), _resolved(target)
    return (_inside(out, path) or (tmp_dir is not None and _inside(path, _resolved(tmp_dir)))
            or (path.parent == out.parent and path.name.startswith(f".{out.name}.")))


# --- stale partial outputs -------------------------------------------------------------------------------------------

STALE_AFTER_S = 5.0  # a partial this old that no process holds is a dead run's leftover


def _partial_pattern(target: Path) -> re.Pattern:
    """The names `tempfile.mkdtemp` gives our partial folders beside `target` (not fit's `.replacement.partial`)."""
    return re.compile(rf"\.{re.escape(target.name)}\.[A-Za-z0-9_]{{8}}\.partial")


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive flock on `path`, or None when another process holds it."""
    import fcntl

    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        return None
    return descriptor


def remove_stale_partials(target: str | os.PathLike) -> list[Path]:
    """Delete `.partial` folders beside `target` left by killed runs of a command writing it; return them.

    Only folders named like ours (`.<name>.XXXXXXXX.partial`), older than STALE_AFTER_S, that no live process
    holds: `atomic_output` keeps a flock on its partial while it writes, and the kernel drops it when the
    process dies.
    """
    target = Path(target)
    pattern, removed = _partial_pattern(target), []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        if not pattern.fullmatch(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        path = Path(entry.path)
        try:
            if time.time() - entry.stat(follow_symlinks=False).st_mtime < STALE_AFTER_S:
                continue
        except OSError:
            continue
        descriptor = _try_lock(path)
        if descriptor is None:
            continue  # a run still writing it
        try:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        finally:
            os.close(descriptor)
    return removed


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike, overwrite: bool = False, is_dir: bool = False, *,
                  kind: OutputKind | None = None, inputs: Iterable[str | os.PathLike | None] = (),
                  option: str = "--out") -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success rename it to `target`, on failure delete it.

    Works for single files (HDF5) and directories (Zarr stores, model directories). With `kind` the output rule
    applies (`check_output`, checked again before replacing); kind=None is for files inside a directory we own
    (checkpoints, logs). Without overwrite, a target that appears while we write is an error, not replaced.
    An OS error on the output side (disk full, read-only, no permission) becomes one OutputWriteError naming
    `target`, after the partial output is deleted; stale partials of killed runs beside `target` are removed.
    """
    target = Path(target)
    inputs = list(inputs)
    if kind is not None:
        check_output(target, kind=kind, overwrite=overwrite, inputs=inputs, option=option)
    elif _exists(target) and not overwrite:
        raise OutputExistsError(f"{target} already exists; pass --overwrite to replace it or choose another path")
    tmp_dir, lock = None, None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(target)
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
        lock = _try_lock(tmp_dir)
        tmp_path = tmp_dir / target.name
        if is_dir:
            tmp_path.mkdir()
        yield tmp_path
        if not overwrite:
            rename_no_replace(tmp_path, target)
            return
        if kind is not None:  # whatever appeared there while we wrote must still be ours to replace
            check_output(target, kind=kind, overwrite=True, inputs=inputs, option=option)
        replace_path(tmp_path, target)
    except Exception as error:  # noqa: BLE001 - re-raised unless it is an OS error on the output side
        os_error = _os_error_of(error)
        if os_error is None or not _on_output_side(os_error, target, tmp_dir):
            raise
        raise output_write_error(os_error, target) from error
    finally:
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)
        if lock is not None:
            os.close(lock)


# --- HDF5 writes that survive a full disk ---------------------------------------------------------------------------

class _WriteGuard(io.FileIO):
    """A file for h5py that remembers the first failed write and drops every later one.

    Why: HDF5 2.0 crashes the process (SIGSEGV) when it closes a file after a write failed (disk full): its
    metadata flush fails again on close and its error path dereferences freed state. Seen from HDF5, every write
    through this object succeeds, so the file closes cleanly; `hdf5_writer` then raises the remembered error and
    `atomic_output` deletes the (useless) partial file.
    """

    def __init__(self, path: str | os.PathLike, mode: str = "w+") -> None:
        super().__init__(path, mode)
        self.error: OSError | None = None

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        if self.error is None:
            try:
                done = 0
                while done < len(view):  # a raw write may write less than asked: finish it
                    done += super().write(view[done:])
            except OSError as error:
                self.error = error
        return len(view)

    def truncate(self, size: int | None = None) -> int:
        if self.error is None:
            try:
                return super().truncate(size)
            except OSError as error:
                self.error = error
        return self.tell() if size is None else size

    def flush(self) -> None:
        if self.error is None:
            try:
                super().flush()
            except OSError as error:
                self.error = error


@contextlib.contextmanager
def hdf5_writer(path: str | os.PathLike, mode: Literal["w", "r+"] = "w") -> Iterator["h5py.File"]:  # noqa: F821
    """A new HDF5 file at `path` (a partial output) for writing; a failed write raises its OSError afterwards.

    Use it for every HDF5 output (`NWBHDF5IO(file=h5, mode="w")`) instead of a path: HDF5 then never sees a
    failing write, and the writer's OSError (disk full, ...) reaches `atomic_output`, which reports it.
    mode="r+" edits an existing partial output in place (export's copy with new metadata), never an input.
    """
    import h5py

    guard = _WriteGuard(path, "w+" if mode == "w" else "r+")
    try:
        with h5py.File(guard, mode) as h5:
            yield h5
    except Exception:
        if guard.error is None:
            raise
        # HDF5 failed reading back what the full disk dropped: the disk error is the cause
    finally:
        guard.close()
    if guard.error is not None:
        raise guard.error


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
