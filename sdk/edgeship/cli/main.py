"""``edgeship``: entry point. Each command module offers ``register(subparsers)``.

User mistakes and device failures are :class:`~edgeship.core.errors.EdgeshipError`: they end
as one ``error:`` line (and ``{"error": ...}`` with ``--json``) and a non-zero exit,
never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from edgeship.cli.common import global_options
from edgeship.cli.output import print_error
from edgeship.core.errors import EdgeshipError, UsageError
from edgeship.core.extras import missing_extras
from edgeship_runtime import __version__

__all__ = [
    "COMMANDS",
    "EXAMPLES",
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "build_parser",
    "main",
    "plain_text",
]

# Each command: the module under edgeship.cli that registers it, and its line in
# `edgeship --help`. A module is imported, and its commands' options built, only when one
# of its commands is given: `edgeship --help` and `--version` import none of them, and so
# none of numpy, onnx or paramiko that their work needs.
COMMANDS: dict[str, tuple[str, str]] = {
    "profile": ("profile_cmd", "profile models on a target"),
    "run": ("run_cmd", "run a model on inputs and bring the outputs back"),
    "info": ("info_cmd", "backends, versions and environment of a target"),
    "probe": ("device_cmd", "what a device has: arch, OS, Python, backends, GPU"),
    "setup": ("device_cmd", "install the runtime (and a venv with backends) on a device"),
    "deploy": ("deploy_cmd", "upload models and activate them atomically"),
    "ls": ("deploy_cmd", "deployed models and their versions"),
    "rollback": ("deploy_cmd", "activate an earlier version"),
    "rm": ("deploy_cmd", "remove a deployed model and its versions"),
    "rollout": (
        "rollout_cmd",
        "deploy to a group in phases, each gated on the last; roll back on a failed gate",
    ),
    "keygen": ("sign_cmd", "make an Ed25519 key pair to sign releases with"),
    "sign": ("sign_cmd", "sign a model as a release (for deploy --signature)"),
    "compress": ("compress_cmd", "quantize, prune or distill a model, measured"),
    "convert": ("convert_cmd", "convert a model between formats, verified"),
    "optimize": ("optimize_cmd", "optimize an ONNX graph for a target, verified"),
    "tune": ("tune_cmd", "pick the fastest session settings on the device"),
    "partition": ("partition_cmd", "split an ONNX graph into K balanced stages"),
    "ab": ("ab_cmd", "A/B models on a device: interleaved latency, memory, quality, gates"),
    "sweep": ("sweep_cmd", "make a recipe's variants and A/B each on every board, resumable"),
    "bundle": ("bundle_cmd", "build the device runtime zipapp"),
}

# One example per command, shown at the end of its --help (tests/sdk/cli/test_help.py
# parses each with the command's own parser, so they cannot drift).
EXAMPLES: dict[str, str] = {
    "profile": "edgeship profile model.onnx --target pi --min-seconds 2 --report prof/",
    "run": "edgeship run model.onnx --target pi --inputs x.npz --out y.npz",
    "info": "edgeship info pi",
    "probe": "edgeship probe pi",
    "setup": "edgeship setup pi --wheelhouse",
    "deploy": "edgeship deploy model.onnx --target pi --name detector",
    "ls": "edgeship ls pi",
    "rollback": "edgeship rollback detector --target pi",
    "rm": "edgeship rm detector --target pi",
    "rollout": "edgeship rollout model.onnx --target lab --name detector --phases 1,25%,100%",
    "keygen": "edgeship keygen release.key",
    "sign": "edgeship sign model.onnx --key release.key --name detector --release 3",
    "compress": (
        "edgeship compress cnn.onnx --method int8-static --data train.npz --out cnn-int8.onnx"
    ),
    "convert": "edgeship convert cnn.onnx cnn.tflite --data test.npz",
    "optimize": "edgeship optimize cnn.onnx cnn-opt.onnx --target pi",
    "tune": "edgeship tune cnn.onnx --target pi",
    "partition": "edgeship partition cnn.onnx --stages 2 --out stages/",
    "ab": (
        "edgeship ab cnn.onnx cnn-int8.onnx --target pi --data test.npz --min-speedup 1.3 "
        "--report ab-report/"
    ),
    "sweep": "edgeship sweep cnn.onnx variants.toml --target lab --out sweep/ --data train.npz",
    "bundle": "edgeship bundle --out edgeship-runtime.pyz",
}

EXIT_FAILURE = 1
EXIT_USAGE = 2


class _ArgumentParser(argparse.ArgumentParser):
    """argparse whose complaints are UsageErrors, so they end like every other mistake."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


_ROLE = re.compile(r":[a-z]+:`~?([^`<]+?)(?: <[^>]+>)?`")
_LITERAL = re.compile(r"``(.+?)``", re.S)


def plain_text(doc: str) -> str:
    """``doc`` without reStructuredText markup: ``:func:`~a.b.c``` reads ``c``, a
    ``literal`` reads literal, for a terminal's --help."""
    text = _ROLE.sub(
        lambda m: m.group(1).rsplit(".", 1)[-1] if "~" in m.group(0) else m.group(1), doc
    )
    return _LITERAL.sub(r"\1", text)


class _Commands(argparse._SubParsersAction):
    """Subcommands listed from :data:`COMMANDS`, each parser built by its module's
    ``register(subparsers)`` when its command is the one given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._registered: set[str] = set()

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        if name not in self._name_parser_map:  # a placeholder, for the list in --help
            return super().add_parser(name, help=COMMANDS[name][1], **kwargs)
        if "description" in kwargs:  # a module's docstring, read as plain text in --help
            kwargs["description"] = plain_text(kwargs["description"])
        kwargs.setdefault("prog", f"{self._prog_prefix} {name}")
        kwargs.setdefault("epilog", f"example: {EXAMPLES[name]}")
        parser: argparse.ArgumentParser = self._parser_class(**kwargs)
        self._name_parser_map[name] = parser  # the module's parser replaces the placeholder
        return parser

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        module = COMMANDS.get(values[0], ("",))[0]
        if module and module not in self._registered:
            self._registered.add(module)
            importlib.import_module(f"edgeship.cli.{module}").register(self)
        super().__call__(parser, namespace, values, option_string)


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="edgeship",
        description="Deploy, profile and compare ML models on edge devices.",
    )
    parser.add_argument("--version", action="version", version=f"edgeship {__version__}")
    global_options(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", action=_Commands)
    for name in COMMANDS:
        sub.add_parser(name)
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
