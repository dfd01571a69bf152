"""Prove the simulator's checker can fail.

Each test switches on one deliberate bug in the Raft core (Config.bugs) and
runs seeds in order until the checker reports a safety violation. It must do
so within a bounded number of seeds, and for the right reason. A liveness
failure does not count: these bugs break safety, and the checker must say so.

Budgets are several times the observed first catch, and each run stops at
its first catch, so these tests are fast while the core behaves as it does
today; a budget exhausted means the checker has gone blind to that bug.
"""

from __future__ import annotations

from tests.sim.checker import InvariantViolation
from tests.sim.replay import run_seed


def first_violation(bug: str, budget: int, profile: str = "mixed") -> tuple[int, str]:
    for seed in range(budget):
        try:
            run_seed(seed, bug, profile)
        except InvariantViolation as exc:
            if exc.invariant != "liveness":
                return seed, exc.invariant
    raise AssertionError(f"planted bug {bug!r} survived {budget} seeds of profile {profile!r}")


def test_planted_vote_for_stale_log_is_caught() -> None:
    # Raft §5.4.1: a voter must refuse a candidate whose log is behind its own.
    _, invariant = first_violation("vote_for_stale_log", budget=100)
    assert invariant in {"leader completeness", "committed entry lost", "state machine safety"}


def test_planted_read_index_without_quorum_is_caught() -> None:
    # Raft §8: a leader must confirm it still leads before answering a read.
    _, invariant = first_violation("read_index_without_quorum", budget=200)
    assert invariant == "read index"


def test_planted_vote_without_sync_is_caught() -> None:
    # Raft Figure 2: term and vote are persisted before answering any RPC.
    _, invariant = first_violation("vote_without_sync", budget=600)
    assert invariant in {"election safety", "log matching", "leader completeness"}


def test_planted_commit_previous_term_is_caught() -> None:
    # Raft §5.4.2 and Figure 8: never commit an earlier term's entry by
    # counting replicas. The figure8 profile makes such histories likely.
    _, invariant = first_violation("commit_previous_term", budget=2000, profile="figure8")
    assert invariant in {"leader completeness", "committed entry lost", "state machine safety"}
