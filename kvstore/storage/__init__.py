"""LevelDB (plyvel) persistence: raft log, hard state, MVCC data and meta."""
