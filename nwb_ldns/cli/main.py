"""The `nwb-ldns` command: a thin click group; each subcommand lives in its own module under commands/.

Errors the user can fix (`NWBLDNSError`, and an OS error naming a file: disk full, read-only, no permission) are
printed as one line without a traceback, exit code 2. Anything else is a bug: its traceback is kept and one last
line says so, exit code 1.
"""

from __future__ import annotations

import importlib
import sys
import traceback

import click

from nwb_ldns import __version__
from nwb_ldns.errors import NWBLDNSError
from nwb_ldns.fileio import OUTPUT_ERRNOS, WRITE_ONLY_ERRNOS, output_write_error
from nwb_ldns.verbosity import LEVEL_NAMES

# command name -> "module:attribute" (imported only when the command runs or help is listed)
COMMANDS = {
    "convert": "nwb_ldns.cli.commands.convert:convert",
    "inspect": "nwb_ldns.cli.commands.inspect:inspect_command",
    "fit": "nwb_ldns.cli.commands.fit:fit",
    "sample": "nwb_ldns.cli.commands.sample:sample",
    "evaluate": "nwb_ldns.cli.commands.evaluate:evaluate",
    "baseline": "nwb_ldns.cli.commands.baseline:baseline",
    "export": "nwb_ldns.cli.commands.export:export",
    "compare": "nwb_ldns.cli.commands.compare:compare",
}


class LazyGroup(click.Group):
    """Imports a subcommand's module only when needed, so `nwb-ldns --help` stays fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._load(name) is not None]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._load(name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:
                return None
            raise
        return getattr(module, attribute)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except NWBLDNSError as error:
            _refuse(str(error))
        except OSError as error:
            if error.errno not in OUTPUT_ERRNOS or not error.filename:
                _report_bug()
            _refuse(str(output_write_error(error)) if error.errno in WRITE_ONLY_ERRNOS
                    else f"{error.filename}: {error.strerror}; check the path and its permissions")
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # click's own usage errors, --help, Ctrl-C: click reports them
        except Exception:  # noqa: BLE001 - not swallowed: the traceback is printed and the exit code is 1
            _report_bug()


def _refuse(message: str) -> None:
    """A problem the user can fix: one `Error:` line, exit code 2."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


def _report_bug() -> None:
    """An unexpected exception: its traceback, then one line saying it is a bug to report; exit code 1."""
    traceback.print_exc()
    click.echo(f"This is a bug in nwb-ldns {__version__}, not a problem with your input: please report it with "
               "the command you ran and the traceback above.", err=True)
    sys.exit(1)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nwb-ldns")
@click.option("--log-level", type=click.Choice(LEVEL_NAMES, case_sensitive=False), default=None,
              help="How much to print on stderr: debug, info (the default: progress, what each stage does, hints), "
              "warning (no progress display, no hints) or error.")
@click.option("-v", "--verbose", count=True, help="One level more than --log-level (-v: debug lines too).")
@click.option("-q", "--quiet", count=True,
              help="One level less per -q (-q: no progress bars or lines and no hints; -qq: no warnings or notes).")
@click.pass_context
def cli(ctx: click.Context, log_level: str | None, verbose: int, quiet: int) -> None:
    """Latent diffusion models of neural spiking data (LDNS), NWB in and NWB out.

    Typical session: convert (or bring your own NWB file) -> inspect -> fit -> sample -> evaluate -> export.
    Global options go before the command: `nwb-ldns -q fit ...`, `nwb-ldns --log-level debug inspect ...`.
    Shell completion: see cli/README.md (e.g. `eval "$(_NWB_LDNS_COMPLETE=bash_source nwb-ldns)"`).
    """
    import logging
    import platform

    from nwb_ldns import verbosity

    verbosity.configure(verbosity.resolve_level(log_level, verbose, quiet))
    ctx.call_on_close(verbosity.reset)
    logging.getLogger("nwb_ldns.cli").debug(
        f"nwb-ldns {__version__}, Python {platform.python_version()} on {platform.platform()}; "
        f"command: {ctx.invoked_subcommand}; progress display: {_progress_mode()}")


def _progress_mode() -> str:
    from nwb_ldns.progress import mode

    return mode()


if __name__ == "__main__":
    cli()
