"""`nwb-ldns fit`: train an LDNS model (autoencoder + latent diffusion) on an NWB session."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from nwb_ldns.config import PRESETS
from nwb_ldns.cli.session_options import load_sessions_from_options, session_options


def default_model_dir(session: str) -> Path:
    """<stem>.ldns beside a local session (in the current directory for a URL); `fit --out-dir` uses the name."""
    from nwb_ldns.batch import model_name

    return Path(model_name(session)) if "://" in session else Path(session).with_name(model_name(session))


def next_options(model, sessions: tuple[str, ...]) -> str:
    """What the suggested `sample` command needs beyond --n/--out: a trace model's traces, the spike history."""
    condition = model.data.get("condition") or {}
    extra = ""
    if condition.get("kind") == "trace":
        extra += f" --condition velocity=from:{sessions[0]}"
    if model.spike_history is not None:
        extra += " --spike-history"
    return extra


@click.command("fit")
@click.argument("session", metavar="SESSION...", nargs=-1, required=True)
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Model directory to write. Default: <session stem>.ldns beside the session file.")
@click.option("--out-dir", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Fit one model per SESSION into DIR/<session stem>.ldns (instead of one pooled model), --jobs at "
              "a time; every other option applies to each session. Ends with a summary table; a failing session "
              "does not stop the others. Exit code 0: all ok; 2: every failure was an input or option error; 1: "
              "an unexpected error (a bug).")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="With --out-dir: sessions fitted at once, each in its own process with cpu_count/J torch threads "
              "(default 1: one after the other).")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default=None,
              help="Hyper-parameter preset: auto (sized from the session's trials x bins x units, with early stopping "
              "and a PSTH rate offset; ours), lorenz, monkey, human (the LDNS paper's settings) or tiny (tests). "
              "Default: auto (on --resume: the run's own preset).")
@click.option("--set", "set_items", multiple=True, metavar="KEY=VALUE",
              help="Override one config value by its dotted key, e.g. --set autoencoder.epochs=5 "
              "--set diffusion.loss=smoothl1 (repeatable; --dry-run prints every key).")
@click.option("--config", "config_file", type=click.Path(exists=True, path_type=Path), default=None,
              metavar="FILE",
              help="Settings from a JSON or YAML file (nested sections or dotted keys, as --set takes them), or a "
              "model directory / its config.json: `fit SESSION --config old.ldns --out new.ldns` reproduces that "
              "run. --preset, --set, --epochs, --seed and --condition given here win over the file.")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Shortcut: set autoencoder.epochs and diffusion.epochs to N.")
@click.option("--seed", type=int, default=None, help="Random seed for initialisation, batching and noise (default 42).")
@click.option("--condition", default=None, metavar="COLUMN",
              help="Condition the diffusion model on this trials-table column (with or without the trial_ prefix; "
              "'none': unconditional; 'angle': the reach angle of an MC_Maze reading; 'velocity': the behaviour "
              "trace (--behavior, or hand_vel of MC_Maze) as extra denoiser channels at every step, the LDNS "
              "velocity model). Strings, booleans and integer columns with <= 50 values are categories "
              "(one-hot class embedding; ours), other numbers angles in radians (cos/sin). Sets "
              "diffusion.condition; --set diffusion.condition_kind=angle|category overrides the detection.")
@click.option("--spike-history", "spike_history", is_flag=True,
              help="Also fit the per-neuron spike-history GLM on the autoencoder's rates (the paper's 'LDNS + spike "
              "history': refractoriness and bursting that Poisson sampling cannot make); sample with "
              "`nwb-ldns sample --spike-history`. Its settings: --set spike_history.KEY=VALUE.")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run in --out from its last checkpoint (optimiser, LR schedule, EMA and "
              "random state included).")
@click.option("--dry-run", is_flag=True,
              help="Print the resolved config, data summary and parameter counts; train nothing, write nothing.")
@click.option("--overwrite", is_flag=True, help="Replace an existing model directory at --out.")
@click.option("--quiet", is_flag=True, help="Hide the progress bars.")
@click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train with N data-parallel processes on this machine (torch.distributed DDP, launched through "
              "torchrun; gloo on CPU, nccl on GPUs). The global batch and learning rate stay as configured, so the "
              "result matches one process. Several machines: run `torchrun ... -m nwb_ldns fit ...` yourself "
              "(README, Scaling out).")
