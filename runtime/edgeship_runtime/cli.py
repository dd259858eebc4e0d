"""``python3 edgeship-runtime.pyz COMMAND``: the runtime's own command line.

``serve`` speaks the stdio protocol (what the host uses). ``info``, ``profile`` and
``run`` are one-shot versions of the same operations for use by hand on a board; they
print JSON on stdout, and on failure ``{"error": ...}`` with exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional

from .errors import EdgeshipError
from .inputs import parse_shape_overrides
from .measure import DEFAULT_MIN_SECONDS
from .ops import Runtime, decode_tensors
from .protocol import DEFAULT_MAX_LINE_BYTES, MAX_LINE_BYTES_ENV


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgeship-runtime", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the stdio protocol on stdin/stdout")
    serve.add_argument(
        "--max-line-bytes",
        type=_positive_int,
        metavar="N",
        help=f"longest request line read, in bytes (default: ${MAX_LINE_BYTES_ENV}, "
        f"else {DEFAULT_MAX_LINE_BYTES}); a longer one is refused with an error reply",
    )
    sub.add_parser("info", help="backends, versions and environment of this device")
    prof = sub.add_parser("profile", help="profile one model")
    _model_args(prof)
    prof.add_argument("--runs", type=int, default=100, help="at least this many timed runs")
    prof.add_argument("--warmup", type=int, default=10)
    prof.add_argument(
        "--min-seconds",
        type=float,
        default=DEFAULT_MIN_SECONDS,
        help=f"at least this much timed running, in seconds (default {DEFAULT_MIN_SECONDS:g})",
    )
    prof.add_argument("--samples", action="store_true", help="include per-run samples")
    run = sub.add_parser("run", help="run one model on inputs, write the outputs")
    _model_args(run)
    run.add_argument("--out", required=True, help="where to write the outputs (.npz)")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of bytes, got {text!r}")
    return value


def _max_line_bytes(ns: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``--max-line-bytes``, else ``$EDGESHIP_MAX_LINE_BYTES``, else the default."""
    if ns.max_line_bytes is not None:
        return int(ns.max_line_bytes)
    text = os.environ.get(MAX_LINE_BYTES_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_LINE_BYTES
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError as exc:
        parser.error(f"{MAX_LINE_BYTES_ENV}: {exc}")


def _model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model")
    parser.add_argument("--backend")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--providers", default="", help="comma-separated, in preference order")
    parser.add_argument("--inputs", help=".npz/.npy file; default: generated from the signature")
    parser.add_argument("--shape", action="append", default=[], metavar="NAME=D1,D2,...")
    parser.add_argument("--seed", type=int, default=0)


def _load(runtime: Runtime, ns: argparse.Namespace) -> Dict[str, Any]:
    loaded = runtime.load(
        {
            "path": ns.model,
            "backend": ns.backend,
            "threads": ns.threads,
            "providers": [p for p in ns.providers.split(",") if p],
        }
    )
    args: Dict[str, Any] = {"handle": loaded["handle"], "seed": ns.seed}
    args["shapes"] = parse_shape_overrides(ns.shape)
    if ns.inputs:
        args["inputs"] = {"path": ns.inputs}
    return args


def _one_shot(ns: argparse.Namespace) -> Dict[str, Any]:
    runtime = Runtime()
    try:
        if ns.command == "info":
            return runtime.info({})
        args = _load(runtime, ns)
        if ns.command == "profile":
            args.update(
                runs=ns.runs, warmup=ns.warmup, min_seconds=ns.min_seconds, samples=ns.samples
            )
            return runtime.profile(args)
        result = runtime.run(args)
        import numpy as np

        np.savez(ns.out, **decode_tensors(result["outputs"]))  # type: ignore[arg-type]
        return {"out": ns.out, "latency_ms": result["latency_ms"]}
    finally:
        runtime.close()


def main(argv: Optional[List[str]] = None) -> int:
    parser = _parser()
    ns = parser.parse_args(argv)
    if ns.command == "serve":
        from .service import exit_when_unheard, protected_stdout, serve

        max_line_bytes = _max_line_bytes(ns, parser)
        stdout = protected_stdout()
        exit_when_unheard(stdout)
        return serve(sys.stdin.buffer, stdout, max_line_bytes)
    try:
        result = _one_shot(ns)
    except EdgeshipError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(json.dumps({"error": exc.to_wire()}))
        return 1
    print(json.dumps(result, indent=2))
    return 0


def _zipapp_main() -> None:
    sys.exit(main())
