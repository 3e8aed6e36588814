"""`python -m nwb_ldns` is the same command as the `nwb-ldns` console script (for torchrun -m and clusters)."""

from __future__ import annotations

import os
import subprocess
import sys


def _run_module(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nwb_ldns", *args], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, TQDM_DISABLE="1"))


def test_module_help_lists_the_commands_under_the_tool_name():
    result = _run_module("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: nwb-ldns")
    for command in ("convert", "inspect", "fit", "sample", "evaluate", "baseline", "export"):
        assert command in result.stdout


def test_module_errors_like_the_console_script(tmp_path):
    result = _run_module("inspect", str(tmp_path / "missing.nwb"))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "missing.nwb" in result.stderr
