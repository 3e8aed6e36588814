"""`nwb-ldns sample`: draw synthetic trials from a trained model and write them as an NWB file."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from nwb_ldns import verbosity


ALIASES = {"angle": {"angle"}, "trace": {"velocity", "behavior", "behaviour"}}  # COLUMN names any such model takes


def split_condition(text: str) -> tuple[str, str]:
    """'COLUMN=VALUE' -> (COLUMN, VALUE); 'VALUE' -> ('', VALUE) ('from:a=b.nwb' keeps its '=')."""
    text = str(text).strip()
    name, sep, value = text.partition("=")
    if not sep or name.startswith("from:"):
        return "", text
    return name.strip(), value.strip()


def check_condition_name(name: str, text: str, spec: dict | None) -> None:
    """Refuse a COLUMN that is not the model's condition (with or without trial_, or an alias of its kind)."""
    from nwb_ldns.errors import OptionError

    if not spec or not name:
        return
    variable = spec.get("variable", "")
    short = variable[len("trial_"):] if variable.startswith("trial_") else variable
    if name not in {variable, short} | ALIASES.get(spec.get("kind", "angle"), set()):
        raise OptionError(f"--condition {text!r}: this model is conditioned on {short!r} ({variable}), not "
                          f"{name!r}; write --condition {short}=VALUE")


def resolve_conditions(values: tuple[str, ...], data: dict, n: int, split: str, per_trace: int
                       ) -> tuple[object, str | None]:
    """(the `conditions` argument of LDNSModel.sample, a description of where they came from or None).

    Beyond parse_conditions: `[COLUMN=]from:SESSION.nwb` takes the conditions of the --split trials of a real
    session (nwb_ldns.conditioning), and `[COLUMN=]uniform` on an angle model draws uniform angles (the default).
    """
    from nwb_ldns.conditioning import FROM_PREFIX, conditions_from_session
    from nwb_ldns.errors import OptionError

    spec = data.get("condition") or {}
    pairs = [split_condition(text) for text in values]
    for (name, _), text in zip(pairs, values):
        check_condition_name(name, text, spec or None)
    if len(pairs) == 1 and pairs[0][1].startswith(FROM_PREFIX):
        return conditions_from_session(data, pairs[0][1][len(FROM_PREFIX):], n, split=split, per_trace=per_trace)
    if any(value.startswith(FROM_PREFIX) for _, value in pairs):
        raise OptionError("give --condition ...=from:SESSION once (it supplies all --n trials)")
    if len(pairs) == 1 and pairs[0][1] == "uniform" and spec.get("kind", "angle") == "angle":
        return None, None
    if spec.get("kind") == "trace":
        raise OptionError("this model is conditioned on a behaviour trace; give --condition velocity=from:SESSION.nwb "
                          "(the traces of that session's --split trials)")
    return parse_conditions(values, spec or None), None


def parse_conditions(values: tuple[str, ...] | list[str], spec: dict | None) -> list[float] | list[str] | str | None:
    """`--condition` texts -> the `conditions` argument of LDNSModel.sample for a model whose data description
    has condition `spec` (None: unconditional; the values are passed on and sample() refuses them).

    Each text is VALUE or COLUMN=VALUE, COLUMN the model's condition column with or without the trial_ prefix.
    Angle model: a list of floats. Category model: one text -> that str (a label, "uniform" or "from-data"),
    --n texts -> the list of labels.
    """
    from nwb_ldns.errors import OptionError

    if not values:
        return None
    variable = (spec or {}).get("variable", "")
    short = variable[len("trial_"):] if variable.startswith("trial_") else variable
    parsed = []
    for text in values:
        name, value = split_condition(text)
        check_condition_name(name, text, spec)
        parsed.append(value)
    if not spec:
        return parsed
    if spec.get("kind", "angle") == "angle":
        try:
            return [float(v) for v in parsed]
        except ValueError:
            raise OptionError(f"--condition: this model is conditioned on the angle {variable}; give angles in "
                              f"radians (e.g. --condition {short}=0.5), got {list(values)}") from None
    return parsed[0] if len(parsed) == 1 else parsed


@click.command("sample")
@click.argument("model_dir", type=click.Path(path_type=Path), metavar="MODEL_DIR")
@click.option("--n", "n", type=click.IntRange(min=1), required=True, help="Number of trials to generate.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Synthetic NWB file to write (a .nwb.zarr directory with --zarr).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sampler noise and Poisson draws.")
@click.option("--sampler", type=click.Choice(["ddpm", "ddim"]), default="ddpm", show_default=True,
              help="ddpm: the reference ancestral sampler over all diffusion steps; ddim: deterministic, fewer steps.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Number of DDIM steps (default 50); ddpm always uses every diffusion step.")
