"""`nwb-ldns inspect FILE`: print what the reader finds in an NWB file and the `nwb-ldns fit` options that fit it."""

from __future__ import annotations

import json
import shlex

import click

from nwb_ldns.data.describe import condition_columns
from nwb_ldns.cli.session_options import load_session_from_options, options_to_cli, session_kwargs, session_options


def _fmt_columns(columns: list[dict]) -> str:
    parts = []
    for column in columns:
        text = column["name"]
        if "values" in column:
            text += "{" + ", ".join(f"{k}: {v}" for k, v in column["values"].items()) + "}"
        elif "dtype" in column:
            text += f" ({column['dtype']})"
        else:
            text += " (ragged/region)"
        parts.append(text)
    return ", ".join(parts) or "none"


def _print_report(info: dict) -> None:
    echo = click.echo
    echo(f"{info['source']}  (NWB {info['nwb_version']}, {info['backend']})")
    echo(f"  identifier: {info['identifier']}")
    echo(f"  session: {info['session_description'][:100]}  start {info['session_start_time']}")
    if info["subject"]:
        subject = info["subject"]
        fields = [subject.get("subject_id", "?"), subject.get("species", "?")]
        echo(f"  subject: {', '.join(map(str, fields))}, sex {subject.get('sex', '?')}, age {subject.get('age', '?')}")
    if info["provenance_bin_width"]:
        echo(f"  ndx-ldns provenance bin width: {info['provenance_bin_width']} s")
    echo("")
    echo(f"Units tables ({len(info['units_tables'])}):")
    for units in info["units_tables"]:
        span = units["time_range"]
        span_text = f", spikes {span[0]:.3f}-{span[1]:.3f} s" if span else ""
        echo(f"  {units['path']}: {units['n_units']} units, {units['n_spikes']} spikes{span_text}"
             f"{', obs_intervals' if units['has_obs_intervals'] else ''}")
        echo(f"    columns: {_fmt_columns(units['columns'])}")
    echo(f"Trial tables ({len(info['trial_tables'])}):")
    for trials in info["trial_tables"]:
        duration = trials["duration"]
        duration_text = (
            f", duration {duration['min']:.3f}-{duration['max']:.3f} s (median {duration['median']:.3f})"
            if duration
            else ""
        )
        split_text = ", split column" if trials["has_split"] else ""
        echo(f"  {trials['path']}: {trials['n_rows']} rows{duration_text}{split_text}")
        echo(f"    columns: {_fmt_columns(trials['columns'])}")
        if trials["align_columns"]:
            echo(f"    align on: {', '.join(trials['align_columns'])}")
    echo(f"Binned-count series ({len(info['count_series'])}):")
    for series in info["count_series"]:
        echo(f"  {series['path']}: {series['shape']} {series['dtype']}, {_rate_text(series)}")
        if series.get("channels"):
            echo(f"    channel electrodes ({series['channels']['via']}; select with --channels COLUMN==VALUE): "
                 f"{_fmt_columns(series['channels']['columns'])}")
    echo(f"Behaviour series ({len(info['behavior_series'])}):")
    for series in info["behavior_series"]:
        echo(f"  {series['path']}: {series['shape']} {series['dtype']} {series['unit']}, {_rate_text(series)}")
    echo("")
    from nwb_ldns import verbosity

    if not info["suggestions"] or not verbosity.chatty():  # `nwb-ldns -q inspect`: the description, no advice
        return
    echo(f"Suggested commands (bin width {info['default_bin_width']:g} s unless --bin-width is given):")
    for suggestion in info["suggestions"]:
        estimate = ""
        if suggestion.get("estimated_fit_s") is not None:
            from nwb_ldns.training.timing import format_duration

            shape = suggestion["shape"]
            estimate = (f"; ~{shape['trials']} trials x {shape['bins']} bins x {shape['units']} units, default fit "
                        f"(--preset auto) at most ~{format_duration(suggestion['estimated_fit_s'])} on 2 CPU cores")
        echo(f"  # {suggestion['description']}{estimate}")
        options = options_to_cli(suggestion["options"])
        if suggestion.get("preset"):
            options = f"--preset {suggestion['preset']} {options}".strip()
        echo(f"  nwb-ldns fit {shlex.quote(info['source'])} {options} --out MODEL_DIR".replace("  --out", " --out"))
    conditionable = {t["path"]: condition_columns(t) for t in info["trial_tables"]}
    if any(conditionable.values()):
        echo("Categorical trial columns a model can be conditioned on (add `--condition COLUMN` to fit; "
             "`nwb-ldns baseline psth --condition COLUMN` is the matching baseline):")
        for path, names in conditionable.items():
            if names:
                echo(f"  {path}: {', '.join(names)}")
    rate = _mean_rate_hz(info)
    if rate is not None and rate < 5.0 and info["default_bin_width"] < 0.02:
        echo(f"Bin width: the units fire {rate:.2g} Hz on average; 20-50 ms bins (--bin-width 0.02) give the models "
             "more spikes per bin to learn from than the default.")


