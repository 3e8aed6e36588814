"""Lay generated NWB files out as a DANDI dataset, with their metadata, and validate it offline.

Files are copied under the names `dandi organize` would give them (nwb_ldns/export/dandi_names.py), with the
session metadata of nwb_ldns/export/file_metadata.py written into the copies (experimenter, institution, the LDNS
paper as related publication); dandiset.yaml names the dandiset (nwb_ldns/export/dandiset_yaml.py). Then the real
`dandi validate` runs on the folder and nwbinspector's DANDI profile on each file (in this process, so the ndx-ldns
checks run too). dandi and nwbinspector are the optional `[dandi]` extra, needed only to validate.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from nwb_ldns.errors import InputFileError, NWBLDNSError, OptionError, OutputExistsError
from nwb_ldns.export.dandi_names import FILENAME_REGEX, FileFacts, organized_paths, read_facts, sanitize_label
from nwb_ldns.export.dandiset_yaml import (
    PLACEHOLDER_ID,
    YAML_NAME,
    refuse_placeholder,
    resolve_dandiset_id,
    write_dandiset_yaml,
)
from nwb_ldns.export.file_metadata import FileMetadata, apply_metadata
from nwb_ldns.fileio import atomic_output, check_output, is_our_nwb, refuse_input_as_output
from nwb_ldns.optional import require

__all__ = ["FILENAME_REGEX", "DandiValidationError", "ExportResult", "dandi_targets", "export_dandiset",
           "inspect_dandi", "run_dandi_validate", "sanitize_label"]

# (inspector check, neurodata type) -> why no option can fix it; printed beside the suggestion
NOT_USER_FIXABLE = {
    ("check_single_row", "SourceSessions"): (
        "not fixable by an option: the ndx-ldns table of training sessions has one row per recorded session, "
        "so a one-session model gives one row"),
}
# inspector check -> the export option that fixes it
FIXED_BY = {
    "check_experimenter_exists": "--experimenter 'Last, First'",
    "check_experimenter_form": "--experimenter 'Last, First'",
    "check_institution": "--institution NAME",
    "check_doi_publications": "--related-publication doi:10.xxxx/...",
    "check_keywords": "--metadata FILE.yaml (NWBFile: keywords)",
}


class DandiValidationError(NWBLDNSError):
    """The exported dandiset has DANDI errors (dandi validate or nwbinspector CRITICAL findings)."""

    def __init__(self, message: str, result: "ExportResult | None" = None) -> None:
        super().__init__(message)
        self.result = result  # the full validator output, for callers that print it


@dataclass
class ExportResult:
    """Where the files went, which dandiset they are for, and what the validators said."""

    dandiset_dir: Path
    dandiset_id: str = PLACEHOLDER_ID
    files: list[Path] = field(default_factory=list)
    dandi_returncode: int | None = None
    dandi_output: str = ""
    inspector_errors: list[str] = field(default_factory=list)
    inspector_warnings: list[str] = field(default_factory=list)
    inspector_suggestions: list[str] = field(default_factory=list)  # each with its fix or why there is none

    @property
    def ok(self) -> bool:
        return not self.inspector_errors and self.dandi_returncode in (None, 0)

    def summary(self) -> str:
        lines = [f"dandiset {self.dandiset_id}: {self.dandiset_dir}"]
        lines += [f"  {p.relative_to(self.dandiset_dir)}" for p in self.files]
        if self.dandi_returncode is not None:
            lines.append(f"dandi validate: exit {self.dandi_returncode}")
            lines += [f"  {line}" for line in self.dandi_output.strip().splitlines()]
            counts = (len(self.inspector_errors), len(self.inspector_warnings), len(self.inspector_suggestions))
            lines.append("nwbinspector (dandi): {} errors, {} warnings, {} suggestions".format(*counts))
            lines += [f"  ERROR {m}" for m in self.inspector_errors]
            lines += [f"  WARNING {m}" for m in self.inspector_warnings]
            lines += [f"  SUGGESTION {m}" for m in self.inspector_suggestions]
        if self.dandiset_id == PLACEHOLDER_ID:
            lines.append(f"note: {YAML_NAME} has the placeholder id {PLACEHOLDER_ID} (fine for dandi validate); to "
                         "upload, export again with --dandiset-id ID --for-upload --overwrite")
        elif self.ok:
            lines.append(f"upload: cd {self.dandiset_dir} && dandi upload  (DANDI_API_KEY set; add "
                         "-i dandi-staging for a dandiset on the staging server)")
        return "\n".join(lines)


def is_generated(path: Path) -> bool:
    """A file written by nwb-ldns sample or baseline: our source_script and the ldns_provenance metadata."""
    if not is_our_nwb(path):
        return False
    if path.is_dir():  # a Zarr store: each group is a folder
        return (path / "general" / "ldns_provenance").is_dir()
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            return "general/ldns_provenance" in handle
    except OSError:
        return False


def refuse_recordings(sources: list[Path]) -> None:
    """InputFileError for a source that nwb-ldns did not generate: the dandiset is labelled synthetic data."""
    for source in sources:
        if not is_generated(source):
            raise InputFileError(
                f"{source} was not generated by nwb-ldns sample or baseline (no ldns_provenance): it looks like a "
                "recording or a converted data set, and the dandiset is labelled as synthetic data; export "
                "generated files only, or pass --allow-real (allow_real=True) to export it anyway"
            )


def require_validators(purpose: str = "export's validation (dandi validate, nwbinspector)") -> None:
    """MissingExtraError (one line naming `pip install 'nwb-ldns[dandi]'`) unless dandi and nwbinspector import."""
    require("dandi", purpose)
    require("nwbinspector", purpose)


def run_dandi_validate(dandiset_dir: Path) -> tuple[int, str]:
    """Run the `dandi validate` command on a folder (offline; update checks off); return (exit code, output)."""
    require("dandi", "dandi validate")  # the subprocess would only print a traceback
    env = {**os.environ, "DANDI_NO_ET": "1"}
    command = [sys.executable, "-c", "from dandi.cli.command import main; main()", "validate", str(dandiset_dir)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    lines = (done.stdout + done.stderr).strip().splitlines()
    return done.returncode, "\n".join(line for line in lines if "Logs saved in" not in line)


def inspect_dandi(path: Path) -> tuple[list[str], list[str], list[str]]:
    """nwbinspector with the DANDI config: (errors = CRITICAL/ERROR, warnings = BEST_PRACTICE_VIOLATION,
    suggestions = BEST_PRACTICE_SUGGESTION, each followed by the option that fixes it or why none does)."""
    nwbinspector = require("nwbinspector", "export's nwbinspector check")
    import ndx_ldns  # noqa: F401  (registers the ndx-ldns checks)

    importance, config = nwbinspector.Importance, nwbinspector.load_config("dandi")
    threshold = importance.BEST_PRACTICE_SUGGESTION
    if path.is_dir():  # Zarr: inspect_nwbfile cannot open it; inspect the object (duration check breaks on Zarr)
        from hdmf_zarr.nwb import NWBZarrIO

        with NWBZarrIO(str(path), mode="r") as io:
            messages = list(nwbinspector.inspect_nwbfile_object(
                io.read(), config=config, importance_threshold=threshold, ignore=["check_units_table_duration"]))
    else:
        messages = list(nwbinspector.inspect_nwbfile(nwbfile_path=str(path), config=config,
                                                     importance_threshold=threshold))
    errors, warnings, suggestions = [], [], []
    for message in messages:
        text = f"{path.name}: {message.check_function_name} at {message.location}: {message.message}"
        if message.importance == importance.BEST_PRACTICE_SUGGESTION:
            reason = NOT_USER_FIXABLE.get((message.check_function_name, message.object_type))
            fix = FIXED_BY.get(message.check_function_name)
            suggestions.append(f"{text} ({reason or (f'fix: {fix}' if fix else 'no export option fixes it')})")
        elif message.importance == importance.BEST_PRACTICE_VIOLATION:
            warnings.append(text)
        else:
            errors.append(text)
    return errors, warnings, suggestions


def _plan_targets(facts: list[FileFacts], dandiset_dir: Path, desc: str | None) -> list[Path]:
    """The path `dandi organize` gives each file (all organized together); a different file already at that path
    (names depend on the set, as with dandi organize) is refused, since --overwrite would destroy it."""
    targets = [dandiset_dir / relative for relative in organized_paths(facts, desc)]
    for fact, target in zip(facts, targets):
        if not target.exists():
            continue
        try:
            there = read_facts(target)
        except InputFileError:
            continue  # not an NWB file: the output rule refuses it below
        if (there.subject_id, there.session_id) != (fact.subject_id, fact.session_id):
            raise OutputExistsError(
                f"{target} holds subject {there.subject_id} session {there.session_id}, not the session of "
                f"{fact.path}: DANDI names depend on the files organized together; export all files of the "
                "dandiset in one call (into a new folder), or pass --desc to give this set its own names")
    return targets


def dandi_targets(sources: list[str | Path], dandiset_dir: str | Path, desc: str | None = None) -> list[Path]:
    """Where export_dandiset puts each source (the names `dandi organize` gives them, organized together)."""
    return _plan_targets([read_facts(Path(s)) for s in sources], Path(dandiset_dir), desc)


def _copy(source: Path, target: Path, metadata: FileMetadata, overwrite: bool, inputs: list[Path]) -> None:
    """Copy one file with its new metadata: the edit happens on the partial copy, the input is only read."""
    with atomic_output(target, overwrite=overwrite, is_dir=source.is_dir(), kind="nwb", inputs=inputs,
                       option="--dandiset") as tmp:
        if source.is_dir():
            shutil.rmtree(tmp)
            shutil.copytree(source, tmp)
        else:
            shutil.copy2(source, tmp)
        apply_metadata(tmp, metadata)


def export_dandiset(
    paths: list[str | Path],
    dandiset_dir: str | Path,
    *,
    validate: bool = True,
    desc: str | None = None,
    overwrite: bool = False,
    allow_real: bool = False,
    dandiset_id: str | None = None,
    dandiset_yaml: str | Path | None = None,
    metadata: FileMetadata | None = None,
    for_upload: bool = False,
) -> ExportResult:
    """Copy NWB files into a DANDI-layout folder (with `metadata` written into the copies), write dandiset.yaml,
    and validate.

    dandiset_id ("000123") or dandiset_yaml (a `dandi download` dandiset.yaml) names the dandiset; without
    either, the folder's dandiset.yaml, else the placeholder 000000. for_upload refuses the placeholder and
    requires validation: the folder is then ready for `dandi upload`. desc adds `_desc-<desc>` to every name.
    Only files generated by nwb-ldns (sample, baseline) are exported unless `allow_real`: a recording copied
    into a folder of synthetic data would be mistaken for generated data.

    Raises DandiValidationError (after copying) when dandi validate or nwbinspector's DANDI profile finds errors.
    """
    dandiset_dir = Path(dandiset_dir)
    sources = [Path(p) for p in paths]
    metadata = metadata or FileMetadata()
    for source in sources:
        if not source.exists():
            raise InputFileError(f"{source} does not exist; pass the NWB files written by nwb-ldns sample")
    if for_upload and not validate:
        raise OptionError("--for-upload validates the folder before it is uploaded; drop --no-validate")
    if validate:
        require_validators()  # before anything is copied
    identifier = resolve_dandiset_id(dandiset_dir, dandiset_id, dandiset_yaml)
    if for_upload and identifier is None:
        raise OptionError(f"--for-upload needs the dandiset's id, but {dandiset_dir / YAML_NAME} would have the "
                          f"placeholder {PLACEHOLDER_ID}; pass --dandiset-id with the 6-digit id of the dandiset "
                          "you created on dandiarchive.org (e.g. 000123)")
    facts = [read_facts(source) for source in sources]  # an unreadable file is named before anything else
    if not allow_real:
        refuse_recordings(sources)
    targets = _plan_targets(facts, dandiset_dir, desc)
    refuse_input_as_output(dandiset_dir / YAML_NAME, sources, option="--dandiset")
    for target in targets:  # the output rule for every file before copying any
        check_output(target, kind="nwb", overwrite=overwrite, inputs=sources, option="--dandiset")
    dandiset_dir.mkdir(parents=True, exist_ok=True)
    write_dandiset_yaml(dandiset_dir, identifier)
    result = ExportResult(dandiset_dir=dandiset_dir, dandiset_id=identifier or PLACEHOLDER_ID)
    for source, target in zip(sources, targets):
        _copy(source, target, metadata, overwrite, sources)
        result.files.append(target)
    if validate:
        result.dandi_returncode, result.dandi_output = run_dandi_validate(dandiset_dir)
        for target in result.files:
            errors, warnings, suggestions = inspect_dandi(target)
            result.inspector_errors += errors
            result.inspector_warnings += warnings
            result.inspector_suggestions += suggestions
        if not result.ok:
            raise DandiValidationError(
                f"DANDI validation failed for {dandiset_dir} (dandi validate exit {result.dandi_returncode}, "
                f"{len(result.inspector_errors)} nwbinspector errors): {_first_error(result)}; fix the file metadata "
                "(Subject, session; --metadata FILE.yaml sets Subject fields) and export again",
                result,
            )
    if for_upload:
        refuse_placeholder(dandiset_dir)
    return result


def _first_error(result: ExportResult) -> str:
    if result.inspector_errors:
        return result.inspector_errors[0]
    lines = [line for line in result.dandi_output.splitlines() if "error" in line.lower()]
    return (lines or result.dandi_output.splitlines() or ["no output"])[0]