@click.option("--length", "--bins", "lengths", type=click.IntRange(min=1), multiple=True,
              help="Trial length in bins: once for all trials or --n times, one per trial. Default: the training "
              "length (variable-length models: drawn from the training trial lengths). A fixed-length model "
              "generates other lengths too (its S4 kernels extend; the paper samples Lorenz at 16x its training "
              "length).")
@click.option("--condition", "conditions", multiple=True, metavar="[COLUMN=]VALUE",
              help="Condition of the generated trials, once for all trials or --n times. Angle model: an angle in "
              "radians, e.g. --condition 0.5 or --condition angle=0.5 (default: uniform in (-pi, pi)). Category "
              "model (ours): COLUMN=LABEL (every trial that class), COLUMN=uniform (classes uniform at random, "
              "seeded) or COLUMN=from-data (the train class frequencies; the default), e.g. "
              "--condition condition=c1. Any conditioned model: COLUMN=from:SESSION.nwb takes the conditions of the "
              "--split trials of a real session (angle=from:..., velocity=from:... for a velocity model), read as "
              "the training session was; angle=uniform draws uniform angles.")
@click.option("--split", default="test", show_default=True,
              help="With --condition ...=from:SESSION: which trials of SESSION give the conditions.")
@click.option("--per-trace", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --condition ...=from:SESSION: generated trials per real trial (in trial order, cycled).")
@click.option("--spike-history", "spike_history", is_flag=True,
              help="Draw each bin's counts from the model's spike-history GLM (given the generated rates and the "
              "trial's own past spikes) instead of independent Poisson draws; needs `fit --spike-history`.")
@click.option("--batch-size", type=click.IntRange(min=1), default=512, show_default=True,
              help="Trials generated per denoiser batch (lower it if memory is short).")
@click.option("--spike-placement", type=click.Choice(["even", "uniform"]), default="even", show_default=True,
              help="How the spikes of a bin get their times in --out: even (k spikes evenly inside the bin) or "
              "uniform (at random inside the bin, from --seed: reproducible); both re-bin to the generated counts, "
              "and the Units description names the placement.")
@click.option("--zarr", "use_zarr", is_flag=True, help="Write an NWB Zarr store instead of HDF5.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--quiet", is_flag=True, help="Hide the progress bar.")
def sample(model_dir: Path, n: int, out: Path, seed: int, sampler: str, steps: int | None, lengths: tuple[int, ...],
           conditions: tuple[str, ...], split: str, per_trace: int, spike_history: bool, batch_size: int,
           spike_placement: str, use_zarr: bool, overwrite: bool, quiet: bool) -> None:
    """Generate N synthetic trials from MODEL_DIR (written by `nwb-ldns fit`) and write them to --out as NWB.

    The trials are generated in batches of --batch-size, spilled to temporary files beside --out and written to
    the NWB file unit by unit, so memory stays at about one batch for any --n (the disk needs room for the
    temporary files and the file; checked before sampling).
    """
    from nwb_ldns.errors import GeneratedRangeWarning, OptionError
    from nwb_ldns.fileio import check_output
    from nwb_ldns.model_dir import LDNSModel
    from nwb_ldns.sample import sample_to_nwb

    check_output(out, kind="nwb", overwrite=overwrite, inputs=[model_dir])
    for name, values in (("--length", lengths), ("--condition", conditions)):
        if len(values) not in (0, 1, n):
            raise OptionError(f"give {name} once or exactly --n ({n}) times, got {len(values)} values")
    model = LDNSModel.load(model_dir)
    parsed, source = resolve_conditions(conditions, model.data, n, split, per_trace)
    with warnings.catch_warnings(record=True) as caught:  # shown as one "warning: ..." line each, below
        warnings.simplefilter("always", GeneratedRangeWarning)
        summary = sample_to_nwb(model, n, out, seed=seed, sampler=sampler, steps=steps,
                                lengths=list(lengths) or None, conditions=parsed, batch_size=batch_size,
                                progress=not quiet, conditions_source=source, spike_history=spike_history,
                                backend="zarr" if use_zarr else "hdf5", overwrite=overwrite, inputs=[model_dir],
                                spike_placement=spike_placement)
    for item in caught:
        if issubclass(item.category, GeneratedRangeWarning):
            verbosity.echo_warning(f"warning: {item.message}")
        else:
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    click.echo(f"wrote {n} synthetic trials x {summary.n_bins} bins x {summary.n_units} units "
               f"({summary.n_spikes:,} spikes) to {summary.path}")
