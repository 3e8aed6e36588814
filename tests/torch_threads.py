"""One torch thread for the tests of a directory: import `one_torch_thread` into its conftest.py (autouse).

Why: the machine is shared (2 cores), and bit-identical results need a fixed thread count.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
