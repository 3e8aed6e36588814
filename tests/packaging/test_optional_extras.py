"""A missing optional package gives one error line that names the extra to install."""

from __future__ import annotations

import sys

import pytest

from nwb_ldns.errors import MissingExtraError
from nwb_ldns.optional import available, require


def test_require_names_the_extra_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dandi", None)  # import dandi now raises ImportError
    with pytest.raises(MissingExtraError, match=r"export --validate needs the optional package dandi.*nwb-ldns\[dandi\]"):
        require("dandi", "export --validate")
    assert not available("dandi")


def test_require_returns_an_installed_module() -> None:
    assert require("numpy", "anything").__name__ == "numpy"
    assert available("numpy")