def _mean_rate_hz(info: dict) -> float | None:
    if not info["units_tables"]:
        return None
    units = info["units_tables"][0]
    span = units.get("time_range")
    if not span or span[1] <= span[0] or not units.get("n_units"):
        return None
    return float(units["n_spikes"]) / units["n_units"] / (span[1] - span[0])


def _rate_text(series: dict) -> str:
    if series["rate"]:
        return f"{series['rate']:g} Hz"
    if series.get("sample_width"):
        return f"timestamps, ~{series['sample_width']:g} s apart"
    return "timestamps"


@click.command("inspect")
@click.argument("file", type=str)
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON instead of text.")
@session_options
def inspect_command(file: str, as_json: bool, **options) -> None:
    """Show what nwb-ldns (LDNS) will see in FILE (a .nwb, .nwb.zarr or http(s) URL): Units tables and their
    columns, trial tables with row counts and durations, binned-count series and behaviour series, and the
    `nwb-ldns fit` options to use. With session options (e.g. --trials-table, --align/--window), also load the
    session and print its shape: trials, bins, units, the train/val/test split and what the reader dropped.

    Not a validator: nwbinspector (`nwbinspector FILE`, `pip install 'nwb-ldns[dandi]'`) checks a file against NWB
    best practices and DANDI's rules; `inspect` answers a different question, whether and how LDNS can be fitted
    on the file (units, trials, bins, splits, conditions, and the problems that would stop a fit). Global -q
    prints the description without the suggestions.
    """
    from nwb_ldns.data.describe import describe_session

    info = describe_session(file)
    kwargs = session_kwargs(options)
    loaded = None
    defaults = {"units_table": "units", "trials_table": "trials", "recipe": "auto"}
    if any(value != defaults.get(key) for key, value in kwargs.items()) or info.get("recipe") and "recipe" in kwargs:
        ds = load_session_from_options(file, **options)
        loaded = {
            "options": options_to_cli({k: v for k, v in kwargs.items() if (k, v) != ("recipe", "auto")}),
            "recipe": ds.attrs.get("recipe"),
            "notes": json.loads(ds.attrs.get("reader_notes") or "[]"),
            "sizes": {k: int(v) for k, v in ds.sizes.items()},
            "bin_width": float(ds.attrs["bin_width"]),
            "splits": {s: int((ds["split"].values == s).sum()) for s in ("train", "val", "test")},
            "valid_bins": int(ds["mask"].values.sum()),
            "spikes": int(ds["counts"].values.sum()),
        }
        info["loaded"] = loaded
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
    else:
        _print_report(info)
    if not info["units_tables"] and not info["count_series"]:
        from nwb_ldns.errors import SessionContentError

        raise SessionContentError(
            f"{file} has no Units table and no binned-count TimeSeries, so nothing to model; "
            "pass an NWB file with spike times (Units) or binned counts"
        )
    if as_json:
        return
    if loaded is not None:
        click.echo("")
        how = f"recipe {loaded['recipe']}" if loaded["recipe"] else (loaded["options"] or "default options")
        click.echo(f"Loaded with {how}: {loaded['sizes']} (trial, time, unit), "
                   f"bin width {loaded['bin_width']:g} s, splits {loaded['splits']}, {loaded['spikes']} spikes")
        if loaded["notes"]:
            click.echo(f"  while reading: {'; '.join(loaded['notes'])}")
