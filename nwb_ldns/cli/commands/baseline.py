"""`nwb-ldns baseline psth|lds|lfads|pivae|tndm SESSION.nwb --out B.nwb`: fit a baseline on the training trials,
write samples."""

from __future__ import annotations

from pathlib import Path

import click

from nwb_ldns.cli.session_options import load_session_from_options, session_options


@click.group("baseline")
def baseline() -> None:
    """Baselines fitted on the training trials and written as NWB like LDNS samples (evaluate them the same way)."""


SPIKE_PLACEMENT_HELP = ("How the spikes of a bin get their times in --out: even (k spikes evenly inside the bin) or "
                        "uniform (at random inside the bin, from --seed); both re-bin to the generated counts, and "
                        "the Units description names the placement.")


def _common(command):
    # --spike-placement arrives among the session options (**session_opts); _run/_run_neural take it out
    command = click.option("--spike-placement", type=click.Choice(["even", "uniform"]), default="even",
                           show_default=True, help=SPIKE_PLACEMENT_HELP)(command)
    command = click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")(command)
    command = click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")(command)
    command = click.option("--out", "out", type=click.Path(path_type=Path), required=True,
                           help="Output NWB file of generated trials.")(command)
    command = click.option("--n", "n_trials", type=click.IntRange(min=1), default=None,
                           help="Number of trials to generate (default: as many as training trials).")(command)
    # a path or URL (http(s), s3://, dandi://): load_session names a missing file
    command = click.argument("session", metavar="SESSION", type=str)(command)
    return session_options(command)


def _run(name: str, session: str, n_trials: int | None, out: Path, seed: int, overwrite: bool,
         fit_options: dict, session_opts: dict) -> None:
    from nwb_ldns.baselines import fit_baseline
    from nwb_ldns.export import write_synthetic
    from nwb_ldns.fileio import check_output

    check_output(out, kind="nwb", overwrite=overwrite, inputs=[session])
    placement = session_opts.pop("spike_placement", "even")
    ds = load_session_from_options(session, **session_opts)
    model = fit_baseline(name, ds, **fit_options)
    n = n_trials or int(model.train.sizes["trial"])
    generated = model.sample(n, seed=seed)
    write_synthetic(generated, out, overwrite=overwrite, inputs=[session], spike_placement=placement)
    click.echo(f"wrote {out}: {n} trials from {generated.attrs['model_name']} fitted on "
               f"{model.train.sizes['trial']} training trials (seed {seed})")


@baseline.command("psth")
@_common
@click.option("--condition", default="auto", show_default=True,
              help="Trial column whose values get separate PSTHs ('auto': condition if present; 'none': one PSTH).")
