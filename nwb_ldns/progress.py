"""Progress bars on a terminal, a few plain lines in a log.

Why: a tqdm bar redraws itself with carriage returns; in a file (a SLURM or CI log, `2> fit.log`, a pipe) every
redraw becomes a line, hundreds per minute. Off a terminal we print one plain line per 10 % of the work instead
(at most 11 per bar). `NWB_LDNS_PROGRESS=bars|lines|off` overrides the choice.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Iterable, Iterator

STEP_FRACTION = 0.1  # a plain line every 10 % of the work
MIN_SECONDS = 2.0  # ... or, for work of unknown length, at most every 2 s
_OVERRIDE: str | None = None  # set by the CLI's global -q (nwb_ldns.verbosity): "off" beats the environment


def override(chosen: str | None) -> None:
    """Force a mode for this process ("off" under `nwb-ldns -q`); None restores the default choice."""
    global _OVERRIDE
    _OVERRIDE = chosen


def mode() -> str:
    """"bars" on a terminal, "lines" otherwise; NWB_LDNS_PROGRESS overrides ("bars", "lines", "off"), and the
    CLI's -q (`override("off")`) overrides both."""
    if _OVERRIDE is not None:
        return _OVERRIDE
    chosen = os.environ.get("NWB_LDNS_PROGRESS", "").strip().lower()
    if chosen in ("bars", "lines", "off"):
        return chosen
    return "bars" if sys.stderr.isatty() else "lines"


class LineProgress:
    """The part of tqdm's interface our code uses, printing a plain line per 10 % to stderr."""

    def __init__(self, iterable: Iterable | None = None, *, total: float | None = None, desc: str = "",
                 unit: str = "it", initial: float = 0, disable: bool = False) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.desc, self.unit, self.n, self.disable = total, desc, unit, initial, disable
        self.postfix = ""
        self.started = self.last_time = time.monotonic()
        self.last_step = self._step()
        self.closed = False

    def _step(self) -> int:
        if not self.total:
            return -1
        return int(self.n / (self.total * STEP_FRACTION))

    def _emit(self) -> None:
        if self.disable:
            return
        elapsed = time.monotonic() - self.started
        done = f"{self.n:g}/{self.total:g}" if self.total else f"{self.n:g}"
        percent = f" ({100 * self.n / self.total:.0f} %)" if self.total else ""
        extra = f", {self.postfix}" if self.postfix else ""
        print(f"{self.desc}: {done} {self.unit}{percent}, {elapsed:.0f} s{extra}", file=sys.stderr, flush=True)

    def update(self, n: float = 1) -> None:
        self.n += n
        now = time.monotonic()
        step = self._step()
        if (self.total and step > self.last_step) or (not self.total and now - self.last_time >= MIN_SECONDS):
            self.last_step, self.last_time = step, now
            self._emit()

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs: Any) -> None:
        values = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        if not self.closed and self.n and (not self.total or self._step() != self.last_step or self.n < self.total):
            self._emit()  # the last state, unless its line was just printed
        self.closed = True

    def __iter__(self) -> Iterator:
        for item in self.iterable or ():
            yield item
            self.update(1)
        self.close()

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bar(iterable: Iterable | None = None, *, total: float | None = None, desc: str = "", unit: str = "it",
        initial: float = 0, disable: bool | None = False, leave: bool = True):
    """A tqdm bar on a terminal, a LineProgress in a log; `disable=True` (or NWB_LDNS_PROGRESS=off) shows nothing,
    `disable=None` shows only on a terminal (tqdm's convention)."""
    chosen = mode()
    off = bool(disable) or chosen == "off" or (disable is None and chosen != "bars")
    if chosen == "bars" or off:
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, disable=off, leave=leave,
                    dynamic_ncols=True)
    return LineProgress(iterable, total=total, desc=desc, unit=unit, initial=initial)
