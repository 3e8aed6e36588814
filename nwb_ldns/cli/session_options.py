"""The options that say how to read a session from an NWB file, shared by fit, inspect, evaluate and baseline.

`@session_options` adds them to a click command; `load_session_from_options(path, **kwargs)` turns the parsed
values into a `load_session` call (it ignores the command's other keyword arguments, so a command can pass all of
its parameters through).
"""

from __future__ import annotations

import os
from typing import Any, Callable

import click

from nwb_ldns import verbosity

# click parameter name -> load_session keyword
SESSION_OPTION_NAMES = {
    "bin_width": "bin_width",
    "units_table": "units_table",
    "trials_table": "trials_table",
    "align": "align",
    "window": "window",
    "window_length": "window_length",
    "units_filter": "unit_filter",
    "counts_series": "counts_series",
    "channels": "channel_filter",
    "behavior": "behavior",
    "recipe": "recipe",
}

_OPTIONS = [
    click.option(
        "--bin-width",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        help="Bin width in seconds. Default: with --counts-series the series' own sample spacing; otherwise the "
        "bin width recorded in the file's ndx-ldns provenance, else 0.01.",
    ),
    click.option(
        "--units-table",
        default="units",
        show_default=True,
        help="Units table (spike times) to bin: its name or path in the file, e.g. units or processing/ecephys/units.",
    ),
    click.option(
        "--trials-table",
        default="trials",
        show_default=True,
        help="Table with start_time/stop_time that defines the trials: name or path, e.g. trials or "
        "recognition_table (see `nwb-ldns inspect FILE`).",
    ),
    click.option(
        "--align",
        default=None,
        help="Trial-table column (seconds) to align trials on, e.g. move_onset_time; needs --window. Default: "
        "each trial runs from its start_time to its stop_time (variable lengths are padded and masked).",
    ),
    click.option(
        "--window",
        type=(float, float),
        default=None,
        metavar="START STOP",
        help="Fixed window in seconds relative to --align (default start_time), e.g. --window -0.25 0.45.",
    ),
    click.option(
        "--window-length",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        help="Cut consecutive windows of this many seconds from the whole recording instead of using a trial "
        "table (for files without trials).",
    ),
    click.option(
        "--units-filter",
        default=None,
        help="Keep only the units matching COLUMN==VALUE or COLUMN!=VALUE terms joined by commas, e.g. "
        "heldout==False, quality==good or location==CA1 (location via the units' electrodes).",
    ),
    click.option(
        "--counts-series",
        default=None,
        help="Read binned counts from this TimeSeries (time x channel) instead of spike times, e.g. "
        "processing/ecephys/tx1.",
    ),
    click.option(
        "--channels",
        default=None,
        metavar="FILTER",
        help="With --counts-series: keep only the channels whose electrodes-table row matches COLUMN==VALUE or "
        "COLUMN!=VALUE terms joined by commas, e.g. --channels \"location==area 6v\" (the 128 area-6v channels of "
        "the Willett data). Channels map to electrodes through the series' electrodes region, else column j = "
        "electrodes row j.",
    ),
    click.option(
        "--behavior",
        default=None,
        help="TimeSeries to average onto the bins as behaviour, e.g. processing/behavior/hand_vel.",
    ),
    click.option(
        "--recipe",
        type=click.Choice(["auto", "mc_maze", "none"]),
        default="auto",
        show_default=True,
        help="A published dataset read the way the LDNS paper reads it. mc_maze (DANDI:000128): 5 ms bins, "
        "-250..+450 ms around move_onset_time, held-in then held-out units, hand_vel lagged 100 ms in m/s, the reach "
        "angle as trial_reach_angle, the LDNS train/val/test split from the NLB split column; trials whose window "
        "leaves the units' obs_intervals are dropped and counted. auto: mc_maze for a file in that layout when no "
        "other reading option is given; none: the generic reader.",
    ),
]


def session_options(command: Callable) -> Callable:
    """Click decorator adding --bin-width, --units-table, --trials-table, --align, --window, --window-length,
    --units-filter, --counts-series, --channels, --behavior and --recipe."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def session_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """The load_session keyword arguments among parsed click options (others are ignored)."""
    kwargs = {}
    for name, target in SESSION_OPTION_NAMES.items():
        if name in options and options[name] is not None:
            value = options[name]
            if name == "window":
                value = tuple(value)
            if name == "recipe" and value == "none":
                continue
            kwargs[target] = value
    return kwargs


def load_session_from_options(path: str | os.PathLike, **options: Any):
    """`load_session(path, ...)` with the values of the session options (unrelated keyword arguments ignored).

    The reader's warnings (dropped trials, bins outside obs_intervals...) are printed to stderr as one
    "Note:" line each instead of Python's two-line warning format.
    """
    from nwb_ldns.data import load_session

    return _echo_notes(lambda: load_session(path, **session_kwargs(options)))


def load_sessions_from_options(paths: list[str] | tuple[str, ...], **options: Any):
    """`load_sessions(paths, ...)` (one Dataset of every session's trials) with the values of the session options;
    notes printed as in `load_session_from_options`, each naming its file when there are several."""
    from nwb_ldns.data.multi import load_sessions

    return _echo_notes(lambda: load_sessions(list(paths), **session_kwargs(options)))


def _echo_notes(read: Callable[[], Any]):
    """Run `read()`, printing its UserWarnings to stderr as one "Note:" line each."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = read()
    for warning in caught:
        if issubclass(warning.category, UserWarning):
            verbosity.echo_warning(f"Note: {warning.message}")
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return ds


def options_to_cli(kwargs: dict[str, Any]) -> str:
    """The command-line spelling of load_session keyword arguments (for the suggestions `inspect` prints)."""
    reverse = {target: name for name, target in SESSION_OPTION_NAMES.items()}
    parts = []
    for key, value in kwargs.items():
        if value is None:
            continue
        flag = "--" + reverse.get(key, key).replace("_", "-")
        if isinstance(value, (tuple, list)):
            parts.append(f"{flag} {' '.join(_fmt(v) for v in value)}")
        else:
            parts.append(f"{flag} {_fmt(value)}")
    return " ".join(parts)


def _fmt(value: Any) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return text if text and all(c.isalnum() or c in "._-/=+" for c in text) else repr(text)
