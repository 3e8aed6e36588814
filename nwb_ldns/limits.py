"""Size limits checked before a big allocation: one rule and one message style for every command.

Why: an absurd input (a spike at 1e12 s cut into 1 s windows, `--bin-width 1e-9`, `sample --n 10000000`, a
hidden width of 200000) asks numpy or torch for terabytes. That ends in a MemoryError traceback, or worse, in a
machine that swaps until the kernel kills something. Each command estimates the bytes its arrays will take from
the shapes alone, before allocating anything, and `check_fits` refuses an estimate above the memory the machine
has available now, with the estimate, what it is made of and the option that makes it smaller.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from nwb_ldns.errors import OptionError

# bytes per (trial, bin) cell of a session beside its counts: bin start and destination, the (trial, bin) index
# pairs, the sort order and the valid/observed masks of the binning code (nwb_ldns.data.windows, session)
SESSION_BYTES_PER_BIN = 64
# bytes per (trial, bin, unit) count of a session: the float32 counts are held about three times at once (the
# binning output, the per-layer sum and the Dataset)
SESSION_BYTES_PER_COUNT = 12
MEMINFO = Path("/proc/meminfo")


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (MemAvailable), or None where it cannot be known."""
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:  # other Unix systems: free pages (without the page cache, so a smaller, safe figure)
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def format_bytes(n_bytes: float) -> str:
    """1536 -> '1.5 KiB'; 8e12 -> '7.28 TiB' (the units numpy's own MemoryError uses)."""
    value = float(n_bytes)
    if not math.isfinite(value):
        return "an unbounded amount"
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.3g} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def check_fits(n_bytes: float, what: str, fix: str) -> None:
    """OptionError when `what` (e.g. '3 trials x 10 bins x 8 units') would need more than the available memory.

    The message reads: '<what> would need about <estimate> of memory, more than the <available> available; <fix>'.
    Nothing is checked where the available memory cannot be known (a non-Linux system without sysconf).
    """
    available = available_memory()
    if available is None or n_bytes <= available:
        return
    raise OptionError(f"{what} would need about {format_bytes(n_bytes)} of memory, more than the "
                      f"{format_bytes(available)} available; {fix}")


def available_disk(folder: str | os.PathLike) -> int | None:
    """Bytes free for us on the disk of `folder` (its nearest existing parent), or None where it cannot be known."""
    import shutil

    path = Path(os.path.abspath(folder))
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return int(shutil.disk_usage(path).free)
    except OSError:
        return None


def check_disk_fits(n_bytes: float, target: str | os.PathLike, what: str, fix: str) -> None:
    """OutputWriteError when writing `what` to `target` would need more than the free disk space there.

    The message reads like a full disk met while writing (`nwb_ldns.fileio.output_write_error`), with the
    estimate: 'cannot write <target>: no space left on the device for <what>: about <estimate> of disk space,
    more than the <free> free; <fix> (nothing was written)'.
    """
    from nwb_ldns.errors import OutputWriteError

    free = available_disk(Path(target).parent)
    if free is None or n_bytes <= free:
        return
    raise OutputWriteError(f"cannot write {target}: no space left on the device for {what}: it would need about "
                           f"{format_bytes(n_bytes)} of disk space, more than the {format_bytes(free)} free; {fix} "
                           "(nothing was written)")


def session_bytes(n_trials: float, n_bins: float, n_units: int) -> float:
    """Estimated peak bytes of reading a session of n_trials x n_bins (the longest trial) x n_units.

    Floats, not ints: the sizes checked here may be astronomically large (or infinite) before they are refused.
    """
    cells = float(n_trials) * float(n_bins)
    return cells * (SESSION_BYTES_PER_BIN + SESSION_BYTES_PER_COUNT * max(int(n_units), 1))


def check_session_size(n_trials: float, n_bins: float, n_units: int, fix: str) -> None:
    """Refuse a session grid (trials x bins x units) that cannot be held in memory, before it is allocated."""
    check_fits(session_bytes(n_trials, n_bins, n_units),
               f"{count_text(n_trials)} trials x {count_text(n_bins)} bins x {count_text(n_units)} units", fix)


def count_text(value: float) -> str:
    """12345.0 -> '12,345'; 1e40 -> '1e+40' (a count too large to print in full)."""
    value = float(value)
    return f"{value:,.0f}" if value < 1e15 else f"{value:.3g}"


# bytes per network parameter that building the networks takes: the float32 weights and one state-dict copy (a
# load or a checkpoint); training adds gradients and optimiser state on top
BYTES_PER_PARAMETER = 8


def check_network_size(arguments: dict[str, dict]) -> None:
    """Refuse networks whose parameters cannot be held in memory, counted without allocating them.

    `arguments` are the constructor arguments of nwb_ldns.model_dir.network_arguments. The networks are built
    on torch's meta device (shapes only, no storage), so the count is exact for every architecture option.
    """
    import torch

    from nwb_ldns.models import AutoEncoder, Denoiser

    with torch.device("meta"):
        counts = {"autoencoder": sum(p.numel() for p in AutoEncoder(**arguments["autoencoder"]).parameters()),
                  "denoiser": sum(p.numel() for p in Denoiser(**arguments["denoiser"]).parameters())}
    largest = max(counts, key=counts.get)
    section = "autoencoder" if largest == "autoencoder" else "diffusion"
    hidden = arguments[largest]["hidden"]
    check_fits((counts["autoencoder"] + counts["denoiser"]) * BYTES_PER_PARAMETER,
               f"the networks of this config ({count_text(counts['autoencoder'])} autoencoder and "
               f"{count_text(counts['denoiser'])} denoiser parameters)",
               f"lower --set {section}.hidden (now {hidden}) or {section}.n_blocks")
