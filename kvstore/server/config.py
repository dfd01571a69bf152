"""The node's configuration: etcd's flag names, each also settable through
the environment as KVSTORE_<FLAG_NAME> (for example KVSTORE_DATA_DIR).

With no flags at all a node starts a working single-member cluster on
127.0.0.1:2379 (clients) and 127.0.0.1:2380 (peers), data in ./default.kvstore.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_MAX_REQUEST_BYTES = 1536 * 1024


class ConfigError(ValueError):
    """The flags contradict each other or name something invalid."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    name: str = "default"
    data_dir: str = ""
    listen_client_urls: tuple[str, ...] = ("http://127.0.0.1:2379",)
    advertise_client_urls: tuple[str, ...] = ("http://127.0.0.1:2379",)
    listen_peer_urls: tuple[str, ...] = ("http://127.0.0.1:2380",)
    initial_advertise_peer_urls: tuple[str, ...] = ("http://127.0.0.1:2380",)
    initial_cluster: str = ""
    initial_cluster_state: str = "new"
    initial_cluster_token: str = "kvstore-cluster"
    heartbeat_interval_ms: int = 100
    election_timeout_ms: int = 1000
    snapshot_count: int = 100_000
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_txn_ops: int = 128
    request_timeout_ms: int = 5000
    watch_progress_notify_interval_ms: int = 600_000
    log_level: str = "info"

    @property
    def resolved_data_dir(self) -> str:
        return self.data_dir or f"{self.name}.kvstore"

    def cluster_map(self) -> dict[str, tuple[str, ...]]:
        """The initial cluster as name -> peer URLs (default: just this node)."""
        if not self.initial_cluster:
            return {self.name: self.initial_advertise_peer_urls}
        members: dict[str, list[str]] = {}
        for item in self.initial_cluster.split(","):
            name, sep, url = item.strip().partition("=")
            if not sep or not name or not url:
                raise ConfigError(f"--initial-cluster: cannot parse {item!r} (want name=url)")
            check_url(url, "--initial-cluster")
            members.setdefault(name, []).append(url)
        return {name: tuple(urls) for name, urls in members.items()}

    def validate(self) -> None:
        for flag, urls in (
            ("--listen-client-urls", self.listen_client_urls),
            ("--advertise-client-urls", self.advertise_client_urls),
            ("--listen-peer-urls", self.listen_peer_urls),
            ("--initial-advertise-peer-urls", self.initial_advertise_peer_urls),
        ):
            if not urls:
                raise ConfigError(f"{flag} needs at least one URL")
            for url in urls:
                check_url(url, flag)
        if self.initial_cluster_state not in ("new", "existing"):
            raise ConfigError("--initial-cluster-state must be 'new' or 'existing'")
        cluster = self.cluster_map()
        if self.name not in cluster:
            raise ConfigError(
                f"--initial-cluster has no member named {self.name!r} (the --name of this node)"
            )
        if set(cluster[self.name]) != set(self.initial_advertise_peer_urls):
            raise ConfigError(
                f"--initial-cluster gives {self.name!r} peer URLs {list(cluster[self.name])}, "
                f"but --initial-advertise-peer-urls says {list(self.initial_advertise_peer_urls)}"
            )
        if self.heartbeat_interval_ms <= 0:
            raise ConfigError("--heartbeat-interval must be positive")
        if self.election_timeout_ms < 5 * self.heartbeat_interval_ms:
            raise ConfigError("--election-timeout should be at least 5 times --heartbeat-interval")
        if self.watch_progress_notify_interval_ms <= 0:
            raise ConfigError("--watch-progress-notify-interval must be positive")
        if self.max_request_bytes <= 0 or self.max_txn_ops <= 0 or self.snapshot_count <= 0:
            raise ConfigError(
                "--max-request-bytes, --max-txn-ops and --snapshot-count must be positive"
            )
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise ConfigError("--log-level must be debug, info, warning or error")


