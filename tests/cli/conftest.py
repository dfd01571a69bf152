"""Fixtures for the `kvstore` CLI tests: one trio of single-node clusters
per module (etcd for etcdctl, etcd and kvstore for the kvstore CLI),
stopped by PID at the end of the module."""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from tests import procs
from tests.cli.harness import Trio


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trio]:
    procs.require_binary("etcdctl", "etcd-client")
    procs.require_binary("etcd", "etcd-server")
    launch = procs.Launcher(tmp_path_factory.mktemp("cli"))
    try:
        ref = launch.etcd(1, start=False)
        etcd = launch.etcd(1, start=False)
        kvs = launch.kvstore(1, start=False)
        launch.start_together(ref, etcd, kvs)
        yield Trio(ref, etcd, kvs)
    finally:
        launch.stop_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    procs.on_report(item, report)
    return report
