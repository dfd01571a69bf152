"""Peer-to-peer transport: Raft messages and snapshots between members over
gRPC, using kvstore's own peer protocol (proto/peer.proto).

codec.py converts between the Raft core's value types and the protobuf
messages; it is the only module here that touches generated code.
"""