def check_url(url: str, flag: str) -> tuple[str, int]:
    """Validate an http(s)://host:port URL and return (host, port)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.port is None:
        raise ConfigError(f"{flag}: {url!r} is not a URL like http://127.0.0.1:2379")
    if parts.scheme == "https":
        raise ConfigError(f"{flag}: TLS is not supported yet ({url})")
    return parts.hostname, parts.port


def grpc_address(url: str) -> str:
    host, port = check_url(url, "url")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


_FLAGS: tuple[tuple[str, str, type, str], ...] = (
    ("name", "name", str, "human-readable name of this member"),
    ("data-dir", "data_dir", str, "path to the data directory (default: <name>.kvstore)"),
    ("listen-client-urls", "listen_client_urls", list, "URLs to listen on for client traffic"),
    ("advertise-client-urls", "advertise_client_urls", list, "client URLs told to others"),
    ("listen-peer-urls", "listen_peer_urls", list, "URLs to listen on for peer traffic"),
    (
        "initial-advertise-peer-urls",
        "initial_advertise_peer_urls",
        list,
        "this member's peer URLs told to the rest of the cluster",
    ),
    ("initial-cluster", "initial_cluster", str, "initial members: name1=url1,name2=url2,..."),
    ("initial-cluster-state", "initial_cluster_state", str, "'new' or 'existing'"),
    ("initial-cluster-token", "initial_cluster_token", str, "token for this cluster's bootstrap"),
    ("heartbeat-interval", "heartbeat_interval_ms", int, "time (ms) of a heartbeat interval"),
    ("election-timeout", "election_timeout_ms", int, "time (ms) of an election timeout"),
    ("snapshot-count", "snapshot_count", int, "applied entries between log compactions"),
    ("max-request-bytes", "max_request_bytes", int, "largest client request accepted"),
    ("max-txn-ops", "max_txn_ops", int, "most operations in one txn"),
    ("request-timeout", "request_timeout_ms", int, "time (ms) a request may wait to apply"),
    (
        "watch-progress-notify-interval",
        "watch_progress_notify_interval_ms",
        int,
        "time (ms) between progress notifications to watchers that asked for them",
    ),
    ("log-level", "log_level", str, "debug, info, warning or error"),
)


def add_flags(parser: argparse.ArgumentParser) -> None:
    defaults = ServerConfig()
    for flag, attr, kind, help_text in _FLAGS:
        default = getattr(defaults, attr)
        shown = ",".join(default) if isinstance(default, tuple) else default
        env = "KVSTORE_" + flag.upper().replace("-", "_")
        parser.add_argument(
            f"--{flag}",
            dest=attr,
            type=str if kind is list else kind,
            default=None,
            help=f"{help_text} [default: {shown!r}; env {env}]",
        )


def from_namespace(ns: argparse.Namespace, environ: dict[str, str] | None = None) -> ServerConfig:
    """Build the config: a flag wins over its environment variable, which
    wins over the default."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for flag, attr, kind, _ in _FLAGS:
        raw = getattr(ns, attr, None)
        env_name = "KVSTORE_" + flag.upper().replace("-", "_")
        if raw is None and env.get(env_name):
            raw = env[env_name]
            if kind is int:
                try:
                    raw = int(raw)
                except ValueError as exc:
                    raise ConfigError(f"{env_name}={raw!r} is not a whole number") from exc
        if raw is None:
            continue
        if kind is list:
            raw = tuple(u.strip() for u in str(raw).split(",") if u.strip())
        values[attr] = raw
    # Like etcd: advertising defaults follow what we listen on when only
    # the listening side is given.
    if "listen_client_urls" in values and "advertise_client_urls" not in values:
        values["advertise_client_urls"] = values["listen_client_urls"]
    if "listen_peer_urls" in values and "initial_advertise_peer_urls" not in values:
        values["initial_advertise_peer_urls"] = values["listen_peer_urls"]
    cfg = ServerConfig(**values)  # type: ignore[arg-type]
    cfg.validate()
    return cfg


def parse_args(argv: Sequence[str], environ: dict[str, str] | None = None) -> ServerConfig:
    parser = argparse.ArgumentParser(prog="kvstore serve")
    add_flags(parser)
    return from_namespace(parser.parse_args(argv), environ)
