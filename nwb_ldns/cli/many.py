"""Many sessions on the command line: `fit SESSION... --out-dir DIR --jobs J` and the outcome printing that it
shares with `convert willett --jobs`.

Kept out of commands/fit.py so the single-fit command stays one screen long; the work itself is the library's
(`nwb_ldns.batch`), this module only checks the options and prints the outcomes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import click

from nwb_ldns.errors import OptionError


def check_many_options(out: Path | None, out_dir: Path | None, jobs: int | None, dry_run: bool) -> None:
    """The option combinations `fit --out-dir/--jobs` refuses, each with the fix."""
    if out is not None and out_dir is not None:
        raise OptionError("--out and --out-dir exclude each other: --out writes one model trained on every session, "
                          "--out-dir one model per session; drop one of them")
    if out_dir is None:
        raise OptionError("--jobs fits the sessions in parallel, one model each, and needs --out-dir DIR; add "
                          "--out-dir DIR, or drop --jobs to train one model (--out MODEL_DIR for several sessions)")
    if dry_run:
        raise OptionError("--dry-run checks one fit and cannot be combined with --out-dir; run it on one session "
                          "without --out-dir (each session is sized the same way)")


def fit_many(sessions: Sequence[str], *, out: Path | None, out_dir: Path | None, jobs: int | None, dry_run: bool,
             quiet: bool, session_opts: Mapping[str, Any], fit_options: Mapping[str, Any]) -> None:
    """Fit every session into out_dir, print the summary and exit 0 (all ok), 2 (user errors only) or 1."""
    from nwb_ldns import verbosity
    from nwb_ldns.batch import exit_code, fit_sessions, summary_table
    from nwb_ldns.cli.session_options import session_kwargs

    check_many_options(out, out_dir, jobs, dry_run)
    outcomes = fit_sessions(list(sessions), out_dir, jobs=jobs or 1, reading_options=session_kwargs(dict(session_opts)),
                            fit_options=fit_options, progress=not quiet and verbosity.chatty())  # or global -q
    echo_outcomes(outcomes, quiet, summary_table(outcomes))
    code = exit_code(outcomes)
    if code:
        click.get_current_context().exit(code)


def echo_outcomes(outcomes, quiet: bool, table: str) -> None:
    """Tracebacks of unexpected failures (stderr), the notes when progress was hidden, then the table (stdout)."""
    for outcome in outcomes:
        if outcome.traceback:
            click.echo(f"{outcome.session}: unexpected error\n{outcome.traceback}", err=True)
        if quiet:
            from nwb_ldns import verbosity

            for note in outcome.notes:
                verbosity.echo_warning(f"Note: {outcome.session}: {note}")
    click.echo(table)
