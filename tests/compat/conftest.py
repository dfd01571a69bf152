"""Fixtures for the compatibility tests: real etcd and kvstore processes,
always cleaned up; log tails on failure; CI turns "requires ..." skips
into failures (KVSTORE_REQUIRE_COMPAT=1, set by .ci/run)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests import procs


@pytest.fixture
def launch(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[procs.Launcher]:
    yield from procs.launcher(request, tmp_path)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    procs.on_report(item, report)
    return report
