"""The revision history of one key, as a list of generations.

A generation is one life of a key: from the put that creates it to the delete
that ends it. Each put adds a revision to the newest (open) generation; a
delete adds its revision (the tombstone) and then starts a new, empty
generation. Only the last generation is ever open.

Worked example (revisions written main.sub; the store starts at revision 1):

    rev 2   put foo=a          gen0 = [2.0]                 version 1, created 2
    rev 3   put foo=b          gen0 = [2.0, 3.0]            version 2
    rev 4   txn: put bar=x (4.0), then put foo=c (4.1: the txn's second change)
                               gen0 = [2.0, 3.0, 4.1]       version 3
    rev 5   delete foo         gen0 = [2.0, 3.0, 4.1, 5.0]  closed by the tombstone 5.0
                               gen1 = []                    open, empty
    rev 6   put foo=d          gen1 = [6.0]                 version 1 again, created 6
    rev 7   put foo=e          gen1 = [6.0, 7.0]            version 2

Reading foo "at revision r" picks the generation alive at r and, inside it,
the largest revision <= r:

    at 3 -> 3.0 (version 2)    at 4 -> 4.1 (version 3)
    at 5 -> nothing: gen0's tombstone 5.0 is <= 5, and gen1 starts at 6
    at 6 -> 6.0 (version 1, created 6)

Compaction at revision c keeps exactly what a read at any r >= c needs:

    compact(4): gen0 keeps 4.1 (the largest revision <= 4) and the tombstone 5.0;
                2.0 and 3.0 are dropped and their records deleted.
                gen0 = [4.1, 5.0], gen1 = [6.0, 7.0]
    compact(6): gen0 ended at 5 <= 6, so nobody can see it any more: dropped
                whole (4.1 and the tombstone 5.0). gen1 keeps 6.0 and 7.0.
                gen1 = [6.0, 7.0]
    compact(7): gen1 = [7.0]

A key whose last generation is empty after compaction (deleted at or before
c and not put again) has no history left, and leaves the index.

`ver` counts every revision a generation has held, including dropped ones,
so the version of revs[i] is `ver - (len(revs) - 1 - i)` even after
compaction; the tombstone also counts but is never returned by a read.
"""

from __future__ import annotations

from bisect import bisect_left

from kvstore.mvcc.revision import upper


class Generation:
    __slots__ = ("created", "revs", "ver")

    def __init__(self) -> None:
        self.created = 0  # packed revision of the put that started this life
        self.ver = 0
        self.revs: list[int] = []


class KeyIndex:
    __slots__ = ("generations",)

    def __init__(self) -> None:
        self.generations: list[Generation] = [Generation()]

    def put(self, rev: int) -> Generation:
        """Record a put at packed revision `rev`; returns the open generation."""
        g = self.generations[-1]
        if not g.revs:
            g.created = rev
        g.revs.append(rev)
        g.ver += 1
        return g

    def restore(self, rev: int, created: int, version: int) -> None:
        """Record a put read back from disk, whose older revisions may have
        been compacted away: trust the record's create revision and version."""
        g = self.generations[-1]
        if not g.revs:
            g.created = created
        g.revs.append(rev)
        g.ver = version

    def tombstone(self, rev: int) -> None:
        """Record a delete at `rev`: close the open generation, open a new one."""
        g = self.generations[-1]
        if g.revs:
            g.revs.append(rev)
            g.ver += 1
            self.generations.append(Generation())

    def is_empty(self) -> bool:
        return len(self.generations) == 1 and not self.generations[0].revs

    def get(self, at_main: int) -> tuple[int, int, int] | None:
        """(mod revision, create revision, version) as of main revision
        `at_main`, all packed revisions; None when the key did not exist."""
        limit = upper(at_main)
        gens = self.generations
        last = len(gens) - 1
        for gi in range(last, -1, -1):
            g = gens[gi]
            revs = g.revs
            if not revs or revs[0] >= limit:
                continue  # this generation starts after at_main: look older
            if gi != last and revs[-1] < limit:
                return None  # the key was deleted at or before at_main
            i = bisect_left(revs, limit) - 1
            return revs[i], g.created, g.ver - (len(revs) - 1 - i)
        return None

    def live(self) -> bool:
        """Whether the key exists at the newest revision."""
        return bool(self.generations[-1].revs)

    def compact(self, at_main: int, dropped: list[int]) -> None:
        """Forget what no read at a revision >= at_main can see; append the
        packed revisions whose records must be deleted to `dropped`."""
        limit = upper(at_main)
        gens = self.generations
        n = 0
        # Closed generations whose tombstone is at or below at_main are dead.
        while n < len(gens) - 1 and gens[n].revs[-1] < limit:
            dropped.extend(gens[n].revs)
            n += 1
        if n:
            del gens[:n]
        g = gens[0]
        # Inside the first survivor, keep the largest revision <= at_main.
        i = bisect_left(g.revs, limit) - 1
        if i > 0:
            dropped.extend(g.revs[:i])
            del g.revs[:i]

    def revisions(self) -> list[int]:
        return [r for g in self.generations for r in g.revs]
