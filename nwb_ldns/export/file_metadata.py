"""Session metadata that `export` writes into the copies it puts in a dandiset (experimenter, institution, ...).

Why: generated files carry no experimenter, institution or related publication, which DANDI's nwbinspector
profile suggests adding and which the DANDI web page shows; a user supplies them as options or in a YAML file
with neuroconv's layout (top-level `NWBFile:` and `Subject:` sections). The input files are never changed: the
edit is made on the copy, inside its partial output, before it is renamed into place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from nwb_ldns.errors import InputFileError, OptionError

# Kapoor, Schulz et al., "Latent Diffusion for Neural Spiking Data", NeurIPS 2024 (arXiv 2407.08751)
LDNS_PUBLICATION = "doi:10.48550/arXiv.2407.08751"
# the person-name form DANDI accepts (dandischema NAME_PATTERN): "Last, First"
NAME_PATTERN = r"^([\w\s\-\.']+),\s+([\w\s\-\.']+)$"
DOI_STARTS = ("doi:", "http://dx.doi.org/", "https://doi.org/")
NWBFILE_LISTS = ("experimenter", "related_publications", "keywords")
NWBFILE_TEXTS = ("institution", "lab", "experiment_description", "protocol", "notes", "data_collection",
                 "pharmacology", "surgery", "virus", "stimulus_notes", "slices")
SUBJECT_TEXTS = ("species", "sex", "age", "strain", "genotype", "description", "weight", "date_of_birth")
# keys that name the file (dandi organize) or identify what the data imitate: never rewritten by export
FIXED_KEYS = {"NWBFile": ("session_id", "identifier", "session_description", "session_start_time"),
              "Subject": ("subject_id",)}


@dataclass
class FileMetadata:
    """Fields to set in general/ (`nwbfile`) and general/subject/ (`subject`); lists for list fields."""

    nwbfile: dict[str, Any] = field(default_factory=dict)
    subject: dict[str, str] = field(default_factory=dict)


def _as_list(value: Any, key: str, where: str) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in values):
        raise OptionError(f"{where}: {key} must be a text or a list of texts, got {value!r}; fix the value")
    return [v.strip() for v in values]


def _check_values(metadata: FileMetadata, where: str) -> None:
    for name in metadata.nwbfile.get("experimenter", []):
        if not re.match(NAME_PATTERN, name):
            raise OptionError(f"{where}: experimenter {name!r} is not in DANDI's 'Last, First' form; pass e.g. "
                              "--experimenter 'Curie, Marie'")
    for doi in metadata.nwbfile.get("related_publications", []):
        if not doi.startswith(DOI_STARTS):
            raise OptionError(f"{where}: related publication {doi!r} is not a DOI; write it as doi:10.xxxx/... or "
                              "https://doi.org/10.xxxx/...")


def read_metadata_yaml(path: str | Path) -> FileMetadata:
    """A neuroconv-style metadata YAML (`NWBFile:` and `Subject:` sections) -> FileMetadata (checked)."""
    import yaml

    path = Path(path)
    try:
        content = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise InputFileError(f"cannot read the metadata file {path} ({error}); pass a YAML file") from None
    content = content or {}
    where = f"metadata file {path}"
    if not isinstance(content, dict) or set(content) - {"NWBFile", "Subject"}:
        extra = sorted(set(content) - {"NWBFile", "Subject"}) if isinstance(content, dict) else content
        raise OptionError(f"{where}: only the sections NWBFile and Subject are read, found {extra}; remove the others")
    metadata = FileMetadata()
    sections = (("NWBFile", NWBFILE_LISTS + NWBFILE_TEXTS, metadata.nwbfile),
                ("Subject", SUBJECT_TEXTS, metadata.subject))
    for section, allowed, target in sections:
        entries = content.get(section) or {}
        if not isinstance(entries, dict):
            raise OptionError(f"{where}: {section} must be a mapping of fields, got {entries!r}")
        for key, value in entries.items():
            if key in FIXED_KEYS[section]:
                raise OptionError(f"{where}: {section}.{key} is kept from the generated file (it names the file "
                                  "and identifies the source session); remove it from the metadata file")
            if key not in allowed:
                raise OptionError(f"{where}: {section}.{key} is not a field export sets; use one of "
                                  f"{', '.join(allowed)}")
            if key in NWBFILE_LISTS:
                target[key] = _as_list(value, key, where)
            elif isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value).strip():
                target[key] = str(value).strip()
            elif hasattr(value, "isoformat"):  # YAML dates (date_of_birth)
                target[key] = value.isoformat()
            else:
                raise OptionError(f"{where}: {section}.{key} must be a text, got {value!r}")
    _check_values(metadata, where)
    return metadata


def build_metadata(*, experimenter: Iterable[str] = (), institution: str | None = None,
                   related_publications: Iterable[str] = (), metadata_file: str | Path | None = None) -> FileMetadata:
    """The metadata file's fields, then the options on top (an option replaces the file's value)."""
    metadata = read_metadata_yaml(metadata_file) if metadata_file is not None else FileMetadata()
    options: dict[str, Any] = {"experimenter": list(experimenter), "related_publications": list(related_publications)}
    if institution is not None:
        if not institution.strip():
            raise OptionError("--institution is empty; pass the institution's name")
        options["institution"] = institution.strip()
    metadata.nwbfile.update({key: value for key, value in options.items() if value})
    _check_values(metadata, "options")
    return metadata


def publications(existing: list[str], metadata: FileMetadata) -> list[str]:
    """Given publications replace the file's; otherwise the file's plus the LDNS paper (the method behind the data)."""
    if "related_publications" in metadata.nwbfile:
        return list(metadata.nwbfile["related_publications"])
    return existing + ([LDNS_PUBLICATION] if LDNS_PUBLICATION not in existing else [])


def _texts(value: Any) -> list[str]:
    items = np.atleast_1d(np.asarray(value, dtype=object)).tolist()
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in items]


def apply_metadata(path: Path, metadata: FileMetadata) -> None:
    """Set the fields in the NWB file or Zarr store at `path`: a partial output of `export`, never an input."""
    (_apply_zarr if path.is_dir() else _apply_hdf5)(path, metadata)


def _apply_hdf5(path: Path, metadata: FileMetadata) -> None:
    import h5py

    from nwb_ldns.fileio import hdf5_writer

    text = h5py.string_dtype("utf-8")
    with hdf5_writer(path, mode="r+") as h5:
        general = h5.require_group("general")
        existing = _texts(general["related_publications"][()]) if "related_publications" in general else []
        for group, values in _targets(path, general, existing, metadata):
            for key, value in values.items():
                attrs = dict(group[key].attrs) if key in group else {}
                if key in group:
                    del group[key]
                if isinstance(value, list):
                    dataset = group.create_dataset(key, data=np.array(value, dtype=object), dtype=text)
                else:
                    dataset = group.create_dataset(key, data=str(value), dtype=text)
                dataset.attrs.update(attrs)  # e.g. age's `reference`


def _targets(path: Path, general: Any, existing: list[str], metadata: FileMetadata) -> list[tuple[Any, dict]]:
    """(group, {field: value}) pairs to write: /general, and /general/subject when Subject fields are given (the
    same for an h5py and a zarr group)."""
    fields = {**metadata.nwbfile, "related_publications": publications(existing, metadata)}
    targets = [(general, fields)]
    if metadata.subject:
        if "subject" not in general:
            raise InputFileError(f"{path} has no Subject to set {sorted(metadata.subject)} in; give the source "
                                 "session a Subject")
        targets.append((general["subject"], metadata.subject))
    return targets


def _apply_zarr(path: Path, metadata: FileMetadata) -> None:
    import zarr

    root = zarr.open_group(str(path), mode="r+")
    general = root.require_group("general")
    existing = _texts(general["related_publications"][...]) if "related_publications" in general else []
    for group, values in _targets(path, general, existing, metadata):
        for key, value in values.items():
            attrs = dict(group[key].attrs) if key in group else {}
            if key in group:
                del group[key]
            is_list = isinstance(value, list)
            items = value if is_list else [str(value)]  # hdmf-zarr keeps a scalar text as a 1-element array
            attrs["zarr_dtype"] = "str" if is_list else "scalar"
            if is_list:
                attrs.setdefault("_ARRAY_DIMENSIONS", [f"num_{key}"])
            _zarr_text_array(group, key, items).attrs.update(attrs)
    if (path / ".zmetadata").exists():  # hdmf-zarr reads the consolidated metadata: refresh it
        zarr.consolidate_metadata(str(path))


def _zarr_text_array(group: Any, key: str, items: list[str]) -> Any:
    """A 1-d array of UTF-8 texts (vlen-utf8, the codec hdmf-zarr 0.13 uses; zarr 2 on every supported Python)."""
    import numcodecs

    data = np.array(items, dtype=object)
    return group.create_dataset(key, data=data, dtype=object, object_codec=numcodecs.VLenUTF8())
