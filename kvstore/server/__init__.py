"""The asyncio node: drives the Raft core, persists, applies, serves."""
