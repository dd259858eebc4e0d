"""``edgeship``: entry point. Each command module offers ``register(subparsers)``.

User mistakes and device failures are :class:`~edgeship.core.errors.EdgeshipError`: they end
as one ``error:`` line (and ``{"error": ...}`` with ``--json``) and a non-zero exit,
never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from edgeship_runtime import __version__

from edgeship.core.errors import EdgeshipError, UsageError
from edgeship.core.extras import missing_extras
from edgeship.cli import (
    ab_cmd,
    bundle_cmd,
    compress_cmd,
    convert_cmd,
    deploy_cmd,
    device_cmd,
    info_cmd,
    optimize_cmd,
    partition_cmd,
    profile_cmd,
    rollout_cmd,
    run_cmd,
    sign_cmd,
    sweep_cmd,
    tune_cmd,
)
from edgeship.cli.common import global_options
from edgeship.cli.output import print_error

COMMANDS = (
    profile_cmd,
    run_cmd,
    info_cmd,
    device_cmd,
    deploy_cmd,
    rollout_cmd,
    sign_cmd,
    compress_cmd,
    convert_cmd,
    optimize_cmd,
    tune_cmd,
    partition_cmd,
    ab_cmd,
    sweep_cmd,
    bundle_cmd,
)

EXIT_FAILURE = 1
EXIT_USAGE = 2


class _ArgumentParser(argparse.ArgumentParser):
    """argparse whose complaints are UsageErrors, so they end like every other mistake."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="edgeship",
        description="Deploy, profile and compare ML models on edge devices.",
    )
    parser.add_argument("--version", action="version", version=f"edgeship {__version__}")
    global_options(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    as_json = "--json" in args
    try:
        ns = build_parser().parse_args(args)
        as_json = bool(getattr(ns, "json", False))
        with missing_extras():
            return int(ns.handler(ns))
    except EdgeshipError as exc:
        print_error(exc, as_json)
        return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_FAILURE
    except BrokenPipeError:  # e.g. `edgeship ... | head`: the reader left, nothing to say
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
