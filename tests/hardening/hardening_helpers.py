"""Helpers for the hardening tests: the workspace snapshot and the refused-command checks.

A uniquely named module (not conftest) so the test modules can import it whatever else is collected.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from click.testing import CliRunner, Result

# a few epochs of the tiny preset: every stage and checkpoint runs, in seconds
FAST = {"autoencoder.epochs": 2, "autoencoder.val_every": 1, "autoencoder.checkpoint_every": 1,
        "autoencoder.batch_size": 8, "diffusion.epochs": 2, "diffusion.checkpoint_every": 1,
        "diffusion.batch_size": 8, "diffusion.num_steps": 20}
FAST_SET = [arg for key, value in FAST.items() for arg in ("--set", f"{key}={value}")] + ["--quiet"]


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root, hidden ones included -> sha256 of a file's bytes ("dir" for a directory).

    Why the whole tree: equal snapshots prove that no input changed, that nothing was deleted and that nothing
    (no partial file, no output under its final name) was added.
    """
    entries = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        entries[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return entries


def partials(root: Path) -> list[Path]:
    """Temporary outputs left anywhere under root (names ending in .partial)."""
    return [path for path in root.rglob("*") if ".partial" in path.name]


def invoke(*args: object) -> Result:
    """Run `nwb-ldns ARGS...` in process (exceptions are caught and reported as exit code 1, like a bug)."""
    from nwb_ldns.cli.main import cli

    return CliRunner().invoke(cli, [str(arg) for arg in args])


def assert_refused(result: Result, fragment: str) -> None:
    """Exit code 2, one `Error:` line on stderr naming the problem, no traceback anywhere."""
    shown = (f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}\n"
             f"exception: {result.exception!r}")
    assert result.exit_code == 2, shown
    assert "Traceback" not in result.output, shown
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, shown
    assert fragment.lower() in errors[0].lower(), shown
