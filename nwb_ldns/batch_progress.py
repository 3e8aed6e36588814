"""One progress line per session while many sessions run (nwb_ldns.batch), in the parent process.

Why a separate display: the workers run without progress bars (several processes writing bars to one terminal
garble it); they send small events (start, planned epochs, epoch done) that this display turns into one tqdm bar
per session on a terminal, or into plain status lines (start, each stage, at most one epoch line per session every
30 s, finish) in a log file or a CI job.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Sequence

PLAIN_EPOCH_EVERY_S = 30.0


class Display:
    """Progress of N tasks named by `names`; `put((index, kind, payload))` feeds it, `finish(index, outcome)` ends a
    line, `close()` ends all."""

    def __init__(self, names: Sequence[str], *, enabled: bool = True, what: str = "session", stream=None) -> None:
        self.names = list(names)
        self.enabled = enabled
        self.what = what
        self.stream = stream or sys.stderr
        self.terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self._started: set[int] = set()
        self._totals: dict[int, dict[str, int]] = {}
        self._done_epochs: dict[int, dict[str, int]] = {}
        self._last_line: dict[int, float] = {}
        self._bars: dict[int, Any] = {}
        self._finished = 0
        self._width = max((len(name) for name in self.names), default=0)

    def started(self, index: int) -> bool:
        return index in self._started

    def put(self, event: tuple[int, str, Any]) -> None:
        """One event from a task: ("start", None), ("plan", {stage: epochs} | None), ("epoch", (stage, epoch))."""
        index, kind, payload = event
        if kind == "start":
            self._started.add(index)
            self._line(index, "started")
        elif kind == "plan":
            self._totals[index] = dict(payload or {})
            if self.terminal and self.enabled and payload:
                bar = self._bar(index)
                bar.reset(total=sum(payload.values()))
        elif kind == "epoch":
            stage, epoch = payload
            done = self._done_epochs.setdefault(index, {})
            new_stage = stage not in done
            done[stage] = int(epoch)
            self._epoch(index, stage, int(epoch), new_stage)

    def _bar(self, index: int):
        from tqdm.auto import tqdm

        if index not in self._bars:
            self._bars[index] = tqdm(total=None, desc=self.names[index].ljust(self._width)[-60:], unit="epoch",
                                     position=len(self._bars), leave=True, file=self.stream, dynamic_ncols=True)
        return self._bars[index]

    def _epoch(self, index: int, stage: str, epoch: int, new_stage: bool) -> None:
        total = self._totals.get(index, {}).get(stage)
        text = f"{stage} epoch {epoch}" + (f"/{total}" if total else "")
        if self.terminal and self.enabled:
            bar = self._bar(index)
            bar.n = sum(self._done_epochs[index].values())
            bar.set_postfix_str(text, refresh=True)
            return
        now = time.monotonic()
        if new_stage or now - self._last_line.get(index, 0.0) >= PLAIN_EPOCH_EVERY_S:
            self._line(index, text)

    def _line(self, index: int, text: str) -> None:
        if not self.enabled:
            return
        self._last_line[index] = time.monotonic()
        if self.terminal:
            self._bar(index).set_postfix_str(text, refresh=True)
            return
        print(f"[{self.what} {index + 1}/{len(self.names)}] {self.names[index]}: {text}", file=self.stream, flush=True)

    def finish(self, index: int, outcome) -> None:
        """The task ended: close its bar (or print its last line) and show its notes."""
        self._finished += 1
        status = f"ok in {outcome.seconds:.0f} s" if outcome.ok else f"FAILED: {outcome.error}"
        if self.enabled and self.terminal:
            bar = self._bar(index)
            bar.set_postfix_str(status[:80], refresh=True)
            bar.close()
        else:
            self._line(index, status)
        if self.enabled:
            for note in outcome.notes:
                self.note(f"Note: {self.names[index]}: {note}")

    def note(self, message: str) -> None:
        if self._bars:
            from tqdm.auto import tqdm

            tqdm.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
