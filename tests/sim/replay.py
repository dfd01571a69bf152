"""Run one simulation seed:
`python -m tests.sim.replay SEED [--bug NAME] [--profile NAME]`.

This is the one-line repro command printed by a failing simulation test.
"""

from __future__ import annotations

import argparse
import sys

from kvstore.raft.config import PlantedBugs
from tests.sim.checker import InvariantViolation
from tests.sim.cluster import PROFILES, Cluster

BUG_NAMES = tuple(PlantedBugs.__dataclass_fields__)


def repro_command(seed: int, bug: str | None = None, profile: str = "mixed") -> str:
    cmd = f".venv/bin/python -m tests.sim.replay {seed}"
    if bug:
        cmd += f" --bug {bug}"
    if profile != "mixed":
        cmd += f" --profile {profile}"
    return cmd


def run_seed(seed: int, bug: str | None = None, profile: str = "mixed") -> Cluster:
    """Run one seed to the end; raises InvariantViolation on a failure."""
    bugs = PlantedBugs(**{bug: True}) if bug else PlantedBugs()
    cluster = Cluster(seed, bugs, profile)
    try:
        cluster.run()
    except InvariantViolation as exc:
        exc.add_note(f"seed {seed}: replay with `{repro_command(seed, bug, profile)}`")
        exc.add_note("last events:\n" + cluster.describe())
        raise
    return cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("seed", type=int)
    parser.add_argument("--bug", choices=BUG_NAMES, help="switch on one planted bug")
    parser.add_argument("--profile", choices=PROFILES, default="mixed")
    args = parser.parse_args(argv)
    try:
        cluster = run_seed(args.seed, args.bug, args.profile)
    except InvariantViolation as exc:
        print(f"FAILED: {exc}")
        for note in getattr(exc, "__notes__", []):
            print(note)
        return 1
    c = cluster.check
    print(
        f"seed {args.seed} ok: {cluster.p}\n"
        f"committed {c.committed_max}, terms {len(c.leaders)}, reads served {c.reads_served}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
