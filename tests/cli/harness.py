"""Run the same command through etcdctl and through `kvstore`, and compare.

A Trio is three single-node clusters that always receive the same
commands, so their revisions stay equal: `ref` (etcd, driven by etcdctl),
`etcd` (etcd, driven by the kvstore CLI) and `kvstore` (kvstore, driven by
the kvstore CLI). Outputs are normalised with tests/compat/compare.py
(IDs, sizes, versions, terms, addresses, durations) and must then be equal.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.compat.compare import Normalised, normalise
from tests.procs import Cluster, CtlResult, child_env, etcdctl, hostport

CLI_TIMEOUT_S = 30.0
# etcdctl exits 128 (ExitBadArgs) on a bad command line; kvstore exits 2,
# the usual usage-error code (click's), as its issue asks.
ETCDCTL_BAD_ARGS = 128
USAGE_ERROR = 2

# What compare.normalise leaves alone in `-w fields` and in hashkv's simple
# output but legitimately differs between etcd and kvstore (or run to run).
_FIELDS = re.compile(r'^"(DBSize|RaftIndex|RaftAppliedIndex|Hash|Took|Version)" : .*$', re.M)
_HASH_LINE = re.compile(r"^(<client:\d+>), \d+$", re.M)


def _more_normal(n: Normalised, args: Sequence[str]) -> Normalised:
    if not isinstance(n.stdout, str):
        return n
    text = _FIELDS.sub(lambda m: f'"{m.group(1)}" : <{m.group(1)}>', n.stdout)
    if tuple(args[:2]) == ("endpoint", "hashkv"):
        text = _HASH_LINE.sub(lambda m: f"{m.group(1)}, <hash>", text)
    if "table" in args:
        text = _table_cells(text, id_column=tuple(args[:2]) == ("member", "list"))
    return dataclasses.replace(n, stdout=text)


def _table_cells(text: str, id_column: bool) -> str:
    """A table without its padding (column widths follow the random member
    IDs); the exact layout is checked in test_table.py."""
    lines = []
    for line in text.splitlines():
        if line.startswith("+"):
            lines.append("+" + "+".join("-" for _ in line.strip("+").split("+")) + "+")
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if id_column and cells[0] != "ID":
                cells[0] = "<id>"
            lines.append("|" + "|".join(cells) + "|")
        else:
            lines.append(line)
    return "\n".join(lines)


def kvstore_bin() -> str:
    script = Path(sys.executable).with_name("kvstore")
    if not script.exists():
        raise RuntimeError(f"{script} is missing: pip install -e . first")
    return str(script)


def kvstore_cli(
    endpoints: str | Sequence[str],
    *args: str,
    stdin: str | bytes | None = None,
    dial_timeout: str = "2s",
    timeout: float = CLI_TIMEOUT_S,
) -> CtlResult:
    """Run `kvstore <args>` with etcdctl's global flags (as tests.procs.etcdctl)."""
    eps = [endpoints] if isinstance(endpoints, str) else list(endpoints)
    argv = [
        kvstore_bin(),
        "--endpoints=" + ",".join(hostport(e) for e in eps),
        f"--dial-timeout={dial_timeout}",
        "--command-timeout=5s",
        *args,
    ]
    data = stdin.encode() if isinstance(stdin, str) else stdin
    proc = subprocess.run(
        argv, input=data, capture_output=True, timeout=timeout, env=child_env(), check=False
    )
    return CtlResult(
        tuple(args),
        proc.returncode,
        proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"),
    )


@dataclass
class Trio:
    ref: Cluster
    etcd: Cluster
    kvstore: Cluster
    mismatches: list[str] = field(default_factory=list)

    def check(
        self, *args: str, stdin: str | bytes | None = None, on_kvstore: bool = True
    ) -> tuple[CtlResult, CtlResult, CtlResult | None]:
        """Run on all three; record any difference from etcdctl's output."""
        ref = etcdctl(self.ref.endpoints(), *args, stdin=stdin)
        if ref.stdout.startswith("NAME:") or "unknown flag" in ref.stderr:
            raise AssertionError(f"etcdctl rejected the test's command line:\n{ref.describe()}")
        on_etcd = kvstore_cli(self.etcd.endpoints(), *args, stdin=stdin)
        subjects = [("kvstore CLI -> etcd", self.etcd, on_etcd)]
        on_kvs = None
        if on_kvstore:
            on_kvs = kvstore_cli(self.kvstore.endpoints(), *args, stdin=stdin)
            subjects.append(("kvstore CLI -> kvstore", self.kvstore, on_kvs))
        want = _more_normal(normalise(ref, self.ref), args)
        if want.returncode == ETCDCTL_BAD_ARGS:
            want = dataclasses.replace(want, returncode=USAGE_ERROR)
        for label, cluster, res in subjects:
            got = _more_normal(normalise(res, cluster), args)
            if got != want:
                self.mismatches.append(
                    f"$ {' '.join(args)}"
                    + (f"  (stdin: {stdin!r:.200})" if stdin else "")
                    + f"\n== etcdctl -> etcd (exit {ref.returncode}):\n{ref.stdout}"
                    + "".join(f"[stderr] {ln}\n" for ln in ref.error_lines)
                    + f"== {label} (exit {res.returncode}):\n{res.stdout}"
                    + "".join(f"[stderr] {ln}\n" for ln in res.error_lines)
                    + f"== normalised: want\n{want}\n== got\n{got}\n"
                )
        return ref, on_etcd, on_kvs

    def write(self, extra_endpoint: str | None, *args: str) -> CtlResult:
        """A write outside `check` goes to all three clusters, so that their
        revisions (and hashes) stay equal; the kvstore CLI is given
        `extra_endpoint` first (say, a dead one). Returns the result on kvstore."""
        first = [extra_endpoint] if extra_endpoint else []
        etcdctl(self.ref.endpoints(), *args)
        kvstore_cli([*first, *self.etcd.endpoints()], *args)
        return kvstore_cli([*first, *self.kvstore.endpoints()], *args)

    def verify(self) -> None:
        mismatches, self.mismatches = self.mismatches, []
        if mismatches:
            raise AssertionError(
                f"{len(mismatches)} difference(s) from etcdctl:\n\n" + "\n".join(mismatches)
            )
