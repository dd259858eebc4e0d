"""Options every device-facing command shares, and running a command on one or many targets."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from edgeship.cli.output import print_json, print_stderr
from edgeship.core.errors import UsageError

# What opens and measures targets is imported where it is used: `edgeship --help` imports
# this module for global_options, and must not pay for numpy and the SSH machinery.
if TYPE_CHECKING:
    from edgeship.core.config import ConnectOptions
    from edgeship.targets import Target
    from edgeship_runtime.backends import SessionOptions

__all__ = [
    "TENSORRT",
    "T",
    "connect_options",
    "cpus_option",
    "global_options",
    "input_options",
    "on_targets",
    "session_from_args",
    "session_options",
    "shape_option",
    "target_from_args",
    "target_options",
    "targets_from_args",
    "tensorrt_from_args",
    "tensorrt_options",
]

T = TypeVar("T")


def global_options(parser: argparse.ArgumentParser) -> None:
    """Options valid before any command (``edgeship --ssh-config F probe pi``); the same
    options after a command override them."""
    parser.add_argument("--ssh-config", type=Path, metavar="FILE", help="default: ~/.ssh/config")
    parser.add_argument("--targets", type=Path, metavar="FILE", help=_TARGETS_HELP)


_TARGET_HELP = "device, group, ssh alias or user@host[:port]; comma lists work"
_TARGETS_HELP = "targets file (default: ./edgeship.toml, ~/.config/edgeship/targets.toml)"


def target_options(
    default_target: str | None = "local", positional: bool = False
) -> argparse.ArgumentParser:
    """A parent parser: ``--target`` plus how to reach and treat SSH devices.

    ``positional``: the target may also be the command's argument (``edgeship probe pi``,
    ``edgeship ls pi``), for commands whose subject is the device; commands whose
    arguments are models or deployment names take ``--target`` only.
    """
    from edgeship.targets.fleet import DEFAULT_FORKS

    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("target")
    if positional:
        # SUPPRESS: an absent positional must not overwrite a --target given before it
        p.add_argument("target", nargs="?", default=argparse.SUPPRESS, help=_TARGET_HELP)
        default = f" (default: {default_target})" if default_target else ""
        g.add_argument("--target", default=default_target, help=f"the same as TARGET{default}")
    elif default_target is None:
        g.add_argument("--target", required=True, help=_TARGET_HELP)
    else:
        g.add_argument(
            "--target",
            default=default_target,
            help=f"device, group, ssh alias, user@host[:port] (default: {default_target})",
        )
    # SUPPRESS: when not given after the command, the global option's value stays
    g.add_argument(
        "--targets", type=Path, metavar="FILE", default=argparse.SUPPRESS, help=_TARGETS_HELP
    )
    g.add_argument(
        "--ssh-config",
        type=Path,
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="default: ~/.ssh/config",
    )
    g.add_argument(
        "--accept-new-host-keys",
        action="store_true",
        help="trust and record unknown host keys (like StrictHostKeyChecking=accept-new)",
    )
    g.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds to reach the device and log in (default 10)",
    )
    g.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="limit for each remote operation (default 600 s)",
    )
    g.add_argument(
        "--unresponsive",
        type=float,
        default=30.0,
        metavar="S",
        help="a device that acknowledges nothing for S s is taken as gone (default 30 s)",
    )
    g.add_argument("--python", help="the device's Python (default: what setup recorded)")
    g.add_argument("--deploy-root", help="where edgeship keeps files on the device")
    g.add_argument(
        "--forks",
        type=int,
        default=DEFAULT_FORKS,
        metavar="N",
        help=f"devices worked on at once; the rest queue (default {DEFAULT_FORKS})",
    )
    g.add_argument("--parallel", type=int, dest="forks", action=_Deprecated, help=argparse.SUPPRESS)
    g.add_argument("--json", action="store_true", help="print JSON only")
    return p


GENERATED_SHAPE = "dims for a generated input with dynamic dims (repeatable)"


def shape_option(p: argparse.ArgumentParser, help: str = GENERATED_SHAPE) -> None:
    """``--shape NAME=D1,D2,...`` (repeatable); ``help`` says what the dims are for."""
    p.add_argument("--shape", action="append", default=[], metavar="NAME=D1,D2,...", help=help)


def input_options(p: argparse.ArgumentParser) -> None:
    """``--inputs`` or generated inputs (``--shape`` for dynamic dims, ``--seed``)."""
    p.add_argument("--inputs", type=Path, help=".npz (by input name) or .npy; default: generated")
    shape_option(p)
    p.add_argument("--seed", type=int, default=0, help="seed of generated inputs")


TENSORRT = "TensorrtExecutionProvider"


def cpus_option(p: argparse.ArgumentParser) -> None:
    """``--cpus LIST``: pin the device's runtime to these CPUs while timing."""
    p.add_argument(
        "--cpus",
        type=_cpu_list,
        default=(),
        metavar="LIST",
        help="pin the runtime's threads to these CPUs of the device while timing, e.g. "
        "2,3 or 2-3 (keeps other work off the measured cores; one runtime thread per CPU "
        "unless --threads says fewer; default: no pinning)",
    )


def _cpu_list(text: str) -> tuple[int, ...]:
    """``2,3`` or ``0-3`` or ``0,2-3`` as CPU numbers."""
    cpus: list[int] = []
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            cpus += range(int(low), int(high or low) + 1)
    except ValueError:
        cpus = []
    if not cpus or min(cpus) < 0:
        raise argparse.ArgumentTypeError(f"expected CPU numbers like 2,3 or 0-3, got {text!r}")
    return tuple(sorted(set(cpus)))


