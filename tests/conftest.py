"""Options shared by the whole suite."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kvstore simulation")
    group.addoption(
        "--sim-seeds",
        type=int,
        default=2000,
        help="how many seeds the Raft simulation runs (default 2000)",
    )
    group.addoption(
        "--sim-first-seed",
        type=int,
        default=0,
        help="the first seed of the simulation run",
    )
