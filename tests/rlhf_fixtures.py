"""Fixtures of the RLHF (SPPO IMDB / TL;DR) tests: one torch thread (two shared cores: more threads are slower)."""

from contextlib import contextmanager

import pytest
import torch


@contextmanager
def single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def one_torch_thread():
    with single_thread():
        yield
