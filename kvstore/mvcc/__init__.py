"""Multi-version concurrency control with etcd revision semantics."""
