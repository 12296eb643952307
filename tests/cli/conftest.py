"""One torch thread for these tests: the models are tiny, and on a busy 2-core machine two
OpenMP threads spin-wait on each other (the suite ran 9x slower with two)."""

from __future__ import annotations

from typing import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
