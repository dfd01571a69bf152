"""Errors raised by kvstore.client.

`str(error)` is what a user should read: for an error the server answered
with, exactly the server's message (etcd's text, which etcdctl prints too);
for endpoints that could not be used, which endpoint failed and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class ClientError(Exception):
    """Base class of every error kvstore.client raises."""


class RequestFailed(ClientError):
    """The server answered with an error status (for example OutOfRange
    "etcdserver: mvcc: required revision has been compacted")."""

    def __init__(self, endpoint: str, code: str, details: str) -> None:
        super().__init__(details or code)
        self.endpoint = endpoint
        self.code = code
        self.details = details


class RequestTimeout(ClientError):
    """The command timeout ran out while a server was working on the request."""

    def __init__(self, endpoint: str, timeout: float) -> None:
        super().__init__(f"{endpoint}: no answer within the command timeout ({timeout:g}s)")
        self.endpoint = endpoint
        self.timeout = timeout


@dataclass(frozen=True, slots=True)
class EndpointFailure:
    endpoint: str
    reason: str

    def __str__(self) -> str:
        return f"{self.endpoint}: {self.reason}"


class Unavailable(ClientError):
    """No endpoint could serve the request; says why for each one tried."""

    def __init__(self, failures: Sequence[EndpointFailure]) -> None:
        self.failures = tuple(failures)
        if len(self.failures) == 1:
            text = str(self.failures[0])
        else:
            text = "all endpoints failed: " + "; ".join(str(f) for f in self.failures)
        super().__init__(text)
