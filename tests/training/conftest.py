"""Fixtures for the training tests (helpers live in training_fixtures.py)."""

from __future__ import annotations

import pytest

from tests.torch_threads import one_torch_thread  # noqa: F401 - autouse: one torch thread
from training_fixtures import make_session


@pytest.fixture(scope="module")
def session():
    return make_session()
