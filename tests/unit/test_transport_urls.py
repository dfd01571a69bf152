"""Peer URLs (etcd's --initial-cluster / --listen-peer-urls form) to gRPC targets."""

from __future__ import annotations

import pytest

from kvstore.transport.peer import peer_target


@pytest.mark.parametrize(
    ("given", "target"),
    [
        ("http://127.0.0.1:2380", "127.0.0.1:2380"),
        ("http://0.0.0.0:2380/", "0.0.0.0:2380"),
        ("http://node-1.example:12380", "node-1.example:12380"),
        ("http://[::1]:2380", "[::1]:2380"),
    ],
)
def test_peer_url_to_grpc_target(given: str, target: str) -> None:
    assert peer_target(given) == target


@pytest.mark.parametrize(
    "bad", ["https://127.0.0.1:2380", "http://127.0.0.1", "127.0.0.1:2380", "http://h:1/x"]
)
def test_bad_peer_urls(bad: str) -> None:
    with pytest.raises(ValueError):
        peer_target(bad)
