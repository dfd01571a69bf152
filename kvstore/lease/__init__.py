"""The lessor: leases granted, kept alive and revoked (see lessor.py)."""
