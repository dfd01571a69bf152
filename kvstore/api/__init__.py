"""The etcd-compatible gRPC API edge: servicers, and the table that maps
domain errors to etcd's gRPC status codes and messages.

The generated protobuf/gRPC modules live in kvstore.api.pb (from proto/, via
`make proto`).
"""
