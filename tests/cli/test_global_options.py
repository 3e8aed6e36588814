"""Global --log-level / -v / -q of `nwb-ldns`, the fit's closing lines, and click's shell completion."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from nwb_ldns import progress, verbosity
from nwb_ldns.cli.main import cli
from nwb_ldns.testing import write_mock_session

CONSOLE_SCRIPT = Path(sys.executable).parent / "nwb-ldns"


def _run(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("log_level, verbose, quiet, expected", [
    (None, 0, 0, logging.INFO), (None, 1, 0, logging.DEBUG), (None, 0, 1, logging.WARNING),
    (None, 0, 5, logging.ERROR), ("error", 2, 0, logging.INFO), ("DEBUG", 0, 1, logging.INFO),
])
def test_levels_combine_log_level_and_counts(log_level, verbose, quiet, expected):
    assert verbosity.resolve_level(log_level, verbose, quiet) == expected


def test_quiet_inspect_prints_less_and_verbose_adds_debug_lines(mock_session_path):
    plain, quiet, verbose = (_run(*flags, "inspect", str(mock_session_path)) for flags in ([], ["-q"], ["-v"]))
    assert plain.exit_code == quiet.exit_code == verbose.exit_code == 0, plain.output + quiet.output
    assert "Units tables" in quiet.output and "Suggested commands" in plain.output
    assert "Suggested commands" not in quiet.output
    assert len(quiet.output.splitlines()) < len(plain.output.splitlines())
    assert "debug: nwb_ldns.cli: nwb-ldns" in verbose.output and "debug:" not in plain.output
    assert not verbosity.configured() and progress._OVERRIDE is None  # reset after each invocation


def test_bad_log_level_is_a_usage_error(mock_session_path):
    result = _run("--log-level", "loud", "inspect", str(mock_session_path))
    assert result.exit_code == 2 and "--log-level" in result.output and "'loud'" in result.output
    assert _run("--log-level", "WARNING", "inspect", str(mock_session_path)).exit_code == 0


def test_quiet_turns_the_progress_display_off_until_reset(monkeypatch):
    monkeypatch.setenv("NWB_LDNS_PROGRESS", "lines")
    try:
        verbosity.configure(logging.WARNING)
        assert progress.mode() == "off" and not verbosity.chatty()
    finally:
        verbosity.reset()
    assert progress.mode() == "lines" and verbosity.chatty()


def test_double_quiet_hides_notes_and_python_warnings_but_not_results(tmp_path):
    import importlib.util
    import warnings

    fixtures = Path(__file__).parents[1] / "data" / "reader_fixtures.py"
    spec = importlib.util.spec_from_file_location("maze_fixtures", fixtures)
    reader_fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reader_fixtures)
    session = tmp_path / "maze.nwb"
    reader_fixtures.write_maze_like(session)  # one trial has split 'none': the reader notes that it is dropped
    runs = {flags: _run(*flags.split(), "inspect", str(session), "--bin-width", "0.02") for flags in ("-q", "-qq")}
    assert all(run.exit_code == 0 for run in runs.values()), runs["-q"].output
    assert "Note: dropped 1 trials" in runs["-q"].output
    assert "Note:" not in runs["-qq"].output and "Units tables" in runs["-qq"].output
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        verbosity.configure(logging.ERROR)
        try:
            warnings.warn("hidden under -qq", UserWarning)
        finally:
            verbosity.reset()
        warnings.warn("shown again after the command", UserWarning)
    assert [str(w.message) for w in seen] == ["shown again after the command"]


def test_fit_names_its_model_directory_once_and_quiet_hides_progress(tmp_path):
    session = tmp_path / "s.nwb"
    write_mock_session(session, n_trials=12, n_bins=16, n_units=4)
    env = {**os.environ, "NWB_LDNS_PROGRESS": "lines", "OMP_NUM_THREADS": "1"}
    runs = {}
    for name, flags in (("default", []), ("quiet", ["-q"])):
        runs[name] = subprocess.run([sys.executable, "-m", "nwb_ldns", *flags, "fit", str(session), "--preset", "tiny",
                                     "--epochs", "2", "--out", str(tmp_path / f"{name}.ldns")],
                                    capture_output=True, text=True, env=env, timeout=300)
        assert runs[name].returncode == 0, runs[name].stderr[-2000:]
        both = (runs[name].stdout + runs[name].stderr).splitlines()
        said = [line for line in both if line.endswith(str(tmp_path / f"{name}.ldns"))]
        assert said == [f"model directory: {tmp_path / f'{name}.ldns'}"], both  # once, not twice in other words
        assert not any("model written to" in line for line in both)
    default, quiet = runs["default"], runs["quiet"]
    assert "fit finished in" in default.stderr and "next: nwb-ldns sample" in default.stdout
    assert any(line.startswith("autoencoder: ") for line in default.stderr.splitlines())
    assert not any(line.startswith(("autoencoder: ", "diffusion: ")) for line in quiet.stderr.splitlines())
    assert "estimated fit time" not in quiet.stderr and "next:" not in quiet.stdout
    assert "model directory:" in quiet.stdout
    warned = [line for line in default.stderr.splitlines() if line.startswith("warning: on the held-out")]
    assert warned == [line for line in quiet.stderr.splitlines() if line.startswith("warning: on the held-out")]


@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason="the nwb-ldns console script is not installed beside python")
def test_shell_completion_scripts_name_the_commands():
    env = {**os.environ, "_NWB_LDNS_COMPLETE": "bash_source"}
    script = subprocess.run([str(CONSOLE_SCRIPT)], capture_output=True, text=True, env=env, timeout=120)
    assert script.returncode == 0 and "complete -o nosort -F _nwb_ldns_completion nwb-ldns" in script.stdout
    env = {**os.environ, "_NWB_LDNS_COMPLETE": "bash_complete", "COMP_WORDS": "nwb-ldns ", "COMP_CWORD": "1"}
    commands = subprocess.run([str(CONSOLE_SCRIPT)], capture_output=True, text=True, env=env, timeout=120)
    offered = {line.split(",", 1)[1] for line in commands.stdout.splitlines()}
    assert {"inspect", "fit", "sample", "evaluate", "export"} <= offered
    env.update(COMP_WORDS="nwb-ldns --log-level ", COMP_CWORD="2")
    levels = subprocess.run([str(CONSOLE_SCRIPT)], capture_output=True, text=True, env=env, timeout=120)
    assert {line.split(",", 1)[1] for line in levels.stdout.splitlines()} == set(verbosity.LEVEL_NAMES)
