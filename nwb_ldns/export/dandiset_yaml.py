"""The dandiset.yaml of an exported folder: which dandiset the files go to.

`dandi upload` sends a folder's files to the dandiset named by its dandiset.yaml, so the identifier must be the
real one (created on https://dandiarchive.org, or on the staging server). It comes from `--dandiset-id`, or from
the dandiset.yaml that `dandi download` wrote (in the export folder or given by path). Without one, export writes
the placeholder "000000", which `dandi validate` accepts offline but no upload can use: `for_upload` refuses it.
"""

from __future__ import annotations

import re
from pathlib import Path

from nwb_ldns.errors import InputFileError, OptionError

PLACEHOLDER_ID = "000000"
YAML_NAME = "dandiset.yaml"
ID_FIX = "pass --dandiset-id with the 6-digit id of the dandiset you created on dandiarchive.org (e.g. 000123)"
TEMPLATE = (
    'identifier: "{identifier}"\n'
    'name: "LDNS-generated spiking data"\n'
    'description: "Synthetic spike trains sampled from latent diffusion models (nwb-ldns); not recorded data."\n'
)


def parse_dandiset_id(text: str, where: str = "--dandiset-id") -> str:
    """'000123' or 'DANDI:000123' -> '000123'; OptionError for anything else."""
    value = str(text).strip()
    value = value.split(":", 1)[1] if value.upper().startswith("DANDI:") else value
    if not re.fullmatch(r"\d{6}", value):
        raise OptionError(f"{where} {text!r} is not a DANDI identifier (6 digits); {ID_FIX}")
    return value


def read_dandiset_id(path: str | Path) -> str | None:
    """The identifier in a dandiset.yaml (a file, or a folder holding one; `dandiset.identifier` or top-level
    `identifier`, with or without the DANDI: prefix, as dandi reads it); None when the file has none."""
    import yaml

    path = Path(path)
    path = path / YAML_NAME if path.is_dir() else path
    try:
        content = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise InputFileError(f"cannot read {path} ({error}); pass the dandiset.yaml written by `dandi download`, or "
                             "--dandiset-id") from None
    if not isinstance(content, dict):
        raise InputFileError(f"{path} is not a dandiset.yaml (no fields); pass --dandiset-id instead")
    nested = content.get("dandiset")
    value = nested.get("identifier") if isinstance(nested, dict) else None
    value = value if value is not None else content.get("identifier")
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputFileError(f"{path}: identifier {value!r} is not quoted text; write it as identifier: \"000123\"")
    return parse_dandiset_id(value, where=f"{path}: identifier")


def resolve_dandiset_id(dandiset_dir: Path, dandiset_id: str | None = None,
                        dandiset_yaml: str | Path | None = None) -> str | None:
    """The dandiset id from --dandiset-id, a given dandiset.yaml, or the folder's own dandiset.yaml (they must
    agree; the placeholder counts as none). None when no source gives one."""
    found: list[tuple[str, str]] = []
    if dandiset_id is not None:
        found.append((parse_dandiset_id(dandiset_id), "--dandiset-id"))
    if dandiset_yaml is not None:
        found.append((read_dandiset_id(dandiset_yaml) or PLACEHOLDER_ID, str(dandiset_yaml)))
    own = dandiset_dir / YAML_NAME
    if own.exists():
        found.append((read_dandiset_id(own) or PLACEHOLDER_ID, str(own)))
    real = [(value, source) for value, source in found if value != PLACEHOLDER_ID]
    if len({value for value, _ in real}) > 1:
        listed = ", ".join(f"{value} ({source})" for value, source in real)
        raise OptionError(f"the dandiset ids disagree: {listed}; export into the folder of that dandiset or pass the "
                          "matching --dandiset-id")
    return real[0][0] if real else None


def write_dandiset_yaml(dandiset_dir: Path, identifier: str | None) -> Path:
    """Write dandiset.yaml with `identifier` (the placeholder when None), unless the folder has a real one.

    A dandiset.yaml with a real id (from `dandi download`, or an earlier export) is kept as it is; a placeholder
    is replaced once an id is known. Written through atomic_output: complete or absent.
    """
    from nwb_ldns.fileio import atomic_output

    target = dandiset_dir / YAML_NAME
    current = read_dandiset_id(target) if target.exists() else None
    if current not in (None, PLACEHOLDER_ID):
        return target  # resolve_dandiset_id checked that it agrees
    if target.exists() and current is None:
        raise InputFileError(f"{target} has no identifier; add identifier: \"000123\" (your dandiset's id) to it, or "
                             "remove it and pass --dandiset-id")
    if target.exists() and identifier is None:
        return target
    with atomic_output(target, overwrite=target.exists()) as tmp:
        tmp.write_text(TEMPLATE.format(identifier=identifier or PLACEHOLDER_ID))
    return target


def refuse_placeholder(dandiset_dir: Path) -> str:
    """The folder's dandiset id, or an OptionError when it is missing or the placeholder (before an upload)."""
    target = dandiset_dir / YAML_NAME
    identifier = read_dandiset_id(target) if target.exists() else None
    if identifier in (None, PLACEHOLDER_ID):
        raise OptionError(f"{target} has no dandiset id (placeholder {PLACEHOLDER_ID}), so it cannot be uploaded; "
                          f"{ID_FIX}")
    return identifier