def session_options(p: argparse.ArgumentParser) -> None:
    """``--threads``, ``--providers`` and TensorRT's ``--trt-cache``/``--trt-fp16``."""
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="intra-op / XNNPACK threads (default 0: the backend decides)",
    )
    p.add_argument(
        "--providers",
        default="",
        help="ONNX Runtime execution providers in preference order, comma-separated",
    )
    tensorrt_options(p)


def tensorrt_options(p: argparse.ArgumentParser) -> None:
    """TensorRT's ``--trt-cache``/``--trt-fp16`` alone, for a command whose ``--providers``
    says something else (``tune``: chains to try)."""
    p.add_argument(
        "--trt-cache",
        action=argparse.BooleanOptionalAction,
        help=f"keep {TENSORRT}'s built engines on the device, under its deploy root "
        "(default on): the next load of the model skips the build",
    )
    p.add_argument(
        "--trt-fp16",
        action="store_true",
        help=f"let {TENSORRT} build fp16 kernels (faster on most GPUs; outputs change)",
    )


def session_from_args(ns: argparse.Namespace) -> SessionOptions:
    """The session :func:`session_options` asked for; TensorRT's flags with ``--providers``
    that leave TensorRT out are a mistake (without ``--providers`` they refine the
    board's own providers)."""
    from edgeship_runtime.backends import SessionOptions

    providers = tuple(p for p in ns.providers.split(",") if p)
    trt_cache, trt_fp16 = tensorrt_from_args(ns, providers)
    return SessionOptions(
        threads=ns.threads, providers=providers, trt_cache=trt_cache, trt_fp16=trt_fp16
    )


def tensorrt_from_args(ns: argparse.Namespace, providers: Sequence[str]) -> tuple[bool, bool]:
    """``(trt_cache, trt_fp16)`` as :func:`tensorrt_options` asked for; with ``providers``
    given (every provider the command may use) that leave TensorRT out, a mistake."""
    if providers and (ns.trt_cache is not None or ns.trt_fp16) and TENSORRT not in providers:
        raise UsageError(f"--trt-cache/--trt-fp16 act on {TENSORRT}, which --providers leaves out")
    return ns.trt_cache is not False, ns.trt_fp16


def connect_options(ns: argparse.Namespace) -> ConnectOptions:
    from edgeship.core.config import ConnectOptions, Timeouts

    return ConnectOptions(
        ssh_config=ns.ssh_config,
        targets_file=ns.targets,
        accept_new_host_keys=ns.accept_new_host_keys,
        timeouts=Timeouts(
            connect=ns.connect_timeout,
            auth=ns.connect_timeout,
            command=ns.timeout,
            startup=min(Timeouts.startup, ns.timeout),  # --timeout bounds the start too
            unresponsive=ns.unresponsive,
        ),
        python=ns.python,
        deploy_root=ns.deploy_root,
        keep_versions=getattr(ns, "keep", 3),
        lock_wait=getattr(ns, "lock_wait", 60.0),
        progress=not ns.json,
    )


def target_from_args(ns: argparse.Namespace) -> Target:
    """The one target ``--target`` names, with the connection options given; unopened
    (a ``with`` opens and closes it)."""
    from edgeship.targets import open_target

    return open_target(ns.target, connect_options(ns))


def targets_from_args(ns: argparse.Namespace) -> list[Target]:
    """Every target of ``--target`` (a device, a group, a comma list), unopened."""
    from edgeship.targets import open_targets

    return open_targets(ns.target, connect_options(ns))


def on_targets(
    ns: argparse.Namespace,
    operation: Callable[[Target], T],
    to_json: Callable[[T], Any],
    render: Callable[[T], str],
) -> int:
    """Run ``operation`` on ``--target``: one device directly (errors propagate to the
    CLI's handler), several concurrently, each result or error reported, exit 1 if any failed."""
    from edgeship.api import setup_hint
    from edgeship.cli.fleet_view import FleetTable
    from edgeship.targets.fleet import run_each

    if not ns.target:
        raise UsageError(f"edgeship {ns.command}: which device? give a TARGET (or --target)")
    targets = targets_from_args(ns)

    def hinted(target: Target) -> T:
        with setup_hint(target):
            return operation(target)

    if len(targets) == 1:
        with targets[0] as target:
            value = hinted(target)
        if ns.json:
            print_json(to_json(value))
        else:
            print(render(value))
        return 0
    view = FleetTable([t.name for t in targets], render)
    on_result = view.progress_only if ns.json else view.row
    results = run_each(targets, hinted, ns.forks, on_result=on_result)
    failed = [r for r in results if r.error is not None]
    if ns.json:
        print_json(
            {
                "ok": not failed,
                "results": [
                    {
                        "target": r.target,
                        "result": None if r.value is None else to_json(r.value),
                        "error": r.error_dict(),
                    }
                    for r in results
                ],
            }
        )
        for r in failed:
            message = str(r.error)
            named = message.startswith(f"{r.target}:")  # most errors name their device
            print_stderr(f"error: {message}" if named else f"error: {r.target}: {message}")
    elif failed:  # each error is in its row: one line to say the run failed
        names = ", ".join(r.target for r in failed)
        print_stderr(f"error: {len(failed)} of {len(results)} devices failed: {names}")
    return 0 if not failed else 1


class _Deprecated(argparse.Action):
    """``--parallel N``: the former name of ``--forks N``, still taken, with a note."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print_stderr("note: --parallel is now --forks (the old name will go)")
        setattr(namespace, self.dest, values)
