"""Edge cases of the core's small parts: RaftLog and Unstable, Progress and
Inflights, quorum arithmetic, the ReadIndex queue and conf-change rules."""

from __future__ import annotations

import pytest

from kvstore.raft.confchange import apply_conf_change
from kvstore.raft.errors import LogCompacted, LogUnavailable
from kvstore.raft.log import RaftLog, Unstable
from kvstore.raft.progress import Inflights, Progress, ProgressState
from kvstore.raft.quorum import VoteResult, committed_index, majority, vote_result
from kvstore.raft.readonly import ReadOnlyQueue
from kvstore.raft.storage import MemoryStorage
from kvstore.raft.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    Snapshot,
    SnapshotMeta,
)

CT = ConfChangeType


def ents(*pairs: tuple[int, int]) -> list[Entry]:
    """Entries from (index, term) pairs."""
    return [Entry(term=t, index=i, data=f"{i}.{t}".encode()) for i, t in pairs]


def stored_log(*pairs: tuple[int, int]) -> RaftLog:
    storage = MemoryStorage()
    storage.append(ents(*pairs))
    return RaftLog(storage)


# -- Unstable -----------------------------------------------------------------------


def test_unstable_truncate_and_append_extends_replaces_or_cuts() -> None:
    u = Unstable(5)
    u.truncate_and_append(ents((5, 1), (6, 1)))
    u.truncate_and_append(ents((7, 1)))  # directly after: extend
    assert [(e.index, e.term) for e in u.entries] == [(5, 1), (6, 1), (7, 1)]
    u.truncate_and_append(ents((6, 2)))  # inside: cut and append
    assert [(e.index, e.term) for e in u.entries] == [(5, 1), (6, 2)]
    u.truncate_and_append(ents((3, 3), (4, 3)))  # before the offset: replace all
    assert u.offset == 3
    assert [(e.index, e.term) for e in u.entries] == [(3, 3), (4, 3)]


def test_unstable_term_comes_from_the_snapshot_below_the_offset() -> None:
    u = Unstable(1)
    u.restore(Snapshot(SnapshotMeta(index=10, term=4)))
    assert (u.offset, u.maybe_first_index(), u.maybe_last_index()) == (11, 11, 10)
    assert u.maybe_term(10) == 4
    assert u.maybe_term(9) is None
    assert u.maybe_term(11) is None


def test_unstable_stable_to_ignores_a_superseded_ready() -> None:
    u = Unstable(5)
    u.truncate_and_append(ents((5, 1), (6, 1)))
    # The Ready held (6, term 1), but the tail was replaced meanwhile.
    u.truncate_and_append(ents((6, 2)))
    u.stable_to(6, 1)
    assert [(e.index, e.term) for e in u.entries] == [(5, 1), (6, 2)]
    u.stable_to(5, 1)
    assert (u.offset, [(e.index, e.term) for e in u.entries]) == (6, [(6, 2)])


# -- RaftLog ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last_index", "last_term", "up_to_date"),
    [
        (3, 3, True),  # higher last term wins even when shorter
        (1, 3, True),
        (4, 2, True),  # same last term: at least as long
        (3, 2, True),
        (2, 2, False),
        (9, 1, False),  # lower last term loses even when longer
    ],
)
def test_is_up_to_date_compares_last_term_then_length(
    last_index: int, last_term: int, up_to_date: bool
) -> None:
    log = stored_log((1, 1), (2, 2), (3, 2))
    assert log.is_up_to_date(last_index, last_term) is up_to_date


def test_find_conflict_returns_the_first_new_or_conflicting_index() -> None:
    log = stored_log((1, 1), (2, 2), (3, 2))
    assert log.find_conflict(tuple(ents((1, 1), (2, 2)))) == 0
    assert log.find_conflict(tuple(ents((2, 2), (3, 2), (4, 3)))) == 4
    assert log.find_conflict(tuple(ents((2, 2), (3, 3), (4, 3)))) == 3
    assert log.find_conflict(()) == 0


