"""Child process of test_crash_mvcc: a runtime-shaped write loop.

Each step is one "Ready": a Raft entry, the hard state, the MVCC write the
entry carries and the applied index, all in ONE synced WriteBatch. Only after
the batch is committed does the child print `ack <index> <revision> <kind>`.
The parent SIGKILLs it at an arbitrary moment and checks the disk.

Usage: python -m tests.unit.mvcc_crash_child DB_PATH SEED
"""

from __future__ import annotations

import random
import sys

from kvstore.mvcc.store import MVCCStore
from kvstore.mvcc.types import DeleteRangeRequest, PutRequest, TxnRequest
from kvstore.raft.types import Entry, HardState
from kvstore.storage.db import Database
from kvstore.storage.log_store import LogStore

TXN_KEYS = (b"t/a", b"t/b", b"t/c")


def main() -> None:
    path, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    db = Database(path)
    log, store = LogStore(db), MVCCStore(db)
    index = store.applied_index
    while True:
        index += 1
        roll = rng.random()
        with db.batch(sync=True) as batch:
            entry = Entry(term=1, index=index, data=b"step %d" % index)
            log.save_ready(batch, HardState(1, 1, index), [entry], None)
            with store.writing(batch):
                value = b"%d" % index
                if roll < 0.5:
                    kind = "put"
                    store.put(PutRequest(b"p/%d" % (index % 17), value))
                elif roll < 0.9:
                    kind = "txn"
                    store.txn(TxnRequest(success=tuple(PutRequest(k, value) for k in TXN_KEYS)))
                else:
                    kind = "del"
                    store.delete_range(DeleteRangeRequest(b"p/", b"p0"))
                store.set_applied_index(index)
        sys.stdout.write(f"ack {index} {store.current_revision} {kind}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