def psth(session: str, n_trials: int | None, out: Path, seed: int, overwrite: bool, condition: str,
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
def lds(session: str, n_trials: int | None, out: Path, seed: int, overwrite: bool, n_latents: int | None,
        smooth_s: float | None, **session_opts) -> None:
    """Linear-Gaussian latent dynamics (PCA axes of smoothed sqrt counts, least-squares AR(1)) with Poisson spikes."""
    _run("lds", session, n_trials, out, seed, overwrite, {"n_latents": n_latents, "smooth_s": smooth_s},
         session_opts)


def _neural(command):
    """Options of the neural baselines (trained like `fit`: presets, --set, resumable model directory)."""
    command = click.option("--quiet", is_flag=True, help="No progress bars.")(command)
    command = click.option("--resume", is_flag=True,
                           help="Continue the interrupted training in --model-dir (or reuse a finished model there "
                           "and only sample).")(command)
    command = click.option("--model-dir", type=click.Path(path_type=Path), default=None,
                           help="Model directory to train into (JSON + safetensors; default: beside --out, "
                           "OUT_STEM.<baseline>-model).")(command)
    command = click.option("--epochs", type=click.IntRange(min=1), default=None,
                           help="Shortcut for --set epochs=N.")(command)
    command = click.option("--set", "set_items", multiple=True, metavar="KEY=VALUE",
                           help="Override one config value, e.g. --set gen_dim=64 --set kl_beta=1 (repeatable; "
                           "an unknown key lists the valid ones).")(command)
    return command


def _run_neural(name: str, session: str, n_trials: int | None, out: Path, seed: int, overwrite: bool,
                preset: str | None, set_items: tuple[str, ...], epochs: int | None, model_dir: Path | None,
                resume: bool, quiet: bool, session_opts: dict, sample_options: dict,
                fit_options: dict | None = None) -> None:
    """Fit (or resume / reuse) the baseline's model directory, then sample --n trials into --out."""
    from nwb_ldns.baselines import neural_baseline
    from nwb_ldns.config import parse_set_options
    from nwb_ldns.export import write_synthetic
    from nwb_ldns.fileio import check_output, refuse_overlapping_outputs

    overrides: dict[str, object] = dict(parse_set_options(set_items))
    if epochs is not None:
        overrides["epochs"] = epochs
    model_dir = model_dir or out.with_name(f"{out.name.split('.')[0]}.{name}-model")
    check_output(out, kind="nwb", overwrite=overwrite, inputs=[session, model_dir])
    refuse_overlapping_outputs(("--out", out), ("--model-dir", model_dir))
    placement = session_opts.pop("spike_placement", "even")
    ds = load_session_from_options(session, **session_opts)
    model = neural_baseline(name).fit(ds, model_dir, preset=preset, overrides=overrides or None, resume=resume,
                                       overwrite=overwrite, progress=not quiet, inputs=[session],
                                       **(fit_options or {}))
    n = n_trials or model.n_train
    generated = model.sample(n, seed=seed, **sample_options)
    write_synthetic(generated, out, overwrite=overwrite, inputs=[session, model_dir], spike_placement=placement)
    click.echo(f"model directory: {model_dir}")
    click.echo(f"wrote {out}: {n} trials from {generated.attrs['model_name']} fitted on {model.n_train} training "
               f"trials (seed {seed})")
    click.echo(f"next: nwb-ldns evaluate {session} {out}")


@baseline.command("lfads")
@_common
@_neural
@click.option("--preset", type=click.Choice(["lfads", "tiny"]), default=None,
              help="lfads: the reference's AutoLFADS sizes (ic_enc 64, ic 64, gen 100, factors 40, CD 0.3, dropout "
              "0.3, lr 4e-3, batch 256, grad clip 200, 1000 epochs); tiny: tests. Default: lfads (on --resume: the "
              "run's own).")
@click.option("--bins", "n_bins", type=click.IntRange(min=1), default=None,
              help="Generate trials of this many bins (the generator runs any length, e.g. 16x training); default: "
              "each sample copies the length of a random training trial.")
def lfads(session: str, n_trials: int | None, out: Path, seed: int, overwrite: bool, preset: str | None,
          set_items: tuple[str, ...], epochs: int | None, model_dir: Path | None, resume: bool, quiet: bool,
          n_bins: int | None, **session_opts) -> None:
    """LFADS: bidirectional GRU encoder -> initial condition (learned Gaussian prior) -> generator GRU -> factors ->
    Poisson rates; samples draw initial conditions from the prior (no controller, as the LDNS paper's AutoLFADS)."""
    _run_neural("lfads", session, n_trials, out, seed, overwrite, preset, set_items, epochs, model_dir, resume,
                quiet, session_opts, {"n_bins": n_bins})


@baseline.command("pivae")
@_common
@_neural
@click.option("--preset", type=click.Choice(["pivae", "tiny"]), default=None,
              help="pivae: the reference's settings (z 4, encoder 3 x 60 tanh, 2 GIN blocks, lr 1e-3, 500 epochs); "
              "tiny: tests. Default: pivae (on --resume: the run's own).")
@click.option("--condition", default=None,
              help="Trial column of angles (radians) for the label prior, e.g. reach_angle ('auto', the default: "
              "reach_angle if present; 'none': no label).")
@click.option("--angle", default="training", show_default=True,
              help="Angles of the samples: training (those of random training trials), uniform (linspace 0..2 pi, "
              "as the reference) or one angle in radians.")
def pivae(session: str, n_trials: int | None, out: Path, seed: int, overwrite: bool, preset: str | None,
          set_items: tuple[str, ...], epochs: int | None, model_dir: Path | None, resume: bool, quiet: bool,
          condition: str | None, angle: str, **session_opts) -> None:
    """pi-VAE: label prior p(z|angle), GIN decoder, Poisson; every time bin an i.i.d. sample (as the reference):
    samples keep angle tuning and within-bin correlations, but have no time course."""
    _run_neural("pivae", session, n_trials, out, seed, overwrite, preset, set_items, epochs, model_dir, resume,
                quiet, session_opts, {"angle": angle}, {"condition": condition})


@baseline.command("tndm")
@_common
@_neural
@click.option("--preset", type=click.Choice(["tndm", "tiny"]), default=None,
              help="tndm: the reference's settings (encoded_dim 64, 5 relevant + 5 irrelevant factors, dropout 0.15, "
              "behaviour weight 0.2, lr 1e-2, batch 128, 1000 epochs); tiny: tests. Default: tndm (on --resume: the "
              "run's own).")
@click.option("--bins", "n_bins", type=click.IntRange(min=1), default=None,
              help="Generate trials of this many bins; default: each sample copies the length of a random training "
              "trial.")
def tndm(session: str, n_trials: int | None, out: Path, seed: int, overwrite: bool, preset: str | None,
         set_items: tuple[str, ...], epochs: int | None, model_dir: Path | None, resume: bool, quiet: bool,
         n_bins: int | None, **session_opts) -> None:
    """TNDM: LFADS-like, with behaviourally relevant and irrelevant factors (each its own initial condition and
    generator) and a linear behaviour decoder from the relevant ones; needs behaviour (--behavior or --recipe
    mc_maze). Samples draw both initial conditions from their priors and carry the decoded behaviour."""
    _run_neural("tndm", session, n_trials, out, seed, overwrite, preset, set_items, epochs, model_dir, resume,
                quiet, session_opts, {"n_bins": n_bins})
