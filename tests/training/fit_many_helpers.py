"""Task functions for the many-sessions runner tests, in a light module a spawned worker imports quickly."""

from __future__ import annotations

import os
import time

from nwb_ldns.errors import SessionContentError


def ok_task(seconds: float = 0.0, emit=None) -> str:
    time.sleep(seconds)
    return "done"


def user_error_task(emit=None) -> None:
    raise SessionContentError("the session has no Units table; add one or pass --counts-series")


def bug_task(emit=None) -> None:
    raise RuntimeError("something we did not expect")


def dying_task(emit=None) -> None:
    os._exit(3)  # what the kernel's OOM killer looks like from the parent: the worker is gone
