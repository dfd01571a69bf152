"""Entry point of the `kvstore` command.

`kvstore serve [flags]` runs a member (kvstore/cli/serve.py, etcd's flags).
Every other command is a client of the etcd v3 API with etcdctl 3.4's
flags and output (kvstore/cli/kv.py, ops.py), so it works the same against
kvstore and against etcd.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from kvstore import __version__
from kvstore.cli import kv, ops
from kvstore.cli.common import global_options

EPILOG = """\b
Examples:
  kvstore serve                                 # one member on 127.0.0.1:2379
  kvstore put greeting hello
  kvstore get greeting -w json
  kvstore get foo/ --prefix --keys-only
  kvstore watch greeting                        # Ctrl-C to stop
  kvstore --endpoints 127.0.0.1:2379,127.0.0.1:22379 endpoint status -w table
  KVSTORE_ENDPOINTS=127.0.0.1:22379 kvstore member list

\b
Shell completion (add to ~/.bashrc or ~/.zshrc):
  eval "$(_KVSTORE_COMPLETE=bash_source kvstore)"
  eval "$(_KVSTORE_COMPLETE=zsh_source kvstore)"
"""


@click.group(
    "kvstore",
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, "--version", prog_name="kvstore", message="%(prog)s %(version)s")
@global_options
def cli() -> None:
    """kvstore: a Raft-replicated key-value store that speaks etcd's v3 API.

    The global flags (--endpoints, --dial-timeout, --command-timeout, -w,
    --hex) may be given before or after the command name.
    """


@cli.command(
    "serve",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def serve_cmd(args: tuple[str, ...]) -> None:
    """Run a kvstore member (etcd's flags; see `kvstore serve --help`)."""
    from kvstore.cli.serve import main as serve_main

    sys.exit(serve_main(list(args)))


for _command in (*kv.COMMANDS, *ops.COMMANDS):
    cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        cli.main(args=args, prog_name="kvstore", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        return 1
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