@session_options
def fit(session: tuple[str, ...], out: Path | None, out_dir: Path | None, jobs: int | None, preset: str | None,
        set_items: tuple[str, ...], config_file: Path | None, epochs: int | None, seed: int | None,
        condition: str | None, spike_history: bool, resume: bool, dry_run: bool, overwrite: bool, quiet: bool, processes: int, **session_opts) -> None:
    """Train an LDNS model on the train split of SESSION (an NWB file, .nwb.zarr store or URL).

    Several sessions with the same units/channels train one model on all their trials, each session keeping its
    own train/val/test split (the LDNS human model pools every recording day); they need an explicit --out.
    With --out-dir DIR each session gets its own model instead, DIR/<session stem>.ldns (--jobs J at a time).

    Writes a model directory of plain files (config.json, safetensors weights, latent statistics, training log,
    checkpoints) that `nwb-ldns sample` reads.
    """
    from nwb_ldns.config import format_config, parse_set_options

    overrides: dict[str, object] = dict(parse_set_options(set_items))
    if config_file is not None:
        from nwb_ldns.config import read_config_file

        file_preset, file_settings = read_config_file(config_file)
        overrides = {**file_settings, **overrides}
        preset = preset or file_preset
    if epochs is not None:
        overrides["autoencoder.epochs"] = epochs
        overrides["diffusion.epochs"] = epochs
    if seed is not None:
        overrides["seed"] = seed
    if spike_history:
        overrides["spike_history.enabled"] = True
    if processes > 1 and not dry_run:
        if out_dir is not None or jobs is not None:
            from nwb_ldns.errors import OptionError

            raise OptionError("--processes trains one model with several processes; it does not combine with "
                              "--out-dir/--jobs (one model per session): drop one of them")
        from nwb_ldns.cli.launch import launch_data_parallel

        raise SystemExit(launch_data_parallel(processes, sys.argv[1:]))
    if out_dir is not None or jobs is not None:  # one model per session (nwb_ldns.batch)
        from nwb_ldns.cli.many import fit_many

        fit_many(session, out=out, out_dir=out_dir, jobs=jobs, dry_run=dry_run, quiet=quiet, session_opts=session_opts,
                 fit_options={"preset": preset, "overrides": overrides, "condition": condition, "resume": resume,
                              "overwrite": overwrite})
        return
    if len(session) > 1 and out is None and not dry_run:
        from nwb_ldns.errors import OptionError

        raise OptionError(f"fit on {len(session)} sessions needs --out MODEL_DIR (the default is named after a "
                          "single session); add e.g. --out pooled.ldns")
    data = load_sessions_from_options(session, **session_opts)
    if condition is not None:
        from nwb_ldns.training.conditions import condition_overrides

        overrides.update(condition_overrides(condition, data))
    if dry_run:
        from nwb_ldns.training.fit import plan

        summary = plan(data, preset=preset, overrides=overrides)
        click.echo("config:")
        click.echo(format_config(summary["config"]))
        click.echo("data: " + json.dumps(summary["data"], indent=2))
        for (network, count), stage in zip(summary["parameters"].items(), ("autoencoder", "diffusion")):
            steps = summary["steps"][stage]
            click.echo(f"{network}: {count:,} parameters, {steps['batches_per_epoch']} batches/epoch, "
                       f"{steps['total_steps']:,} optimiser steps")
        click.echo(f"device: {summary['device']}")
        click.echo("dry run: nothing was trained or written")
        return

    from nwb_ldns import verbosity
    from nwb_ldns.train import fit as fit_model

    if quiet and not verbosity.configured():  # no bars, still say what happens (the global -q/-v sets this itself)
        import logging

        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        train_logger = logging.getLogger("nwb_ldns.train")
        train_logger.addHandler(handler)
        train_logger.setLevel(logging.INFO)
    out = out or default_model_dir(session[0])
    missing_parent = not out.parent.exists()
    try:
        model = fit_model(data, out, preset=preset, overrides=overrides or None, resume=resume,
                          progress=not quiet, overwrite=overwrite)
    finally:  # said even when fit stops later: the folder stays
        if missing_parent and out.parent.is_dir() and os.environ.get("RANK", "0") == "0":
            click.echo(f"created the parent folder {out.parent} (it did not exist)", err=True)
    if model is None:  # a rank > 0 of a data-parallel run: rank 0 writes and reports
        return
    click.echo(f"model directory: {model.model_dir}")
    if verbosity.chatty():
        click.echo(f"next: nwb-ldns sample {model.model_dir} --n 100 --out synthetic.nwb{next_options(model, session)}")
