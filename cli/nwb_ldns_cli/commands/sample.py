"""`nwb-ldns sample`: draw synthetic trials from a trained model and write them as an NWB file."""

from __future__ import annotations

import warnings
from pathlib import Path

import click


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
        name, sep, value = str(text).partition("=")
        if not sep:
            name, value = "", name
        name, value = name.strip(), value.strip()
        if spec and name and name not in (variable, short):
            raise OptionError(f"--condition {text!r}: this model is conditioned on {short!r} ({variable}), not "
                              f"{name!r}; write --condition {short}=VALUE")
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
@click.option("--length", "lengths", type=click.IntRange(min=1), multiple=True,
              help="Trial length in bins: once for all trials or --n times, one per trial. Default: the training "
              "length (variable-length models: drawn from the training trial lengths).")
@click.option("--condition", "conditions", multiple=True, metavar="[COLUMN=]VALUE",
              help="Condition of the generated trials, once for all trials or --n times. Angle model: an angle in "
              "radians, e.g. --condition 0.5 or --condition angle=0.5 (default: uniform in (-pi, pi)). Category "
              "model (ours): COLUMN=LABEL (every trial that class), COLUMN=uniform (classes uniform at random, "
              "seeded) or COLUMN=from-data (the train class frequencies; the default), e.g. "
              "--condition condition=c1.")
@click.option("--batch-size", type=click.IntRange(min=1), default=512, show_default=True,
              help="Trials generated per denoiser batch (lower it if memory is short).")
@click.option("--zarr", "use_zarr", is_flag=True, help="Write an NWB Zarr store instead of HDF5.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--quiet", is_flag=True, help="Hide the progress bar.")
def sample(model_dir: Path, n: int, out: Path, seed: int, sampler: str, steps: int | None, lengths: tuple[int, ...],
           conditions: tuple[str, ...], batch_size: int, use_zarr: bool, overwrite: bool, quiet: bool) -> None:
    """Generate N synthetic trials from MODEL_DIR (written by `nwb-ldns fit`) and write them to --out as NWB."""
    from nwb_ldns.errors import GeneratedRangeWarning, OptionError
    from nwb_ldns.export import write_synthetic
    from nwb_ldns.model_dir import LDNSModel
    from nwb_ldns.fileio import check_output

    check_output(out, kind="nwb", overwrite=overwrite, inputs=[model_dir])
    for name, values in (("--length", lengths), ("--condition", conditions)):
        if len(values) not in (0, 1, n):
            raise OptionError(f"give {name} once or exactly --n ({n}) times, got {len(values)} values")
    model = LDNSModel.load(model_dir)
    parsed = parse_conditions(conditions, model.data.get("condition"))
    with warnings.catch_warnings(record=True) as caught:  # shown as one "warning: ..." line each, below
        warnings.simplefilter("always", GeneratedRangeWarning)
        generated = model.sample(n, seed=seed, sampler=sampler, steps=steps, lengths=list(lengths) or None,
                                 conditions=parsed, batch_size=batch_size, progress=not quiet)
    for item in caught:
        if issubclass(item.category, GeneratedRangeWarning):
            click.echo(f"warning: {item.message}", err=True)
        else:
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    path = write_synthetic(generated, out, backend="zarr" if use_zarr else "hdf5", overwrite=overwrite,
                           inputs=[model_dir])
    click.echo(f"wrote {n} synthetic trials x {generated.sizes['time']} bins x {generated.sizes['unit']} units "
               f"({int(generated['counts'].sum()):,} spikes) to {path}")
