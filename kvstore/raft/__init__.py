"""The Raft consensus algorithm as a deterministic, sans-IO state machine."""
