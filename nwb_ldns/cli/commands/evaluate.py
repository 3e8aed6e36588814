"""`nwb-ldns evaluate REAL.nwb SYNTH.nwb [MORE.nwb ...]`: the paper's statistics vs real (training or held-out) trials."""

from __future__ import annotations

import json
from pathlib import Path

import click

from nwb_ldns.data.generated import read_generated
from nwb_ldns.cli.session_options import load_session_from_options, session_options


@click.command("evaluate")
@click.argument("real", metavar="REAL", type=str)  # a path or URL: load_session names a missing file
@click.argument("synthetic", nargs=-1, required=False, type=click.Path(exists=True, path_type=Path))
@click.option("--baseline", "baseline_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="A generated file that is a baseline (repeatable); evaluated like SYNTH files and named in the "
              "verdict's 'beats' column. Files whose model is not LDNS (PSTH-Poisson, LDS) count as baselines anyway.")
@click.option("--report", "report_dir", type=click.Path(path_type=Path), default=None,
              help="Write a self-contained HTML report (index.html + PNG figures) into this directory.")
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="With --report: the model directory the SYNTH files were sampled from; the report then compares "
              "its autoencoder latents of the real trials with the latents the files carry.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
              help="Write the numbers of the table (and settings) to this JSON file.")
@click.option("--bootstrap", "n_resamples", type=click.IntRange(min=0), default=5, show_default=True,
              help="Bootstrap resamples of each generated set (0: compare the full sets only).")
@click.option("--seed", type=int, default=42, show_default=True, help="Seed of the bootstrap and half splits.")
@click.option("--maxval", type=click.IntRange(min=1), default=None,
              help="End of the population-count KDE grid 0..MAXVAL (default: the largest population count over "
              "the real and all generated sets, as in the reference).")
@click.option("--reference-split", type=click.Choice(["train", "val", "test"]), default="train", show_default=True,
              help="Real trials the statistics compare with: the training trials (as the LDNS reference) or "
              "held-out ones (test/val), which a model never saw.")
@click.option("--no-memorisation", is_flag=True, help="Skip the nearest-training-trial memorisation check.")
@click.option("--overwrite", is_flag=True, help="Replace existing --json/--report outputs.")
@session_options
def evaluate(real: str, synthetic: tuple[Path, ...], baseline_paths: tuple[Path, ...], report_dir: Path | None,
             model_dir: Path | None, json_path: Path | None,
             n_resamples: int, seed: int, maxval: int | None, reference_split: str, no_memorisation: bool,
             overwrite: bool,
             **session_opts) -> None:
    """Compare generated spikes (SYNTH.nwb ...) with the real training (or --reference-split) trials of REAL.nwb.

    Prints KL of the population-count distribution, RMSE of pairwise correlations (reference convention and
    over distinct pairs), RMSE of per-neuron mean/std ISI and of firing rates: mean ± std over bootstrap
    resamples, with the real-vs-real noise floor (a random half of the real trials vs the other half), and the
    Pearson r between real and generated per-neuron statistics that the LDNS authors report. Then the verdict:
    every set's statistics as multiples of an equal-size real-vs-real floor, and which baselines it beats. The
    session options describe how to read REAL.nwb; generated files are read with their recorded bin width.
    """
    from nwb_ldns.data import load_session
    from nwb_ldns.metrics.evaluate import evaluate as run_evaluate
    from nwb_ldns.metrics.evaluate import agreement_lines, decoding_lines, format_table, json_ready
    from nwb_ldns.metrics.verdict import verdict_lines

    if not synthetic and not baseline_paths:
        raise click.UsageError("Missing argument 'SYNTHETIC...': give at least one generated file (or --baseline)")
    if model_dir is not None and report_dir is None:
        raise click.UsageError("--model is for the report's latent figures: give --report DIR too")
    inputs = [real, *synthetic, *baseline_paths, *([model_dir] if model_dir is not None else [])]
    _check_outputs(json_path, report_dir, inputs, overwrite)  # before the (long) evaluation
    real_ds = load_session_from_options(real, **session_opts)
    paths = tuple(synthetic) + tuple(baseline_paths)
    generated = [read_generated(path) for path in paths]
    names = _unique_names(paths)
    result = run_evaluate(real_ds, generated, names=names, n_resamples=n_resamples, seed=seed, maxval=maxval,
                          split=reference_split, memorisation=not no_memorisation,
                          baselines=names[len(synthetic):])
    result["real"]["path"] = str(real)
    for entry, path in zip(result["generated"], paths):
        entry["path"] = str(path)
    click.echo(format_table(result))
    click.echo("")
    for line in agreement_lines(result):
        click.echo(line)
    for line in decoding_lines(result):
        click.echo(line)
    lines = verdict_lines(result)
    if lines:
        click.echo("")
    for line in lines:
        click.echo(line)
    for note in result["notes"]:
        click.echo(f"note: {note}")
    if json_path is not None:
        from nwb_ldns.fileio import atomic_output

        with atomic_output(json_path, overwrite=overwrite, kind="json", inputs=inputs, option="--json") as tmp:
            tmp.write_text(json.dumps(json_ready(result), indent=2, allow_nan=False))
        click.echo(f"wrote {json_path}")
    if report_dir is not None:
        from nwb_ldns.report import write_report

        from nwb_ldns.report.latents import collect_latents

        latents = collect_latents(real, real_ds, paths, generated, names, model_dir=model_dir,
                                  train_split=reference_split)
        write_report(report_dir, real_ds, generated, result, overwrite=overwrite, inputs=inputs, latents=latents)
        click.echo(f"wrote {Path(report_dir) / 'index.html'}")


def _check_outputs(json_path: Path | None, report_dir: Path | None, inputs: list[Path], overwrite: bool) -> None:
    """The output rule for --json and --report: never an input, never each other, --overwrite only ours."""
    from nwb_ldns.fileio import check_output, refuse_overlapping_outputs

    if json_path is not None and report_dir is not None:
        refuse_overlapping_outputs(("--json", json_path), ("--report", report_dir))
    if json_path is not None:
        check_output(json_path, kind="json", overwrite=overwrite, inputs=inputs, option="--json")
    if report_dir is not None:
        check_output(report_dir, kind="report", overwrite=overwrite, inputs=inputs, option="--report")


def _unique_names(paths: tuple[Path, ...]) -> list[str]:
    names = [p.name for p in paths]
    if len(set(names)) == len(names):
        return names
    return [str(p) for p in paths]
