"""`nwb-ldns export SYNTH.nwb [...] --dandiset DIR`: DANDI layout + offline validation of generated files."""

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
    help="Dandiset folder to lay the files out in (created, with a dandiset.yaml, if missing).",
)
@click.option("--desc", default="ldns", show_default=True, help="DANDI 'desc' label put in every file name.")
@click.option("--no-validate", is_flag=True, help="Only copy and rename; skip dandi validate and nwbinspector.")
@click.option("--overwrite", is_flag=True, help="Replace files already in the dandiset.")
@click.option("--allow-real", is_flag=True,
              help="Also export files that nwb-ldns did not generate (recordings, converted data sets). Without it "
              "only the output of `nwb-ldns sample` and `nwb-ldns baseline` is accepted, since the dandiset is "
              "labelled as synthetic data.")
def export(files: tuple[Path, ...], dandiset_dir: Path, desc: str, no_validate: bool, overwrite: bool,
           allow_real: bool) -> None:
    """Copy generated NWB FILES into a DANDI-layout folder and validate it offline.

    Runs `dandi validate` on the folder and nwbinspector's DANDI profile on each file; exits non-zero on errors.
    FILES must be written by `nwb-ldns sample` or `nwb-ldns baseline` unless --allow-real is given.
    """
    from nwb_ldns.export.dandiset import DandiValidationError, ExportResult, export_dandiset

    try:
        result: ExportResult = export_dandiset(
            list(files), dandiset_dir, validate=not no_validate, desc=desc, overwrite=overwrite,
            allow_real=allow_real,
        )
    except DandiValidationError as error:
        if error.result is not None:
            click.echo(error.result.summary(), err=True)
        raise
    click.echo(result.summary())
