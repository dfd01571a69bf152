"""Peer-to-peer transport: Raft messages and snapshots between members over
gRPC, using kvstore's own peer protocol (proto/peer.proto).

- peer.py: PeerTransport, the sending side (one batched stream per peer,
  snapshots on their own stream, reconnect with backoff);
- receiver.py: the gRPC Peer service that hands inbound messages to the node;
- codec.py: conversion between the Raft core's value types and protobuf;
- _grpc.py: the one module that touches grpc and the generated stubs.
"""
