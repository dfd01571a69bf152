# mypy: ignore-errors
"""Generated protobuf and gRPC modules: do not edit; run `make proto`.

Sources: proto/*.proto; generator: proto/generate.py (grpcio-tools 1.85.1).

Every module here registers its descriptors in POOL, a descriptor pool of
our own, not in protobuf's default pool, so that another etcd client library
loaded in the same process (one that defines etcdserverpb too) cannot clash.
"""

from google.protobuf import descriptor_pool

POOL = descriptor_pool.DescriptorPool()
