"""``edgeship convert IN OUT``: convert a model and verify the result against its source.

Formats come from the suffixes (``.onnx``, ``.tflite``, ``.pt``/``.pth``/``.ckpt``) or
``--from``/``--to``. A PyTorch source is ``module:factory`` (``--weights`` its state
dict) or a checkpoint with ``--factory``. Source and result run on the same inputs
(``--data``, else generated with ``--seed``) on ``--target``; beyond tolerance the command
fails with exit status 1 and writes nothing, unless ``--force``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from edgeship.cli.common import shape_option, target_from_args, target_options
from edgeship.cli.output import print_json, table
from edgeship.convert import (
    FORMATS,
    ConversionReport,
    ConvertConfig,
    Tolerance,
    VerifyData,
    VerifyReport,
    convert,
)
from edgeship.core.errors import VerificationError
from edgeship.targets import Target
from edgeship_runtime.inputs import parse_shape_overrides

__all__ = [
    "EXIT_NOT_EQUIVALENT",
    "R",
    "add_verify_options",
    "config_from_args",
    "register",
    "render",
    "report_failure",
    "run",
    "run_verified",
    "verify_options",
    "verify_table",
]

EXIT_NOT_EQUIVALENT = 1


class _Report(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=_Report)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        description=__doc__,
        parents=[target_options()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", metavar="IN", help="model file, or module:factory for PyTorch")
    p.add_argument("output", metavar="OUT", type=Path, help="the converted model file")
    p.add_argument("--from", dest="source_format", choices=FORMATS, help="format of IN")
    p.add_argument("--to", dest="output_format", choices=FORMATS, help="format of OUT")
    p.add_argument(
        "--factory",
        metavar="MODULE:FUNCTION",
        help="builds the PyTorch module whose checkpoint IN is",
    )
    p.add_argument(
        "--weights", type=Path, metavar="FILE", help="state dict for a module:factory source"
    )
    shape_option(
        p,
        "example input of a PyTorch source (float32; repeatable), or a static shape for an "
        "ONNX input going to TFLite",
    )
    p.add_argument("--input-names", default="", help="comma-separated names of PyTorch inputs")
    p.add_argument("--output-names", default="", help="comma-separated names of PyTorch outputs")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset written (default 17)")
    p.add_argument(
        "--batch", type=int, default=1, help="fixed batch of a TFLite result (default 1)"
    )
    add_verify_options(p)
    p.set_defaults(handler=run)


def add_verify_options(p: argparse.ArgumentParser) -> None:
    """``--data/--samples/--seed``, the tolerances and ``--force`` (shared with optimize)."""
    g = p.add_argument_group("verification")
    g.add_argument(
        "--data",
        type=Path,
        metavar="D.npz",
        help="inputs to compare on (.npz by input name; 'labels' ignored)",
    )
    g.add_argument(
        "--samples", type=int, default=32, help="rows compared (default 32; 0 = all rows of --data)"
    )
    g.add_argument("--seed", type=int, default=0, help="seed of generated inputs")
    g.add_argument(
        "--atol",
        type=float,
        default=Tolerance.atol,
        help=f"absolute tolerance (default {Tolerance.atol})",
    )
    g.add_argument(
        "--rtol",
        type=float,
        default=Tolerance.rtol,
        help=f"tolerance relative to the largest |output| (default {Tolerance.rtol})",
    )
    g.add_argument(
        "--min-cosine",
        type=float,
        default=Tolerance.min_cosine,
        help=f"least cosine similarity (default {Tolerance.min_cosine})",
    )
    g.add_argument(
        "--min-top1",
        type=float,
        default=Tolerance.min_top1,
        help=f"least top-1 agreement, a fraction (default {Tolerance.min_top1})",
    )
    g.add_argument(
        "--force", action="store_true", help="keep the result even when it is not equivalent"
    )


def verify_options(ns: argparse.Namespace) -> tuple[VerifyData, Tolerance]:
    return (
        VerifyData(data=ns.data, samples=ns.samples, seed=ns.seed),
        Tolerance(atol=ns.atol, rtol=ns.rtol, min_cosine=ns.min_cosine, min_top1=ns.min_top1),
    )


def config_from_args(ns: argparse.Namespace) -> ConvertConfig:
    data, tolerance = verify_options(ns)
    shapes = parse_shape_overrides(ns.shape)
    data = dataclasses.replace(data, shapes=shapes)
    return ConvertConfig(
        source=ns.source,
        output=ns.output,
        source_format=ns.source_format,
        output_format=ns.output_format,
        factory=ns.factory,
        weights=ns.weights,
        shapes=shapes,
        input_names=_names(ns.input_names),
        output_names=_names(ns.output_names),
        opset=ns.opset,
        batch=ns.batch,
        verify=data,
        tolerance=tolerance,
        force=ns.force,
    )


def run(ns: argparse.Namespace) -> int:
    config = config_from_args(ns)
    return run_verified(ns, lambda target: convert(config, target).report, render)


def run_verified(
    ns: argparse.Namespace, work: Callable[[Target], R], view: Callable[[R], str]
) -> int:
    """``work`` on the one target of ``--target`` (closed after it), then its report; a
    result not equivalent to its source is :func:`report_failure`'s (shared by convert,
    optimize and partition)."""
    with target_from_args(ns) as target:
        try:
            report = work(target)
        except VerificationError as exc:
            return report_failure(exc, ns.json, view)
    if ns.json:
        print_json(report.to_dict())
    else:
        print(view(report))
    return 0


def report_failure(exc: VerificationError, as_json: bool, view: Any) -> int:
    """The report of a result that is not equivalent, then one ``error:`` line; exit 1."""
    if as_json:
        data = exc.report.to_dict() if exc.report is not None else {}
        print_json({**data, "error": {"type": type(exc).__name__, "message": str(exc)}})
    elif exc.report is not None:
        print(view(exc.report))
    print(f"error: {exc}", file=sys.stderr)
    return EXIT_NOT_EQUIVALENT


def render(report: ConversionReport) -> str:
    size = f" ({report.result.size_bytes:,} bytes)" if report.result.size_bytes else ""
    state = "written" if report.written else "NOT written"
    lines = [
        f"{report.route}: {report.source.path} → {report.result.path}{size}, {state}",
        f"converter: {report.converter} ({report.convert_s:.1f} s)",
        f"layout: {report.layout_statement()}",
        verify_table(report.verification),
    ]
    if report.forced:
        lines.append("FORCED: kept although it is not equivalent to the source")
    lines += [f"note: {n}" for n in report.notes]
    return "\n".join(lines)


def verify_table(report: VerifyReport) -> str:
    rows = [
        [
            o.name if o.name == o.result_name else f"{o.name} ({o.result_name})",
            f"{o.shape}",
            f"{o.max_abs_diff:.3g}",
            f"{o.max_abs_allowed:.3g}",
            f"{o.cosine:.6f}",
            o.agreement_text(),
            "ok" if o.passed else "FAIL",
        ]
        for o in report.outputs
    ]
    head = f"verified on {report.samples} samples of {report.data}: " + (
        "equivalent" if report.passed else "NOT equivalent"
    )
    body = table(
        ["output", "shape", "max|Δ|", "allowed", "cosine", "top-1 agreement", "result"], rows
    )
    notes = [f"  {n}" for n in report.notes]
    changes = [f"interface: {c}" for c in report.interface]
    return "\n".join([head, body, *notes, *changes])


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())
