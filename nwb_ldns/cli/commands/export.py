"""`nwb-ldns export SYNTH.nwb [...] --dandiset DIR [--dandiset-id ID] [--for-upload]`: a DANDI-ready folder."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("export")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--dandiset",
    "dandiset_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Dandiset folder to lay the files out in (created, with a dandiset.yaml, if missing). A folder made by "
    "`dandi download` keeps its dandiset.yaml.",
)
@click.option("--dandiset-id", default=None, metavar="ID",
              help="The 6-digit id of your dandiset on dandiarchive.org (e.g. 000123 or DANDI:000123), written to "
              "dandiset.yaml. Default: the id in the folder's dandiset.yaml, else the placeholder 000000 (offline "
              "validation only).")
@click.option("--dandiset-yaml", default=None, type=click.Path(exists=True, path_type=Path),
              help="Read the dandiset id from this dandiset.yaml (or folder) written by `dandi download`.")
@click.option("--for-upload", is_flag=True,
              help="Prepare the folder for `dandi upload`: refuse the placeholder id 000000 and require validation.")
@click.option("--experimenter", multiple=True, metavar="'LAST, FIRST'",
              help="Person who made the data (repeatable), in DANDI's 'Last, First' form.")
@click.option("--institution", default=None, help="Institution of the experimenters.")
@click.option("--related-publication", "related_publications", multiple=True, metavar="DOI",
              help="A DOI (doi:10.xxxx/... or https://doi.org/...) to list (repeatable). Default: the LDNS paper "
              "(doi:10.48550/arXiv.2407.08751) added to the file's own.")
@click.option("--metadata", "metadata_file", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A neuroconv-style YAML with NWBFile: (experimenter, institution, lab, related_publications, "
              "keywords, ...) and Subject: (species, sex, age, ...) sections; the options above take precedence.")
@click.option("--desc", default=None,
              help="Add _desc-LABEL to every file name (dandi organize does not; it tells files of one session "
              "apart by an _obj- checksum).")
@click.option("--no-validate", is_flag=True, help="Only copy and rename; skip dandi validate and nwbinspector.")
@click.option("--overwrite", is_flag=True, help="Replace files already in the dandiset.")
@click.option("--allow-real", is_flag=True,
              help="Also export files that nwb-ldns did not generate (recordings, converted data sets). Without it "
              "only the output of `nwb-ldns sample` and `nwb-ldns baseline` is accepted, since the dandiset is "
              "labelled as synthetic data.")
def export(files: tuple[Path, ...], dandiset_dir: Path, dandiset_id: str | None, dandiset_yaml: Path | None,
           for_upload: bool, experimenter: tuple[str, ...], institution: str | None,
           related_publications: tuple[str, ...], metadata_file: Path | None, desc: str | None, no_validate: bool,
           overwrite: bool, allow_real: bool) -> None:
    """Copy generated NWB FILES into a DANDI-layout folder, with their metadata, and validate it offline.

    Files get the names `dandi organize` would give them, organized together (sub-<subject>/sub-<subject>
    [_ses-<session>].nwb). The copies get the experimenter, institution and publications given here (the input
    files are not changed). Runs `dandi validate` on the folder and nwbinspector's DANDI profile on each file
    (the [dandi] extra); exits non-zero on errors. FILES must be written by `nwb-ldns sample` or `nwb-ldns
    baseline` unless --allow-real is given. Then: cd DIR && dandi upload (see the README).
    """
    from nwb_ldns.export.dandiset import DandiValidationError, ExportResult, export_dandiset
    from nwb_ldns.export.file_metadata import build_metadata

    metadata = build_metadata(experimenter=experimenter, institution=institution,
                              related_publications=related_publications, metadata_file=metadata_file)
    try:
        result: ExportResult = export_dandiset(
            list(files), dandiset_dir, validate=not no_validate, desc=desc, overwrite=overwrite,
            allow_real=allow_real, dandiset_id=dandiset_id, dandiset_yaml=dandiset_yaml, metadata=metadata,
            for_upload=for_upload,
        )
    except DandiValidationError as error:
        if error.result is not None:
            click.echo(error.result.summary(), err=True)
        raise
    click.echo(result.summary())
