"""Session fixtures for analytics tests."""

from __future__ import annotations

import pytest

from ._data import Ohlcv, load_fixture, random_walk


@pytest.fixture(scope="session")
def real() -> Ohlcv:
    return load_fixture()


@pytest.fixture(scope="session")
def synth() -> Ohlcv:
    return random_walk(8, 400, seed=7)
