"""Membership changes, one at a time.

kvstore changes membership one node at a time (no joint consensus). A
configuration takes effect on each node as soon as its entry is appended to
that node's log, not when it commits (Raft dissertation, section 4.1), and a
leader proposes a change only when (a) every earlier change in its log is
committed and (b) it has committed an entry of its own term. Any two
configurations that differ by one node have overlapping majorities, so at
most one leader can be elected per term.
"""

from __future__ import annotations

from kvstore.raft.errors import ConfChangeRejected
from kvstore.raft.types import ConfChange, ConfChangeType, ConfState


def apply_conf_change(cs: ConfState, cc: ConfChange) -> ConfState:
    """The configuration after `cc`. Changes that make no sense are ignored
    here (returned unchanged); validate_conf_change rejects them up front."""
    voters, learners = set(cs.voters), set(cs.learners)
    node = cc.node_id
    if cc.type is ConfChangeType.ADD_VOTER:
        learners.discard(node)
        voters.add(node)
    elif cc.type is ConfChangeType.ADD_LEARNER:
        if node in voters:
            return cs
        learners.add(node)
    elif cc.type is ConfChangeType.REMOVE_NODE:
        voters.discard(node)
        learners.discard(node)
    return ConfState(frozenset(voters), frozenset(learners))


def validate_conf_change(cs: ConfState, cc: ConfChange) -> None:
    """Raise ConfChangeRejected for a change the leader must not propose."""
    node = cc.node_id
    if node <= 0:
        raise ConfChangeRejected(f"invalid node id {node}")
    if cc.type is ConfChangeType.ADD_VOTER and node in cs.voters:
        raise ConfChangeRejected(f"node {node} is already a voter")
    if cc.type is ConfChangeType.ADD_LEARNER and node in cs.members():
        raise ConfChangeRejected(f"node {node} is already a member")
    if cc.type is ConfChangeType.REMOVE_NODE:
        if node not in cs.members():
            raise ConfChangeRejected(f"node {node} is not a member")
        if cs.voters == {node}:
            raise ConfChangeRejected("cannot remove the last voter")
