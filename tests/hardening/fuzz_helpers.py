"""Shared pieces of the hypothesis fuzz tests: reproducible settings and the "ours or nothing" check.

Why derandomize and no database: the default suite must give the same verdict on every run and machine (CI
included) and keep no example database (hypothesis keeps only its constants cache in .hypothesis/, which
ignores itself in git); a failure prints its minimal example, which then becomes an
explicit @example of the test.
"""

from __future__ import annotations

from typing import Any, Callable

from hypothesis import HealthCheck, event, settings

from nwb_ldns.errors import NWBLDNSError


def fuzz_settings(max_examples: int) -> settings:
    """A few dozen reproducible examples, no per-example deadline (file I/O on a shared machine varies)."""
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.filter_too_much])


def ours_or_result(call: Callable[[], Any]) -> tuple[Any, NWBLDNSError | None]:
    """(result, None) or (None, our error); any other exception propagates and fails the test with its traceback."""
    try:
        result = call()
    except NWBLDNSError as error:
        message = str(error)
        assert message and "\n" not in message.strip(), f"our error should be one line: {message!r}"
        event(f"refused: {type(error).__name__}")  # --hypothesis-show-statistics shows the mix of outcomes
        return None, error
    event("accepted")
    return result, None
