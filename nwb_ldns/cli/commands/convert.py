"""`nwb-ldns convert`: turn foreign data (the Lorenz benchmark, the Willett 2023 release) into NWB files."""

from __future__ import annotations

from pathlib import Path

import click


@click.group(name="convert")
def convert() -> None:
    """Make NWB sessions from the LDNS benchmark data sets.

    \b
      nwb-ldns convert lorenz lorenz.nwb
      nwb-ldns convert willett competitionData/ nwb/
    """


@convert.command(name="lorenz", short_help="Simulate the LDNS Lorenz benchmark into one NWB file.")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--trials", default=5000, show_default=True, type=click.IntRange(min=1),
              help="Number of Lorenz trajectories (trials); at least 10, split 70/10/20 into train/val/test.")
@click.option("--neurons", default=128, show_default=True, type=click.IntRange(min=1),
              help="Number of simulated Poisson neurons (Units).")
@click.option("--bins", default=256, show_default=True, type=click.IntRange(min=2),
              help="Time bins per trial, kept after 100 burn-in steps.")
@click.option("--seed", default=42, show_default=True, type=click.IntRange(min=0, max=2**32 - 1),
              help="Seed for the initial conditions, readout, Poisson spikes and split (the reference uses 42).")
@click.option("--bin-width", default=0.01, show_default=True, type=float,
              help="Nominal bin width in seconds used for the NWB timeline (the benchmark's steps have no unit).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists (otherwise an existing OUT is an error).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def lorenz(out: Path, trials: int, neurons: int, bins: int, seed: int, bin_width: float, overwrite: bool,
           progress: bool) -> None:
    """Simulate the LDNS Lorenz benchmark and write it to OUT (an .nwb file).

    Spikes go to a Units table, trials (with a train/val/test `split` column) to the trials table, and the
    ground-truth latents, rates and readout to processing/misc.
    """
    from nwb_ldns.convert import convert_lorenz

    path = convert_lorenz(out, n_trials=trials, n_neurons=neurons, n_bins=bins, seed=seed, bin_width=bin_width,
                          overwrite=overwrite, progress=progress)
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


@convert.command(name="willett", short_help="Convert Willett 2023 competitionData, one NWB file per session.")
@click.argument("competition_data_dir", type=click.Path(path_type=Path))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace output files that already exist in OUT_DIR.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Convert J sessions at once, each in its own process. Each session is then converted on its own: "
              "a session with a damaged file is reported in the summary table and the others are still written "
              "(exit code 0: all ok; 2: every failure was an input error; 1: an unexpected error). Without --jobs a "
              "damaged file stops the conversion before anything is written.")
@click.option("--quiet", is_flag=True, help="With --jobs: hide the per-session progress lines.")
def willett(competition_data_dir: Path, out_dir: Path, overwrite: bool, jobs: int | None, quiet: bool) -> None:
    """Convert the Willett 2023 speech-BCI competitionData release: one NWB file per session.

    COMPETITION_DATA_DIR holds train/, test/ and optionally competitionHoldOut/ with t12.YYYY.MM.DD.mat files
    (the Dryad release, doi:10.5061/dryad.x69p8czpq). Each session's tx1 threshold-crossing counts (256
    channels, 20 ms bins) go to processing/ecephys, one trial per sentence with split train/test/holdout.
    """
    from nwb_ldns.convert import convert_willett

    if jobs is not None:
        from nwb_ldns.batch import exit_code, summary_table
        from nwb_ldns.convert.willett import convert_willett_sessions
        from nwb_ldns.cli.many import echo_outcomes

        outcomes = convert_willett_sessions(competition_data_dir, out_dir, overwrite=overwrite, jobs=jobs,
                                            progress=not quiet)
        echo_outcomes(outcomes, quiet, summary_table(outcomes, output_header="NWB file"))
        if exit_code(outcomes):
            click.get_current_context().exit(exit_code(outcomes))
        return
    paths = convert_willett(competition_data_dir, out_dir, overwrite=overwrite)
    for path in paths:
        click.echo(f"wrote {path}")
