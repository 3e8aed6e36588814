"""The file names `dandi organize` gives NWB files, computed without importing dandi.

Why our own code: dandi is an optional extra and slow to import, and `export` must name files the way
`dandi organize -f copy -d DANDISET FILE...` would (tests/export compares the two). The rule, as dandi applies it
to the set of files organized together:

- path `sub-<subject_id>/sub-<subject_id>[_ses-<session_id>][_desc-<label>][_obj-<id>][_<modalities>]<ext>`;
- `_ses-` only when the files organized together have more than one session id (an "additional" field); a file
  without a session id gets one from its session_start_time (YYYYMMDD, plus THHMMSS unless every time is 00:00:00);
- the modalities are the pynwb modules (ecephys, behavior, ophys, ...) defining the neurodata types in the file,
  leaving out base, device, file and misc (only pynwb container types count: Units and TimeIntervals are tables,
  so a generated file usually has none);
- labels have `_ * \\ / < > : | " ' ? % @ ; ,`, white space and `.` replaced by `-`;
- two files that would get the same path are told apart by `_obj-<crc32 of the file's object_id, base 36>`.

`dandi organize` reads .nwb files only; a .nwb.zarr store is named by the same rule with its own extension.
tissue/slice/cell/probe ids (icephys and probe metadata) are not read: files written by nwb-ldns have none.
"""

from __future__ import annotations

import inspect
import re
import zlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from nwb_ldns.errors import InputFileError

# dandi.organize.ORGANIZED_FILENAME_REGEX (the names `dandi validate` accepts), stated here to avoid the import
LABEL = r"[^_*\\/<>:|\"'?%@;.]+"
FILENAME_REGEX = rf"sub-{LABEL}(_ses-{LABEL})?(_(tis|slice|cell|desc|probe|obj)-{LABEL})*(_[a-z]+(\+[a-z]+)*)?\.nwb"
GENERIC_MODULES = {"base", "device", "file", "misc"}  # modules too generic to name a modality


@dataclass(frozen=True)
class FileFacts:
    """What the naming rule reads from one NWB file."""

    path: Path
    subject_id: str
    session_id: str | None
    session_start_time: datetime | None
    object_id: str
    neurodata_types: frozenset[str] = field(default_factory=frozenset)

    @property
    def extension(self) -> str:
        return ".nwb.zarr" if self.path.name.endswith(".nwb.zarr") or self.path.is_dir() else ".nwb"


def sanitize_label(value: str) -> str:
    """A label as dandi writes it: each character it reserves (and white space, '.') becomes '-'."""
    return re.sub(r"[_*\\/<>:|\"'?%@;,\s.]", "-", str(value))


@lru_cache(maxsize=1)
def modality_of_type() -> dict[str, str]:
    """neurodata type -> modality: the pynwb module (pynwb.<module>) that defines each pynwb container class."""
    import pynwb

    found: dict[str, str] = {}
    for module in vars(pynwb).values():
        if not (inspect.ismodule(module) and module.__name__.startswith("pynwb.")):
            continue
        for value in vars(module).values():
            if inspect.isclass(value) and issubclass(value, pynwb.core.NWBMixin):
                parts = value.__module__.split(".")
                if len(parts) == 2 and parts[0] == "pynwb":
                    found.setdefault(value.__name__, parts[1])
    return found


def modalities(types: frozenset[str]) -> tuple[str, ...]:
    """The sorted modalities of a file's neurodata types (generic modules left out)."""
    table = modality_of_type()
    return tuple(sorted({table[t] for t in types if t in table and table[t] not in GENERIC_MODULES}))


def short_object_id(object_id: str) -> str:
    """dandi's `_obj-` label: the CRC32 of the object_id written in base 36, lower case."""
    number, digits = zlib.crc32(object_id.encode("ascii")), "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if number == 0:
            return text


def _sessions_from_time(facts: list[FileFacts]) -> list[FileFacts]:
    """Give files without a session id one from their start time, as dandi does when some file lacks one."""
    if all(f.session_id for f in facts):
        return facts
    times = [f.session_start_time for f in facts if f.session_start_time is not None]
    with_clock = any((t.hour, t.minute, t.second) != (0, 0, 0) for t in times)
    out = []
    for f in facts:
        if not f.session_id and f.session_start_time is not None:
            t = f.session_start_time
            f = replace(f, session_id=t.strftime("%Y%m%d") + (t.strftime("T%H%M%S") if with_clock else ""))
        out.append(f)
    return out


