"""The Raft core under the seeded fault simulator (see cluster.py).

Seeds are split into chunks so pytest-xdist can spread them over cores. A
failure names the seed, the broken invariant, the last events and a
one-line replay command.
"""

from __future__ import annotations

import pytest

from tests.sim.replay import run_seed

CHUNKS = 20


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_invariants_hold_for_every_seed(chunk: int, request: pytest.FixtureRequest) -> None:
    n_seeds: int = request.config.getoption("--sim-seeds")
    first: int = request.config.getoption("--sim-first-seed")
    seeds = range(first + chunk, first + n_seeds, CHUNKS)
    committed = 0
    for seed in seeds:
        cluster = run_seed(seed)
        committed += cluster.check.committed_max
    if seeds:
        # A run that commits nothing checks nothing: make sure work happened.
        assert committed / len(seeds) > 10
