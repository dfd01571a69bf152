"""Entry point of the `kvstore` command.

`kvstore serve [flags]` runs a member (see `kvstore serve --help`). The
client commands (put, get, ...) arrive with the CLI issue; until then they
say so and exit with status 1.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from kvstore import __version__

USAGE = """usage: kvstore <command> [flags]

commands:
  serve      run a kvstore member (etcd's flags; `kvstore serve --help`)

`kvstore --version` prints the version.
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    if args[0] == "--version":
        print(f"kvstore {__version__}")
        return 0
    if args[0] == "serve":
        from kvstore.cli.serve import main as serve_main

        return serve_main(args[1:])
    print(
        f"kvstore: unknown command {args[0]!r} (client commands are not available yet)",
        file=sys.stderr,
    )
    print(USAGE, end="", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
