"""`nwb-ldns compare SESSION.nwb --models ldns,psth,lds --out DIR`: the LDNS paper's model table for one session."""

from __future__ import annotations

from pathlib import Path

import click

from nwb_ldns import verbosity
from nwb_ldns.cli.session_options import load_session_from_options, session_kwargs, session_options


@click.command("compare")
@click.argument("session", type=click.Path(exists=True, path_type=Path))
@click.option("--models", "models_text", default="ldns,psth,lds", show_default=True, metavar="NAME,NAME,...",
              help="Models to fit and compare, comma-separated: ldns, psth, lds, and lfads, pivae, tndm where "
              "installed (an unknown name is refused with the list).")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="Output directory: models/, samples/<model>.nwb, compare.json and report/.")
@click.option("--budget", type=click.Choice(["tiny", "default"]), default="default", show_default=True,
              help="Training budget of every trained model: 'tiny' (each model's tiny preset: a smoke test in "
              "seconds), 'default' (LDNS: the auto preset sized from the session; baselines: their own default).")
@click.option("--preset", default=None, help="LDNS preset instead of the budget's (auto, lorenz, monkey, human, tiny).")
@click.option("--set", "set_items", multiple=True, metavar="MODEL.KEY=VALUE",
              help="A setting of one model (repeatable), e.g. --set ldns.autoencoder.epochs=100, "
              "--set lfads.epochs=200, --set lds.n_latents=8, --set psth.condition=none.")
@click.option("--n", "n", type=click.IntRange(min=1), default=None,
              help="Trials to sample from each model [default: as many as the real --reference-split trials, as "
              "the paper does].")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed of every model.")
@click.option("--sampler", type=click.Choice(["ddpm", "ddim"]), default="ddpm", show_default=True,
              help="LDNS sampler.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="LDNS sampling steps [default: all of the model's diffusion steps].")
@click.option("--reference-split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True,
              help="Real trials every set is compared with: held-out test trials (no model saw them), or the "
              "training trials as the LDNS notebook does.")
@click.option("--bootstrap", "n_resamples", type=click.IntRange(min=1), default=5, show_default=True,
              help="Bootstrap resamples of each sample set (mean ± std over them).")
@click.option("--spike-placement", type=click.Choice(["even", "uniform"]), default="even", show_default=True,
              help="Where spikes go inside their bin in every model's sample file (as `sample --spike-placement`).")
@click.option("--no-report", is_flag=True, help="Write compare.json only, no HTML report.")
@click.option("--resume", is_flag=True,
              help="Continue the comparison in an existing --out: finished models and sample files are reused.")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing --out comparison (built beside it, swapped in when complete).")
@click.option("--quiet", is_flag=True, help="Hide the progress bars (the per-model lines stay).")
@session_options
def compare(session: Path, models_text: str, out: Path, budget: str, preset: str | None, set_items: tuple[str, ...],
            n: int | None, seed: int, sampler: str, steps: int | None, reference_split: str, n_resamples: int,
            spike_placement: str, no_report: bool, resume: bool, overwrite: bool, quiet: bool, **session_opts) -> None:
    """Fit each model on SESSION, sample it into NWB, and score all of them together.

    Prints the LDNS paper's monkey table (one row per model plus the real-vs-real floor; KL of the population
    spike count, RMSE of pairwise correlations, RMSE of mean and std ISI, mean ± std over bootstrap resamples) as
    markdown, and writes DIR/compare.json (the full `evaluate` result) and DIR/report/index.html.
    """
    import warnings

    from nwb_ldns.compare import (discard_if_empty, markdown_table, parse_models, parse_sets, prepare_output,
                                  run_compare)
    from nwb_ldns.errors import GeneratedRangeWarning

    models = parse_models(models_text)
    sets = parse_sets(set_items, models)
    work, replacing, created = prepare_output(out, session, resume=resume, overwrite=overwrite)  # before the session is read
    say = lambda text: click.echo(text, err=True)  # noqa: E731 - progress on stderr, the table on stdout
    try:
        data = load_session_from_options(session, **session_opts)
        with warnings.catch_warnings():  # a sampling range warning: one "warning:" line, as `sample` prints it
            warnings.simplefilter("always", GeneratedRangeWarning)
            warnings.showwarning = lambda message, *_: verbosity.echo_warning(f"warning: {message}")  # not at -qq
            result = run_compare(data, session, models, out, work_dir=work, replacing=replacing,
                                 reading=session_kwargs(session_opts), budget=budget, preset=preset, sets=sets, n=n,
                                 seed=seed, sampler=sampler, steps=steps, reference_split=reference_split,
                                 n_resamples=n_resamples, report=not no_report, progress=not quiet,
                                 spike_placement=spike_placement, say=say)
    except BaseException:
        if created:
            discard_if_empty(work)
        raise
    click.echo(markdown_table(result.result))
    click.echo(f"wrote {result.json_path}" + ("" if no_report else f" and {result.report_path}"))
