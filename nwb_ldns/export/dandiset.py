"""Lay generated NWB files out as a DANDI dataset and validate it offline.

Files are copied to `sub-<subject>/sub-<subject>_ses-<session>_desc-<label>_ecephys.nwb` (the name `dandi validate`
accepts), a minimal `dandiset.yaml` is written if missing, then the real `dandi validate` runs on the folder and
nwbinspector's DANDI profile on each file (in this process, so the ndx-ldns checks run too).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from nwb_ldns.errors import InputFileError, NWBLDNSError
from nwb_ldns.fileio import atomic_output, check_output, is_our_nwb, refuse_input_as_output

# dandi.organize.ORGANIZED_FILENAME_REGEX, restated so naming does not need the slow dandi import
LABEL = r"[^_*\\/<>:|\"'?%@;.]+"
FILENAME_REGEX = rf"sub-{LABEL}(_ses-{LABEL})?(_(tis|slice|cell|desc|probe|obj)-{LABEL})*(_[a-z]+(\+[a-z]+)*)?\.nwb"
DANDISET_YAML = (
    'identifier: "000000"\n'
    'name: "LDNS-generated spiking data"\n'
    'description: "Synthetic spike trains sampled from latent diffusion models (nwb-ldns); not recorded data."\n'
)


class DandiValidationError(NWBLDNSError):
    """The exported dandiset has DANDI errors (dandi validate or nwbinspector CRITICAL findings)."""

    def __init__(self, message: str, result: "ExportResult | None" = None) -> None:
        super().__init__(message)
        self.result = result  # the full validator output, for callers that print it


@dataclass
class ExportResult:
    """Where the files went and what the validators said."""

    dandiset_dir: Path
    files: list[Path] = field(default_factory=list)
    dandi_returncode: int | None = None
    dandi_output: str = ""
    inspector_errors: list[str] = field(default_factory=list)
    inspector_warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.inspector_errors and self.dandi_returncode in (None, 0)

    def summary(self) -> str:
        lines = [f"dandiset: {self.dandiset_dir}"] + [f"  {p.relative_to(self.dandiset_dir)}" for p in self.files]
        if self.dandi_returncode is not None:
            lines.append(f"dandi validate: exit {self.dandi_returncode}")
            lines += [f"  {line}" for line in self.dandi_output.strip().splitlines()]
            n_errors, n_warnings = len(self.inspector_errors), len(self.inspector_warnings)
            lines.append(f"nwbinspector (dandi): {n_errors} errors, {n_warnings} warnings")
            lines += [f"  ERROR {m}" for m in self.inspector_errors]
            lines += [f"  WARNING {m}" for m in self.inspector_warnings]
        return "\n".join(lines)


def sanitize_label(value: str) -> str:
    """A DANDI entity label: the characters dandi organize replaces become '-'."""
    label = re.sub(r"[_*\\/<>:|\"'?%@;,.\s]+", "-", str(value)).strip("-")
    return label or "unknown"


def _session_fields(path: Path) -> tuple[str, str]:
    """(subject_id, session_id) of an NWB file; session_id falls back to the start date as DANDI does."""
    from pynwb import NWBHDF5IO

    from nwb_ldns.data.opening import refuse_unsafe_codecs

    if path.is_dir():
        refuse_unsafe_codecs(path)  # before hdmf-zarr decodes anything: a pickle codec could run code
    try:
        if path.is_dir():
            from hdmf_zarr.nwb import NWBZarrIO

            io = NWBZarrIO(str(path), mode="r")
        else:
            io = NWBHDF5IO(str(path), "r", load_namespaces=True)
        with io:
            nwb = io.read()
            subject_id = nwb.subject.subject_id if nwb.subject is not None else None
            session = nwb.session_id or nwb.session_start_time.strftime("%Y%m%d")
    except MemoryError:  # not a damaged file: keep it (and its traceback)
        raise
    except Exception as error:  # noqa: BLE001 - any reader failure means the input is not a usable NWB file
        raise InputFileError(f"cannot read {path} as NWB ({error}); pass a file written by write_synthetic") from None
    if not subject_id:
        raise InputFileError(
            f"{path} has no Subject with a subject_id; DANDI needs one (write the file with write_synthetic)"
        )
    return subject_id, session


def dandi_filename(subject_id: str, session_id: str, desc: str, suffix: str = ".nwb") -> str:
    """sub-<subject>/sub-<subject>_ses-<session>_desc-<desc>_ecephys<suffix> (a relative path)."""
    sub = f"sub-{sanitize_label(subject_id)}"
    name = f"{sub}_ses-{sanitize_label(session_id)}_desc-{sanitize_label(desc)}_ecephys.nwb"
    if not re.fullmatch(FILENAME_REGEX, name):  # cannot happen after sanitising; guards the regex above
        raise InputFileError(f"cannot build a DANDI file name from subject {subject_id!r}, session {session_id!r}")
    return f"{sub}/{name}{suffix[len('.nwb'):]}"


def _plan_targets(sources: list[Path], dandiset_dir: Path, desc: str) -> list[Path]:
    """The DANDI path of every source (two inputs with the same subject and session get a numbered desc)."""
    taken: set[str] = set()
    targets = []
    for source in sources:
        subject_id, session_id = _session_fields(source)
        suffix = ".nwb.zarr" if source.is_dir() else ".nwb"
        relative, n = dandi_filename(subject_id, session_id, desc, suffix), 1
        while relative in taken:
            n += 1
            relative = dandi_filename(subject_id, session_id, f"{desc}{n}", suffix)
        taken.add(relative)
        targets.append(dandiset_dir / relative)
    return targets


def _copy(source: Path, target: Path, overwrite: bool, inputs: list[Path]) -> None:
    with atomic_output(target, overwrite=overwrite, is_dir=source.is_dir(), kind="nwb", inputs=inputs,
                       option="--dandiset") as tmp:
        if source.is_dir():
            shutil.rmtree(tmp)
            shutil.copytree(source, tmp)
        else:
            shutil.copy2(source, tmp)


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


def run_dandi_validate(dandiset_dir: Path) -> tuple[int, str]:
    """Run the `dandi validate` command on a folder (offline; update checks off); return (exit code, output)."""
    env = {**os.environ, "DANDI_NO_ET": "1"}
    command = [sys.executable, "-c", "from dandi.cli.command import main; main()", "validate", str(dandiset_dir)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    lines = (done.stdout + done.stderr).strip().splitlines()
    return done.returncode, "\n".join(line for line in lines if "Logs saved in" not in line)


def inspect_dandi(path: Path) -> tuple[list[str], list[str]]:
    """nwbinspector with the DANDI config: (errors = CRITICAL/ERROR, warnings = BEST_PRACTICE_VIOLATION)."""
    import ndx_ldns  # noqa: F401  (registers the ndx-ldns checks)
    from nwbinspector import Importance, inspect_nwbfile, inspect_nwbfile_object, load_config

    config = load_config("dandi")
    threshold = Importance.BEST_PRACTICE_VIOLATION
    if path.is_dir():  # Zarr: inspect_nwbfile cannot open it; inspect the object (duration check breaks on Zarr)
        from hdmf_zarr.nwb import NWBZarrIO

        with NWBZarrIO(str(path), mode="r") as io:
            messages = list(
                inspect_nwbfile_object(
                    io.read(), config=config, importance_threshold=threshold, ignore=["check_units_table_duration"]
                )
            )
    else:
        messages = list(inspect_nwbfile(nwbfile_path=str(path), config=config, importance_threshold=threshold))
    errors, warnings = [], []
    for message in messages:
        text = f"{path.name}: {message.check_function_name} at {message.location}: {message.message}"
        (warnings if message.importance == Importance.BEST_PRACTICE_VIOLATION else errors).append(text)
    return errors, warnings


def export_dandiset(
    paths: list[str | Path],
    dandiset_dir: str | Path,
    *,
    validate: bool = True,
    desc: str = "ldns",
    overwrite: bool = False,
    allow_real: bool = False,
) -> ExportResult:
    """Copy NWB files into a DANDI-layout folder, write dandiset.yaml if missing, and validate.

    Only files generated by nwb-ldns (sample, baseline) are exported unless `allow_real`: a recording copied
    into a folder of synthetic data under a synthetic name would be mistaken for generated data.

    Raises DandiValidationError (after copying) when dandi validate or nwbinspector's DANDI profile finds errors.
    """
    dandiset_dir = Path(dandiset_dir)
    sources = [Path(p) for p in paths]
    for source in sources:
        if not source.exists():
            raise InputFileError(f"{source} does not exist; pass the NWB files written by write_synthetic")
    targets = _plan_targets(sources, dandiset_dir, desc)
    if not allow_real:
        refuse_recordings(sources)
    refuse_input_as_output(dandiset_dir / "dandiset.yaml", sources, option="--dandiset")
    for target in targets:  # the output rule for every file before copying any
        check_output(target, kind="nwb", overwrite=overwrite, inputs=sources, option="--dandiset")
    dandiset_dir.mkdir(parents=True, exist_ok=True)
    if not (dandiset_dir / "dandiset.yaml").exists():
        (dandiset_dir / "dandiset.yaml").write_text(DANDISET_YAML)
    result = ExportResult(dandiset_dir=dandiset_dir)
    for source, target in zip(sources, targets):
        _copy(source, target, overwrite, sources)
        result.files.append(target)
    if validate:
        result.dandi_returncode, result.dandi_output = run_dandi_validate(dandiset_dir)
        for target in result.files:
            errors, warnings = inspect_dandi(target)
            result.inspector_errors += errors
            result.inspector_warnings += warnings
        if not result.ok:
            raise DandiValidationError(
                f"DANDI validation failed for {dandiset_dir} (dandi validate exit {result.dandi_returncode}, "
                f"{len(result.inspector_errors)} nwbinspector errors): {_first_error(result)}; fix the file metadata "
                "(Subject, session) and export again",
                result,
            )
    return result


def _first_error(result: ExportResult) -> str:
    if result.inspector_errors:
        return result.inspector_errors[0]
    lines = [line for line in result.dandi_output.splitlines() if "error" in line.lower()]
    return (lines or result.dandi_output.splitlines() or ["no output"])[0]