def test_maybe_append_commits_no_further_than_the_last_new_entry() -> None:
    log = stored_log((1, 1), (2, 1))
    assert log.maybe_append(2, 1, committed=10, entries=tuple(ents((3, 2)))) == 3
    assert log.committed == 3
    assert log.maybe_append(3, 9, committed=10, entries=()) is None


def test_a_conflict_below_the_commit_index_is_a_loud_error() -> None:
    log = stored_log((1, 1), (2, 1), (3, 1))
    log.commit_to(3)
    with pytest.raises(AssertionError):
        log.maybe_append(1, 1, committed=3, entries=tuple(ents((2, 5))))
    with pytest.raises(AssertionError):
        log.commit_to(4)  # beyond the last index


def test_slice_spans_storage_and_unstable_and_respects_max_bytes() -> None:
    log = stored_log((1, 1), (2, 1))
    log.append(ents((3, 2), (4, 2)))
    assert [e.index for e in log.slice(1, 5)] == [1, 2, 3, 4]
    assert [e.index for e in log.slice(2, 4)] == [2, 3]
    assert [e.index for e in log.slice(1, 5, max_bytes=1)] == [1]  # at least one
    one_entry = len(b"1.1") + 16
    assert [e.index for e in log.slice(1, 5, max_bytes=2 * one_entry)] == [1, 2]
    with pytest.raises(LogUnavailable):
        log.slice(1, 6)


def test_slice_below_the_first_index_raises_log_compacted() -> None:
    storage = MemoryStorage()
    storage.append(ents((1, 1), (2, 1), (3, 1), (4, 1)))
    storage.compact(2)
    log = RaftLog(storage)
    assert log.first_index() == 3
    assert log.term(2) == 1  # the compaction point keeps its term
    assert log.term(1) is None
    with pytest.raises(LogCompacted):
        log.slice(2, 4)
    assert (log.committed, log.applied) == (2, 2)


def test_next_committed_entries_respects_applying_and_max_apply_bytes() -> None:
    storage = MemoryStorage()
    storage.append(ents((1, 1), (2, 1), (3, 1)))
    log = RaftLog(storage, max_apply_bytes=1)
    log.commit_to(3)
    assert [e.index for e in log.next_committed_entries()] == [1]
    log.applying = 1
    assert [e.index for e in log.next_committed_entries()] == [2]
    log.applied_to(3)
    assert log.next_committed_entries() == []
    assert not log.has_next_committed_entries()


def test_append_below_the_commit_index_is_a_loud_error() -> None:
    log = stored_log((1, 1), (2, 1))
    log.commit_to(2)
    with pytest.raises(AssertionError):
        log.append(ents((2, 3)))


# -- Progress and Inflights --------------------------------------------------------------


def test_inflights_is_a_bounded_fifo() -> None:
    inf = Inflights(3)
    for i in (5, 7, 9):
        inf.add(i)
    assert inf.full()
    with pytest.raises(AssertionError):
        inf.add(11)
    inf.free_le(7)
    assert len(inf) == 1 and not inf.full()
    inf.free_le(6)  # nothing left at or below 6
    assert len(inf) == 1
    inf.free_first()
    inf.free_first()  # freeing an empty window is harmless
    assert len(inf) == 0


def test_progress_probe_sends_one_message_at_a_time() -> None:
    pr = Progress(match=0, next=6, max_inflight=4)
    assert not pr.is_paused()
    pr.probe_sent = True
    assert pr.is_paused()
    assert pr.maybe_update(5)
    assert (pr.match, pr.next, pr.probe_sent) == (5, 6, False)
    assert not pr.maybe_update(4)  # stale acknowledgement


def test_progress_rejections_in_probe_walk_back_using_the_hint() -> None:
    pr = Progress(match=2, next=10, max_inflight=4)
    assert not pr.maybe_decr_to(rejected=7, hint=3)  # not what we sent: stale
    assert pr.maybe_decr_to(rejected=9, hint=3)
    assert pr.next == 4
    pr2 = Progress(match=2, next=10, max_inflight=4)
    assert pr2.maybe_decr_to(rejected=9, hint=0)
    assert pr2.next == 3  # never below match + 1


