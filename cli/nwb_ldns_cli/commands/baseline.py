"""`nwb-ldns baseline psth|lds SESSION.nwb --out B.nwb`: fit a baseline on the training trials, write samples."""

from __future__ import annotations

from pathlib import Path

import click

from nwb_ldns_cli.session_options import load_session_from_options, session_options


@click.group("baseline")
def baseline() -> None:
    """Baselines fitted on the training trials and written as NWB like LDNS samples (evaluate them the same way)."""


def _common(command):
    command = click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")(command)
    command = click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")(command)
    command = click.option("--out", "out", type=click.Path(path_type=Path), required=True,
                           help="Output NWB file of generated trials.")(command)
    command = click.option("--n", "n_trials", type=click.IntRange(min=1), default=None,
                           help="Number of trials to generate (default: as many as training trials).")(command)
    command = click.argument("session", type=click.Path(exists=True, path_type=Path))(command)
    return session_options(command)


def _run(name: str, session: Path, n_trials: int | None, out: Path, seed: int, overwrite: bool,
         fit_options: dict, session_opts: dict) -> None:
    from nwb_ldns.baselines import fit_baseline
    from nwb_ldns.export import write_synthetic
    from nwb_ldns.fileio import check_output

    check_output(out, kind="nwb", overwrite=overwrite, inputs=[session])
    ds = load_session_from_options(session, **session_opts)
    model = fit_baseline(name, ds, **fit_options)
    n = n_trials or int(model.train.sizes["trial"])
    generated = model.sample(n, seed=seed)
    write_synthetic(generated, out, overwrite=overwrite, inputs=[session])
    click.echo(f"wrote {out}: {n} trials from {generated.attrs['model_name']} fitted on "
               f"{model.train.sizes['trial']} training trials (seed {seed})")


@baseline.command("psth")
@_common
@click.option("--condition", default="auto", show_default=True,
              help="Trial column whose values get separate PSTHs ('auto': condition if present; 'none': one PSTH).")
def psth(session: Path, n_trials: int | None, out: Path, seed: int, overwrite: bool, condition: str,
         **session_opts) -> None:
    """Inhomogeneous Poisson spikes from per-condition PSTHs (no shared variability)."""
    _run("psth", session, n_trials, out, seed, overwrite,
         {"condition": None if condition.lower() == "none" else condition}, session_opts)


@baseline.command("lds")
@_common
@click.option("--latents", "n_latents", type=click.IntRange(min=1), default=None,
              help="Latent dimensions of the linear dynamical system [default: min(8, number of units)].")
@click.option("--smooth", "smooth_s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Std (seconds) of the Gaussian smoothing applied before fitting [default: one bin width].")
def lds(session: Path, n_trials: int | None, out: Path, seed: int, overwrite: bool, n_latents: int | None,
        smooth_s: float | None, **session_opts) -> None:
    """Linear-Gaussian latent dynamics (PCA axes of smoothed sqrt counts, least-squares AR(1)) with Poisson spikes."""
    _run("lds", session, n_trials, out, seed, overwrite, {"n_latents": n_latents, "smooth_s": smooth_s},
         session_opts)
