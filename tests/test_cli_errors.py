"""Bad input through the CLI: one line naming the problem, non-zero exit, no traceback, input untouched."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from tests.cli_helpers import file_digest, run_cli

COMMANDS_TAKING_A_SESSION = [("inspect",), ("fit", "--preset", "tiny", "--dry-run"), ("evaluate",)]


def _assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(error_lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment.lower() in error_lines[0].lower(), error_lines[0]


def _session_args(command: tuple[str, ...], path) -> list:
    if command[0] == "evaluate":
        return ["evaluate", path, path]
    return [command[0], path, *command[1:]]


@pytest.mark.parametrize("command", COMMANDS_TAKING_A_SESSION, ids=lambda c: c[0])
def test_missing_file(tmp_path, command):
    missing = tmp_path / "does-not-exist.nwb"
    result = run_cli(*_session_args(command, missing), check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "does-not-exist.nwb" in result.stderr


@pytest.mark.parametrize("command", COMMANDS_TAKING_A_SESSION, ids=lambda c: c[0])
def test_not_an_nwb_file(tmp_path, command):
    text_file = tmp_path / "notes.nwb"
    text_file.write_text("these are lab notes, not an NWB file\n")
    before = file_digest(text_file)
    result = run_cli(*_session_args(command, text_file), check=False)
    _assert_one_line_error(result, "notes.nwb")
    assert file_digest(text_file) == before


@pytest.mark.parametrize("command", COMMANDS_TAKING_A_SESSION, ids=lambda c: c[0])
def test_session_without_units(tmp_path, command):
    from datetime import datetime, timezone

    from pynwb import NWBHDF5IO, NWBFile

    path = tmp_path / "no_units.nwb"
    nwb = NWBFile(session_description="no units", identifier="x", session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    nwb.add_trial(start_time=0.0, stop_time=1.0)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    before = file_digest(path)
    result = run_cli(*_session_args(command, path), check=False)
    _assert_one_line_error(result, "units")
    assert file_digest(path) == before


def test_hdf5_that_is_not_nwb(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as handle:
        handle["data"] = np.arange(10)
    before = file_digest(path)
    result = run_cli("inspect", path, check=False)
    _assert_one_line_error(result, "nwb")
    assert file_digest(path) == before


def test_help_lists_every_command_and_documents_every_option():
    import click

    from nwb_ldns.cli.main import cli

    top = run_cli("--help").stdout
    for name in ("convert", "fit", "sample", "evaluate"):
        assert name in top
    ctx = click.Context(cli)
    undocumented = []
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        commands = [command]
        if isinstance(command, click.Group):
            commands = [command.get_command(ctx, sub) for sub in command.list_commands(ctx)]
        for cmd in commands:
            assert cmd.help, f"{cmd.name} has no help text"
            for param in cmd.params:
                if isinstance(param, click.Option) and not param.help:
                    undocumented.append(f"{cmd.name} {param.opts[0]}")
    assert not undocumented, f"options without help: {undocumented}"