def test_progress_rejections_in_replicate_fall_back_to_match() -> None:
    pr = Progress(match=5, next=6, max_inflight=4)
    pr.become_replicate()
    pr.next = 9
    assert not pr.maybe_decr_to(rejected=5, hint=5)  # at or below match: stale
    assert pr.maybe_decr_to(rejected=8, hint=6)
    assert pr.next == 6


def test_progress_snapshot_state_pauses_and_resumes_after_the_snapshot() -> None:
    pr = Progress(match=3, next=4, max_inflight=4)
    pr.become_snapshot(20)
    assert pr.is_paused()
    pr.become_probe()
    assert (pr.state, pr.next) == (ProgressState.PROBE, 21)
    pr.become_replicate()
    assert (pr.state, pr.next) == (ProgressState.REPLICATE, 4)
    for i in range(4):
        pr.inflights.add(10 + i)
    assert pr.is_paused()


# -- quorum ------------------------------------------------------------------------------


def test_majority_of_even_and_odd_voter_counts() -> None:
    assert [majority(n) for n in range(1, 8)] == [1, 2, 2, 3, 3, 4, 4]


def test_committed_index_is_the_highest_index_held_by_a_majority() -> None:
    assert committed_index({1, 2, 3}, {1: 9, 2: 5, 3: 2}) == 5
    assert committed_index({1, 2, 3, 4}, {1: 9, 2: 5, 3: 2, 4: 1}) == 2
    assert committed_index({1, 2, 3}, {1: 9}) == 0  # missing voters count as 0
    assert committed_index({1}, {1: 4, 2: 9, 3: 9}) == 4  # non-voters ignored
    assert committed_index(set(), {1: 9}) == 0


def test_vote_result_wins_loses_or_waits() -> None:
    voters = {1, 2, 3, 4, 5}
    assert vote_result(voters, {1: True, 2: True}) == VoteResult.PENDING
    assert vote_result(voters, {1: True, 2: True, 3: True}) == VoteResult.WON
    assert vote_result(voters, {1: True, 2: False, 3: False}) == VoteResult.PENDING
    assert vote_result(voters, {1: True, 2: False, 3: False, 4: False}) == VoteResult.LOST
    assert vote_result(voters, {1: True, 6: True, 7: True}) == VoteResult.PENDING
    assert vote_result({1, 2}, {1: True, 2: False}) == VoteResult.LOST


# -- ReadIndex queue and conf changes --------------------------------------------------------


def test_read_only_queue_releases_in_order_through_a_context() -> None:
    q = ReadOnlyQueue()
    assert q.add(5, b"a") is not None
    assert q.add(6, b"b", frm=2) is not None
    assert q.add(6, b"a") is None  # duplicate context
    q.add(7, b"c")
    assert q.last_context() == b"c"
    released = q.release_through(b"b")
    assert [(r.index, r.context, r.frm) for r in released] == [(5, b"a", 0), (6, b"b", 2)]
    assert len(q) == 1
    assert q.release_through(b"zzz") == []
    assert q.ack(b"zzz", 1) is None


def test_apply_conf_change_promotes_demotes_and_removes() -> None:
    cs = ConfState(frozenset({1, 2}), frozenset({3}))
    promoted = apply_conf_change(cs, ConfChange(CT.ADD_VOTER, 3))
    assert promoted == ConfState(frozenset({1, 2, 3}), frozenset())
    # A voter cannot be turned into a learner by ADD_LEARNER.
    assert apply_conf_change(cs, ConfChange(CT.ADD_LEARNER, 1)) == cs
    removed = apply_conf_change(cs, ConfChange(CT.REMOVE_NODE, 3))
    assert removed == ConfState(frozenset({1, 2}), frozenset())


def test_conf_change_encoding_round_trips() -> None:
    for kind in CT:
        cc = ConfChange(kind, 2**40 + 7)
        assert ConfChange.decode(cc.encode()) == cc
