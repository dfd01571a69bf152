"""Finding the watchers a key concerns, in time proportional to the answer.

`WatcherGroup` keeps single-key watchers in a dict (key -> watchers) and
range watchers in an `IntervalIndex`: watchers with the same [lo, hi) share
one slot (a thousand watchers on one prefix are one interval), and the
distinct intervals live in centered interval trees.

The trees are static, so inserts use the logarithmic method (Bentley and
Saxe): a list of trees whose sizes grow like binary digits; a new interval
is a tree of one, merged (rebuilt) with the trees no larger than what it
carries. An insert costs O(log^2 n) amortized, a stab O(log^2 n + answers).
An emptied slot stays in its tree (stabs skip it cheaply) and can be revived;
when dead slots outnumber live ones, everything is rebuilt into one tree.

Centered tree: each node holds a center key and the intervals containing it,
sorted by lo (ascending) and by hi (descending, unbounded first); intervals
wholly left of the center go to the left child, wholly right to the right.
For a point k < center, the node's intervals containing k are a prefix of
the by-lo list (they all reach past the center); for k >= center, a prefix
of the by-hi list. Centers are median lo values, so depth is O(log n).
"""

from __future__ import annotations

from collections.abc import Iterator

from kvstore.mvcc.watch_types import Watcher

Members = dict[Watcher, None]
"""An insertion-ordered set of watchers."""


class _Slot:
    __slots__ = ("hi", "in_tree", "lo", "members")

    def __init__(self, lo: bytes, hi: bytes | None) -> None:
        self.lo = lo
        self.hi = hi
        self.members: Members = {}
        self.in_tree = False


def _hi(slot: _Slot) -> bytes:
    assert slot.hi is not None
    return slot.hi


class _Node:
    __slots__ = ("by_hi", "by_lo", "center", "left", "right")

    def __init__(self, slots: list[_Slot]) -> None:
        # `slots` is sorted by lo.
        self.center = slots[len(slots) // 2].lo
        c = self.center
        here: list[_Slot] = []
        left: list[_Slot] = []
        right: list[_Slot] = []
        for s in slots:
            if s.lo > c:
                right.append(s)
            elif s.hi is not None and s.hi <= c:
                left.append(s)
            else:
                here.append(s)
        self.by_lo = here
        bounded = [s for s in here if s.hi is not None]
        bounded.sort(key=_hi, reverse=True)
        self.by_hi = [s for s in here if s.hi is None] + bounded
        self.left = _Node(left) if left else None
        self.right = _Node(right) if right else None


class _Tree:
    __slots__ = ("root", "slots")

    def __init__(self, slots: list[_Slot]) -> None:
        slots.sort(key=lambda s: s.lo)
        self.slots = slots
        self.root = _Node(slots) if slots else None

    def stab(self, key: bytes) -> Iterator[_Slot]:
        node = self.root
        while node is not None:
            if key < node.center:
                for s in node.by_lo:
                    if s.lo > key:
                        break
                    yield s
                node = node.left
            else:
                for s in node.by_hi:
                    if s.hi is not None and s.hi <= key:
                        break
                    yield s
                node = node.right


class IntervalIndex:
    """Watchers grouped by their [lo, hi) interval (hi None: unbounded)."""

    __slots__ = ("_dead", "_slots", "_trees")

    def __init__(self) -> None:
        self._slots: dict[tuple[bytes, bytes | None], _Slot] = {}
        self._trees: list[_Tree] = []
        self._dead = 0

    def add(self, w: Watcher) -> None:
        ident = (w.lo, w.hi)
        slot = self._slots.get(ident)
        if slot is None:
            slot = self._slots[ident] = _Slot(w.lo, w.hi)
        if not slot.members and slot.in_tree:
            self._dead -= 1
        slot.members[w] = None
        if not slot.in_tree:
            self._insert(slot)

    def remove(self, w: Watcher) -> None:
        slot = self._slots.get((w.lo, w.hi))
        if slot is None or w not in slot.members:
            return
        del slot.members[w]
        if not slot.members:
            self._dead += 1
            if self._dead > 16 and self._dead * 2 > len(self._slots):
                self._rebuild()

    def stab(self, key: bytes) -> Iterator[Members]:
        """The watcher sets whose interval contains `key` (maybe empty ones)."""
        for tree in self._trees:
            for slot in tree.stab(key):
                yield slot.members

    def _insert(self, slot: _Slot) -> None:
        slot.in_tree = True
        carry = [slot]
        trees = self._trees
        while trees and len(trees[-1].slots) <= len(carry):
            carry.extend(trees.pop().slots)
        trees.append(_Tree(carry))

    def _rebuild(self) -> None:
        live = [s for s in self._slots.values() if s.members]
        self._slots = {(s.lo, s.hi): s for s in live}
        self._trees = [_Tree(live)] if live else []
        self._dead = 0


class WatcherGroup:
    """A set of watchers indexed by the keys they cover."""

    __slots__ = ("_keys", "_ranges", "members")

    def __init__(self) -> None:
        self._keys: dict[bytes, Members] = {}
        self._ranges = IntervalIndex()
        self.members: Members = {}

    def __len__(self) -> int:
        return len(self.members)

    def __contains__(self, w: Watcher) -> bool:
        return w in self.members

    def add(self, w: Watcher) -> None:
        self.members[w] = None
        if w.single_key:
            self._keys.setdefault(w.key, {})[w] = None
        else:
            self._ranges.add(w)

    def remove(self, w: Watcher) -> None:
        if w not in self.members:
            return
        del self.members[w]
        if w.single_key:
            by_key = self._keys[w.key]
            del by_key[w]
            if not by_key:
                del self._keys[w.key]
        else:
            self._ranges.remove(w)

    def matching(self, key: bytes) -> Iterator[Members]:
        """The watcher sets covering `key` (each watcher is in exactly one)."""
        exact = self._keys.get(key)
        if exact is not None:
            yield exact
        yield from self._ranges.stab(key)
