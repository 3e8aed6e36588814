"""How much the `nwb-ldns` command says: the global --log-level / -v / -q options.

Levels: debug (-v: also how files are opened, versions), info (the default: progress, what each stage does, hints),
warning (-q: no progress display, no hints, only results, warnings and errors), error (-qq: results and errors).
The `nwb_ldns` logger writes through tqdm (lines stay above any progress bar). Library use (no CLI) is unchanged:
nothing is configured and `Run.say` prints its messages itself.
"""

from __future__ import annotations

import logging
import sys
import warnings

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
LEVEL_NAMES = tuple(LEVELS)
DEFAULT_LEVEL = "info"
LOGGER = "nwb_ldns"


class _TqdmHandler(logging.Handler):
    """Writes each record to the current sys.stderr through tqdm.write (a progress bar is redrawn below it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never stop a command
            self.handleError(record)


class _Formatter(logging.Formatter):
    """info: the message alone; debug/warning/error: prefixed with the level (and, for debug, the module)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            prefix = f"{record.levelname.lower()}:"
            return message if message.startswith(prefix) else f"{prefix} {message}"
        if record.levelno < logging.INFO:
            return f"debug: {record.name}: {message}"
        return message


def resolve_level(log_level: str | None, verbose: int = 0, quiet: int = 0) -> int:
    """The logging level of --log-level (default info) moved one step down per -v and one up per -q."""
    names = list(LEVEL_NAMES)
    position = names.index((log_level or DEFAULT_LEVEL).lower()) - int(verbose) + int(quiet)
    return LEVELS[names[min(max(position, 0), len(names) - 1)]]


_handler: logging.Handler | None = None
_level: int | None = None
_warnings_off: warnings.catch_warnings | None = None  # the -qq filter, undone by reset()


def configure(level: int) -> None:
    """Send the `nwb_ldns` logger's records at `level` and above to stderr; above info, no progress display."""
    global _handler, _level, _warnings_off
    reset()
    logger = logging.getLogger(LOGGER)
    _handler = _TqdmHandler(level)
    _handler.setFormatter(_Formatter())
    logger.addHandler(_handler)
    logger.setLevel(level)
    _level = level
    if level > logging.WARNING:  # -qq: Python warnings (ours and the libraries') are not printed either
        _warnings_off = warnings.catch_warnings()
        _warnings_off.__enter__()
        warnings.simplefilter("ignore")
    from nwb_ldns import progress

    progress.override("off" if level > logging.INFO else None)


def reset() -> None:
    """Undo `configure` (the end of a CLI invocation; tests run many in one process)."""
    global _handler, _level, _warnings_off
    if _warnings_off is not None:
        _warnings_off.__exit__(None, None, None)
    _warnings_off = None
    logger = logging.getLogger(LOGGER)
    if _handler is not None:
        logger.removeHandler(_handler)
        logger.setLevel(logging.NOTSET)
    _handler, _level = None, None
    from nwb_ldns import progress

    progress.override(None)


def configured() -> bool:
    """Whether the CLI configured logging: its messages then go through the `nwb_ldns` logger only."""
    return _handler is not None


def chatty() -> bool:
    """Whether hints and informational lines should be printed (not under -q); True outside the CLI."""
    return _level is None or _level <= logging.INFO


def warnings_shown() -> bool:
    """Whether warning and note lines should be printed (not under -qq); True outside the CLI."""
    return _level is None or _level <= logging.WARNING


def echo_warning(line: str) -> None:
    """Print a "warning: ..." or "Note: ..." line to stderr unless -qq silenced warnings (the CLI's own lines that
    bypass the logger, such as a caught Python warning shown in one line)."""
    if warnings_shown():
        import click

        click.echo(line, err=True)