def organized_paths(facts: list[FileFacts], desc: str | None = None) -> list[str]:
    """The relative path (sub-X/sub-X_....nwb) `dandi organize` gives each file, organized together.

    `desc` (not something dandi organize adds) puts `_desc-<desc>` in every name, e.g. to keep several generated
    sets of one session apart by a readable label instead of dandi's `_obj-` checksum.
    """
    facts = _sessions_from_time(facts)
    by_object = {}
    for f in facts:
        if f.object_id in by_object:
            raise InputFileError(f"{by_object[f.object_id]} and {f.path} are the same NWB file (object_id "
                                 f"{f.object_id}); export each file once")
        by_object[f.object_id] = f.path
    sessions = {sanitize_label(f.session_id) if f.session_id else None for f in facts}
    with_obj: set[int] = set()

    def name(i: int) -> str:
        f = facts[i]
        subject = sanitize_label(f.subject_id)
        parts = [f"sub-{subject}"]
        if len(sessions) > 1 and f.session_id:
            parts.append(f"_ses-{sanitize_label(f.session_id)}")
        if desc:
            parts.append(f"_desc-{sanitize_label(desc)}")
        if i in with_obj:
            parts.append(f"_obj-{short_object_id(f.object_id)}")
        kinds = modalities(f.neurodata_types)
        if kinds:
            parts.append("_" + "+".join(kinds))
        return f"sub-{subject}/{''.join(parts)}{f.extension}"

    paths = [name(i) for i in range(len(facts))]
    clashes = {p for p in paths if paths.count(p) > 1}
    if clashes:
        with_obj = {i for i, p in enumerate(paths) if p in clashes}
        paths = [name(i) for i in range(len(facts))]
    for path in paths:
        file_name = path.split("/")[1]
        if file_name.endswith(".nwb") and not re.fullmatch(FILENAME_REGEX, file_name):
            raise InputFileError(f"cannot build a DANDI file name from {path!r}; give the file a subject_id and "
                                 "session_id made of letters, digits and '-'")
    return paths


def _text(value: object) -> str:
    value = value.item() if hasattr(value, "item") and getattr(value, "size", 1) == 1 else value
    if hasattr(value, "__len__") and not isinstance(value, (str, bytes)) and len(value) == 1:
        value = value[0]  # hdmf-zarr stores a scalar as a one-element array
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _hdf5_facts(path: Path) -> tuple[dict, set[str]]:
    import h5py

    with h5py.File(path, "r") as h5:
        types: set[str] = set()

        def visit(_name: str, obj: object) -> None:
            if isinstance(obj, h5py.Group) and "neurodata_type" in obj.attrs:
                types.add(_text(obj.attrs["neurodata_type"]))

        h5.visititems(visit)
        values = {key: _text(h5[name][()]) for key, name in _FIELDS.items() if name in h5}
        values["object_id"] = _text(h5.attrs.get("object_id", ""))
    return values, types


def _zarr_facts(path: Path) -> tuple[dict, set[str]]:
    import zarr

    from nwb_ldns.data.opening import refuse_unsafe_codecs

    refuse_unsafe_codecs(path)  # before anything is decoded
    root = zarr.open_group(str(path), mode="r")
    types: set[str] = set()
    stack = [root]
    while stack:
        group = stack.pop()
        if "neurodata_type" in group.attrs:
            types.add(str(group.attrs["neurodata_type"]))
        stack.extend(child for _, child in group.groups())
    values = {}
    for key, name in _FIELDS.items():
        try:
            values[key] = _text(root[name][...])
        except KeyError:
            continue
    values["object_id"] = str(root.attrs.get("object_id", ""))
    return values, types


_FIELDS = {"subject_id": "general/subject/subject_id", "session_id": "general/session_id",
           "session_start_time": "session_start_time"}


def read_facts(path: Path) -> FileFacts:
    """The naming facts of an NWB file (HDF5 or Zarr); InputFileError when it is not a readable NWB file."""
    try:
        values, types = _zarr_facts(path) if path.is_dir() else _hdf5_facts(path)
        start = values.get("session_start_time")
        start_time = datetime.fromisoformat(start) if start else None
    except InputFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise InputFileError(f"cannot read {path} as NWB ({error}); pass a file written by nwb-ldns sample") from None
    if not values.get("subject_id"):
        raise InputFileError(f"{path} has no Subject with a subject_id; DANDI needs one (write the file with "
                             "write_synthetic, or give the source session a Subject)")
    if not values["object_id"]:
        raise InputFileError(f"{path} has no object_id (written before NWB 2.1?); re-save it with a current pynwb")
    return FileFacts(path=path, subject_id=values["subject_id"], session_id=values.get("session_id") or None,
                     session_start_time=start_time, object_id=values["object_id"], neurodata_types=frozenset(types))
