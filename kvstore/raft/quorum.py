"""Majority arithmetic over a set of voters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def majority(n_voters: int) -> int:
    """The smallest number of voters that forms a quorum."""
    return n_voters // 2 + 1


def committed_index(voters: Iterable[int], match: Mapping[int, int]) -> int:
    """The highest index that a quorum of voters has durably stored.

    Sort the voters' match indexes in descending order; the entry at
    position majority-1 is held by at least a majority. An empty voter set
    commits nothing.
    """
    acked = sorted((match.get(v, 0) for v in voters), reverse=True)
    if not acked:
        return 0
    return acked[majority(len(acked)) - 1]


class VoteResult:
    WON = "won"
    LOST = "lost"
    PENDING = "pending"


def vote_result(voters: Iterable[int], votes: Mapping[int, bool]) -> str:
    """Tally granted/rejected votes among the voters."""
    voter_list = list(voters)
    need = majority(len(voter_list))
    granted = sum(1 for v in voter_list if votes.get(v) is True)
    rejected = sum(1 for v in voter_list if votes.get(v) is False)
    if granted >= need:
        return VoteResult.WON
    if rejected >= need or len(voter_list) - rejected < need:
        return VoteResult.LOST
    return VoteResult.PENDING
