"""Entry point of the `kvstore` command.

Only `--version` works today. `serve` and the client commands arrive with
the server; until then they say so and exit with status 1.
"""

from __future__ import annotations

import argparse
import sys

from kvstore import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kvstore", description="etcd-compatible key-value store")
    parser.add_argument("--version", action="version", version=f"kvstore {__version__}")
    parser.add_argument("command", nargs="?", help="serve (not available yet)")
    args, _ = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    print(f"kvstore: '{args.command}' is not available yet", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
