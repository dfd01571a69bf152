"""kvstore: a Raft-replicated, etcd-compatible key-value store."""

__version__ = "0.1.0"
